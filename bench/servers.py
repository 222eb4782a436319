"""The Store SCPs under test: how to start each on a loopback port and count what it stored."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import boto3

from bench.errors import BenchError
from tests.support.aws import FAKE_AWS_ENV, REGION
from tests.support.scp import ScpProcess

if TYPE_CHECKING:
    from tests.support.orthanc import Orthanc

AE_TITLE = "STORESCP"
# dcmtk (also inside Orthanc) waits ~44 ms per PDU on Nagle's algorithm without this.
NODELAY_ENV = {"TCP_NODELAY": "1"}


def wait_until(ready, what: str, timeout: float = 30.0, process=None) -> None:
    """Poll `ready()` until true; fail early if `process` exits, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BenchError(f"{what} exited with {process.returncode} before it was ready")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchError(f"{what} was not ready after {timeout}s; run it by hand to see why")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def files_under(folder: Path, pattern: str = "*") -> tuple[int, int]:
    """(count, total bytes) of the files below `folder` whose names match `pattern`."""
    sizes = [p.stat().st_size for p in folder.rglob(pattern) if p.is_file()]
    return len(sizes), sum(sizes)


class Server(ABC):
    """A Store SCP process started in `workdir`, listening on `port`, AE title AE_TITLE."""

    name: str

    def __init__(
        self, workdir: Path, port: int, log: Path, extra_args: list[str] | None = None
    ) -> None:
        self.workdir = workdir
        self.port = port
        self.log = log
        self.extra_args = extra_args or []
        self.process: subprocess.Popen | None = None

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that starts the server."""

    @abstractmethod
    def stored(self) -> tuple[int, int]:
        """(instances, bytes) the server has stored so far."""

    def env(self) -> dict[str, str]:
        return {**os.environ, **NODELAY_ENV}

    def ready(self) -> bool:
        return port_open(self.port)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.command(),
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        wait_until(self.ready, f"{self.name} on port {self.port}", process=self.process)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Dcmtk(Server):
    """dcmtk storescp, one forked child per association so associations run in parallel."""

    name = "dcmtk"

    def command(self) -> list[str]:
        out = self.workdir / "out"
        out.mkdir(exist_ok=True)
        return [
            "storescp",
            "--fork",
            "+xa",
            "-aet",
            AE_TITLE,
            "-od",
            str(out),
            *self.extra_args,
            str(self.port),
        ]

    def stored(self) -> tuple[int, int]:
        return files_under(self.workdir / "out")


class Orthanc(Server):
    """Orthanc with its index kept apart from its storage folder, HTTP off, any SCU accepted."""

    name = "orthanc"

    def command(self) -> list[str]:
        config = {
            "Name": "bench",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "index"),
            "DicomAet": AE_TITLE,
            "DicomPort": self.port,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True,
            "UnknownSopClassAccepted": True,
            "HttpServerEnabled": False,
            "AuthenticationEnabled": False,
            "RemoteAccessAllowed": False,
            "Plugins": [],
        }
        path = self.workdir / "orthanc.json"
        path.write_text(json.dumps(config, indent=2))
        return ["Orthanc", *self.extra_args, str(path)]

    def stored(self) -> tuple[int, int]:
        return files_under(self.workdir / "storage")


class Pynetdicom(Server):
    """pynetdicom's storescp application (its default limit is 10 associations)."""

    name = "pynetdicom"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pynetdicom",
            "storescp",
            "--bind-address",
            "127.0.0.1",
            "-aet",
            AE_TITLE,
            "-od",
            str(self.workdir / "out"),
            "-q",
            *self.extra_args,
            str(self.port),
        ]

    def stored(self) -> tuple[int, int]:
        return files_under(self.workdir / "out")


class Ours(Server):
    """Our SCP (`python -m scp`, started by the tests' launcher) with the folder store."""

    name = "ours"

    def __init__(
        self, workdir: Path, port: int, log: Path, extra_args: list[str] | None = None
    ) -> None:
        super().__init__(workdir, port, log, extra_args)
        self.scp = ScpProcess(
            log_path=log,
            flags=self.extra_args,
            port=port,
            ae_title=AE_TITLE,
            storage=self.storage(),
            maximum_associations=64,
            log_level="WARNING",
            **self.settings(),
        )

    def storage(self) -> str:
        return str(self.workdir / "store")

    def settings(self) -> dict[str, str]:
        return {}

    def command(self) -> list[str]:
        return self.scp.argv()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.scp.start()
        except (RuntimeError, TimeoutError) as exc:
            raise BenchError(f"ours on port {self.port}: {exc}") from None
        self.process = self.scp.proc

    def stop(self) -> None:
        self.scp.stop(timeout=15)

    def stored(self) -> tuple[int, int]:
        return files_under(Path(self.storage()) / "incoming", "*.dcm")


class OursS3(Ours):
    """Our SCP with the S3 store, on a moto server shared by the whole benchmark run."""

    name = "ours-s3"
    endpoint: str = ""  # set by the runner once its moto server is up
    bucket = "bench"

    def storage(self) -> str:
        return f"s3://{self.bucket}/{self.workdir.name}/"

    def settings(self) -> dict[str, str]:
        return {"s3_endpoint_url": self.endpoint}

    def _objects(self):
        s3 = s3_client(self.endpoint)
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.workdir.name}/"
        )
        return s3, [obj for page in pages for obj in page.get("Contents", [])]

    def stored(self) -> tuple[int, int]:
        _, objects = self._objects()
        sizes = [
            o["Size"] for o in objects if "/incoming/" in o["Key"] and o["Key"].endswith(".dcm")
        ]
        return len(sizes), sum(sizes)

    def stop(self) -> None:
        super().stop()
        s3, objects = self._objects()  # free the moto server's memory for the next run
        for i in range(0, len(objects), 1000):
            chunk = [{"Key": o["Key"]} for o in objects[i : i + 1000]]
            s3.delete_objects(Bucket=self.bucket, Delete={"Objects": chunk})


class OursDirect(OursS3):
    """OursS3 with every instance routed to StoreDICOM (DIRECT_STORE=all), through the
    SigV4-verifying HealthImaging proxy in front of Orthanc's DICOMweb; the runner starts both
    and sets `dicomweb`."""

    name = "ours-direct"
    dicomweb: str = ""  # the proxy's endpoint

    def settings(self) -> dict[str, str]:
        from tests.fakes.dicomweb_proxy import scp_settings

        return {**super().settings(), "direct_store": "all", **scp_settings(self.dicomweb)}

    def stored(self) -> tuple[int, int]:
        _, objects = self._objects()
        sizes = [o["Size"] for o in objects if "/direct/" in o["Key"] and o["Key"].endswith(".dcm")]
        return len(sizes), sum(sizes)


def dicomweb_standin(stack: ExitStack, folder: Path) -> tuple[Orthanc, str]:
    """HealthImaging's DICOMweb stand-in, stopped with `stack`: Orthanc with its DICOMweb plugin
    in `folder` behind the SigV4-verifying HealthImaging proxy. Returns Orthanc (to load data
    through its REST API) and the proxy's endpoint (DICOMWEB_ENDPOINT_URL)."""
    from tests.fakes.dicomweb_proxy import DicomWebProxy
    from tests.support.orthanc import orthanc, orthanc_available

    if not orthanc_available():
        raise BenchError(
            "HealthImaging's stand-in needs Orthanc and orthanc-dicomweb (make system-deps)"
        )
    server = stack.enter_context(orthanc(folder))
    return server, stack.enter_context(DicomWebProxy(server.dicomweb)).endpoint


def s3_client(endpoint: str):
    """A boto3 S3 client for the moto server at `endpoint`, with its fake credentials."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )


class MotoS3:
    """A moto server in its own process (so it does not share the runner's GIL), with a bucket."""

    def __init__(self, log: Path, port: int) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                env={**os.environ, **FAKE_AWS_ENV},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: port_open(port), "moto server", process=self.process)
        s3_client(self.endpoint).create_bucket(Bucket=OursS3.bucket)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=15)


SERVERS: dict[str, type[Server]] = {
    cls.name: cls for cls in (Ours, OursS3, OursDirect, Dcmtk, Orthanc, Pynetdicom)
}
