"""What moto's Step Functions interpreter needs to run our `aws-sdk:medicalimaging:*` tasks.

moto (5.2) runs an `arn:aws:states:::aws-sdk:{service}:{action}` task as
`boto3.client(service).{action}(**Parameters)` against `http://localhost:{MOTO_PORT}`
(moto/stepfunctions/parser/asl/utils/boto_client.py), and it has no HealthImaging. Step Functions
itself takes and returns PascalCase member names and names errors `ServiceName.ErrorName` in
PascalCase (Step Functions developer guide, "AWS SDK service integrations"). So:

- `sdk_model_dir` writes, for botocore's supported AWS_DATA_PATH seam, a `medicalimaging` service
  model: botocore's medical-imaging model with PascalCase member names over the same wire names
  (locationName), so the interpreter's client accepts `DatastoreId=...` and returns `JobProperties`
  just as Step Functions does;
  Step Functions hands JSON to the next state; moto would keep botocore's datetime objects, which
  its DescribeExecution cannot serialise, so timestamps are read as their wire value (a number);
- `SigV4Router` listens on MOTO_PORT and forwards each request by the service named in its SigV4
  credential scope: medical-imaging to the HealthImaging fake, everything else to moto;
- `pascal_case_error_names` gives moto the `MedicalImaging.` error prefix it lacks (a binding
  moto keeps per service; tests/lambdas/test_sfn_sdk.py fails when moto changes it).
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import botocore
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as moto_aws_sdk,
)

from tests.support.net import free_port

SDK_SERVICE = "medicalimaging"  # as the ASL's Resource names it
BOTO_SERVICE = "medical-imaging"
SIGNED_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")


def _pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


def sdk_model_dir(folder: Path) -> Path:
    """A botocore data folder holding the `medicalimaging` model; returns the folder."""
    source = Path(botocore.__file__).parent / "data" / BOTO_SERVICE
    version = sorted(p.name for p in source.iterdir())[-1]
    model = json.loads(gzip.decompress((source / version / "service-2.json.gz").read_bytes()))
    for shape in model["shapes"].values():
        if shape.get("type") == "timestamp":  # see the module docstring
            shape.clear()
            shape["type"] = "string"
        if shape.get("type") != "structure":
            continue
        members = {}
        for name, member in shape.get("members", {}).items():
            members[_pascal(name)] = {"locationName": name, **member}
        shape["members"] = members
        shape["required"] = [_pascal(n) for n in shape.get("required", [])]
        if "payload" in shape:
            shape["payload"] = _pascal(shape["payload"])
    target = folder / SDK_SERVICE / version
    target.mkdir(parents=True, exist_ok=True)
    (target / "service-2.json").write_text(json.dumps(model))
    rules = source / version / "endpoint-rule-set-1.json.gz"
    (target / "endpoint-rule-set-1.json").write_bytes(gzip.decompress(rules.read_bytes()))
    shutil.copy(source / version / "paginators-1.json", target / "paginators-1.json")
    return folder


class BusyServer(ThreadingHTTPServer):
    """An HTTP server for hundreds of concurrent clients (the standard backlog is 5)."""

    request_queue_size = 512
    daemon_threads = True


class Served:
    """A fake that answers HTTP on 127.0.0.1:`port` while its `with` block runs; subclasses
    give `_handler_class()`."""

    def _listen(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.server = BusyServer(("127.0.0.1", self.port), self._handler_class())

    def __enter__(self) -> Self:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class SigV4Router(Served):
    """An HTTP proxy on 127.0.0.1:`port` that routes by the SigV4 service name."""

    def __init__(self, routes: dict[str, str], default: str, port: int | None = None):
        self.routes, self.default = routes, default
        self._listen(port)

    def target(self, authorization: str) -> str:
        match = SIGNED_SERVICE.search(authorization or "")
        return self.routes.get(match[1], self.default) if match else self.default

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        router = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                host_port = router.target(self.headers.get("Authorization", ""))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                connection = http.client.HTTPConnection(host_port, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                connection.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@contextmanager
def pascal_case_error_names() -> Iterator[None]:
    """Errors of `aws-sdk:medicalimaging` tasks named `MedicalImaging.{Error}`, as AWS does."""
    names = moto_aws_sdk._SERVICE_ERROR_NAMES
    names[SDK_SERVICE] = "MedicalImaging"
    try:
        yield
    finally:
        names.pop(SDK_SERVICE, None)
