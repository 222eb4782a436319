"""HealthImaging's DICOMweb interface in front of a real DICOMweb server (Orthanc): the proxy maps
`/datastore/{datastoreId}/...` to Orthanc's DICOMweb root and VERIFIES each request's SigV4
signature with botocore (service `medical-imaging`, the region, the known test credentials),
answering 403 to unsigned or wrongly signed requests.

Sources (AWS HealthImaging developer guide):
- "Storing instances with STOW-RS": `POST .../datastore/{id}/studies`, SigV4 for service
  `medical-imaging`, `Content-Type: application/dicom` with one P10 file as the body, a DICOMweb
  STOW-RS JSON response; conflicting data goes to a non-primary image set.
  https://docs.aws.amazon.com/healthimaging/latest/devguide/dicomweb-storing.html
  Orthanc's STOW-RS takes multipart/related only, so the proxy wraps such a body in one part.
- "Searching DICOM data in HealthImaging" / "Retrieving DICOM data from HealthImaging": QIDO-RS
  and WADO-RS see primary image sets only; so an instance the proxy reports as a conflict
  (`conflicts`) is stored in Orthanc but hidden from searches and retrievals.
  https://docs.aws.amazon.com/healthimaging/latest/devguide/dicomweb-search.html
- "AWS HealthImaging throttling limits": a throttled request gets a ThrottlingException (429).
  https://docs.aws.amazon.com/healthimaging/latest/devguide/throttling-limits.html

- "Getting a DICOM instance from HealthImaging": an instance comes back "in either its stored
  transfer syntax or as uncompressed (ELE) format", ELE when none is asked for. The proxy passes
  the Accept header's transfer-syntax on to Orthanc, which answers the same way (stored for `*`).
  https://docs.aws.amazon.com/healthimaging/latest/devguide/dicomweb-retrieve-instance.html

Faults for tests: `script` answers the next matching requests with a status (429, 503, ...) or
"drop" (the connection closes half-way through reading the request); `refuse` answers a STOW of
a given SOP Instance UID with a Failed SOP Sequence item and its Failure Reason; `always` answers
every request of a method with a status until cleared. For instance retrievals (GetDICOMInstance)
alone: `retrievals` answers the next ones (None: as usual), `retrievals_after` every one after
that, `stored_syntax_refused` every one asking for the stored syntax (`transfer-syntax=*`),
`retrieval_delay` holds each for that many seconds (a slow data store).

What an injected fault answers, and where it comes from: the body is JSON with one `message`
member, the one member of HealthImaging's ThrottlingException (and its other errors) in the API
Reference's error shapes (e.g. AWS SDK for Ruby, Aws::MedicalImaging::Types::ThrottlingException,
generated from them); 429 is the throttling page's ThrottlingException, whose HTTP status AWS's
pages do not state. AWS documents no answer for a transfer syntax GetDICOMInstance cannot give:
the 406 (Not Acceptable) the retrieve tests inject is PS3.18's (9.4.2.4, "the response shall be
406"), not an AWS example; the client treats 400 like it, so either would do.
"""

from __future__ import annotations

import hmac
import http.client
import io
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pydicom
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fakes.healthimaging import DATASTORE_ID
from tests.fakes.sfn_sdk import Served
from tests.support.aws import FAKE_AWS_ENV, REGION

__all__ = ["DATASTORE_ID", "DicomWebProxy", "verify_sigv4"]
SERVICE = "medical-imaging"
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<headers>[^,]+), "
    r"Signature=(?P<sig>[0-9a-f]+)"
)
RETRIEVAL = re.compile(r"/studies/[^/]+/series/[^/]+/instances/[^/]+")  # GetDICOMInstance
STORED = "transfer-syntax=*"  # the Accept parameter asking for the stored transfer syntax
MAX_SKEW = 15 * 60  # seconds: SigV4 refuses a request whose X-Amz-Date is further off
KNOWN = Credentials(
    FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
    FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    FAKE_AWS_ENV["AWS_SESSION_TOKEN"],
)


@dataclass
class Seen:
    """One request the proxy answered: when, what, and its status (0: dropped)."""

    at: float
    method: str
    path: str
    status: int


@dataclass
class Faults:
    script: dict[str, list[int | str]] = field(default_factory=dict)  # method -> next answers
    always: dict[str, int] = field(default_factory=dict)  # method -> status until cleared
    refuse: dict[str, int] = field(default_factory=dict)  # SOP Instance UID -> Failure Reason
    conflicts: set[str] = field(default_factory=set)  # SOP Instance UIDs in non-primary sets
    retrievals: list[int | None] = field(default_factory=list)  # next GetDICOMInstance answers
    retrievals_after: int | None = None  # every GetDICOMInstance's once `retrievals` ran out
    stored_syntax_refused: int | None = None  # status for GetDICOMInstance of transfer-syntax=*
    retrieval_delay: float = 0.0  # seconds each GetDICOMInstance is held

    def next_for(self, method: str) -> int | str | None:
        queued = self.script.get(method)
        if queued:
            return queued.pop(0)
        return self.always.get(method)

    def next_retrieval(self) -> int | None:
        return self.retrievals.pop(0) if self.retrievals else self.retrievals_after


def verify_sigv4(
    method: str, host: str, path: str, headers: dict[str, str], body: bytes, region: str = REGION
) -> str | None:
    """Why the request's SigV4 signature is not valid for the known credentials, or None."""
    found = AUTHORIZATION.fullmatch(headers.get("authorization", ""))
    if not found:
        return "missing or malformed Authorization header"
    if found["key"] != KNOWN.access_key:
        return "unknown access key"
    if (found["region"], found["service"]) != (region, SERVICE):
        return f"credential scope is {found['region']}/{found['service']}"
    stamp = headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(stamp, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        return "missing or malformed X-Amz-Date"
    if abs(time.time() - signed_at.timestamp()) > MAX_SKEW or not stamp.startswith(found["date"]):
        return "X-Amz-Date outside the allowed skew or scope"
    if headers.get("x-amz-security-token") != KNOWN.token:
        return "missing or wrong X-Amz-Security-Token"
    names = found["headers"].split(";")
    if "host" not in names:
        return "host is not signed"
    request = AWSRequest(
        method=method,
        url=f"http://{host}{path}",
        headers={n: headers[n] for n in names if n in headers and n != "host"},
        data=body,
    )
    request.context["timestamp"] = stamp
    auth = SigV4Auth(KNOWN, SERVICE, region)
    expected = auth.signature(
        auth.string_to_sign(request, auth.canonical_request(request)), request
    )
    if not hmac.compare_digest(expected, found["sig"]):
        return "signature does not match"
    return None


def stow_failure(sop_class: str, sop: str, reason: int) -> dict:
    """A Store Instances Response (PS3.18 Annex I) listing one failed instance."""
    return {
        "00081198": {
            "vr": "SQ",
            "Value": [
                {
                    "00081150": {"vr": "UI", "Value": [sop_class]},
                    "00081155": {"vr": "UI", "Value": [sop]},
                    "00081197": {"vr": "US", "Value": [reason]},
                }
            ],
        }
    }


def scp_settings(endpoint: str) -> dict[str, str]:
    """The SCP settings (ScpProcess keyword arguments) that make the proxy at `endpoint` its
    HealthImaging: the data store, the Region it signs for, the DICOMweb endpoint."""
    return {
        "healthimaging_datastore_id": DATASTORE_ID,
        "healthimaging_region": REGION,
        "dicomweb_endpoint_url": endpoint,
    }


class DicomWebProxy(Served):
    """The proxy on 127.0.0.1:`port`, forwarding to `orthanc_dicomweb` (http://host:port/root)."""

    def __init__(self, orthanc_dicomweb: str, port: int | None = None) -> None:
        parts = urlsplit(orthanc_dicomweb)
        self.upstream, self.root = parts.netloc, parts.path.rstrip("/")
        self.faults = Faults()
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._listen(port)

    @property
    def endpoint(self) -> str:
        """What DICOMWEB_ENDPOINT_URL is set to (the client appends /datastore/{id})."""
        return f"http://127.0.0.1:{self.port}"

    def scp_settings(self) -> dict[str, str]:
        """The SCP settings that point it at this proxy (scp_settings(self.endpoint))."""
        return scp_settings(self.endpoint)

    def reset(self) -> None:
        """No faults, nothing seen: as if just started."""
        with self._lock:
            self.faults, self.seen = Faults(), []

    def requests(self, method: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if method in (None, s.method)]

    def _note(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.seen.append(Seen(time.monotonic(), method, path, status))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's algorithm holds the
            # body until the client's delayed ACK (~40 ms a response on Linux).
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                proxy._note(self.command, self.path, status)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, message: str) -> None:
                self._answer(status, json.dumps({"message": message}).encode(), "application/json")

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fault = proxy.faults.next_for(self.command)
                if fault == "drop":
                    self.rfile.read(length // 2)
                    self.close_connection = True
                    self.connection.shutdown(2)
                    proxy._note(self.command, self.path, 0)
                    return
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                problem = verify_sigv4(
                    self.command, self.headers.get("Host", ""), self.path, headers, body
                )
                if problem:
                    return self._error(403, f"InvalidSignatureException: {problem}")
                prefix = f"/datastore/{DATASTORE_ID}"
                if not self.path.startswith(prefix + "/"):
                    return self._error(404, "ResourceNotFoundException: no such data store")
                if isinstance(fault, int):
                    return self._error(fault, f"injected HTTP {fault}")
                path = self.path[len(prefix) :]
                if self.command == "POST":
                    return self._store(path, body, headers)
                return self._read(path, headers)

            def _store(self, path: str, body: bytes, headers: dict[str, str]) -> None:
                ds = pydicom.dcmread(io.BytesIO(body), stop_before_pixels=True)
                sop = str(ds.SOPInstanceUID)
                if sop in proxy.faults.refuse:
                    doc = stow_failure(str(ds.SOPClassUID), sop, proxy.faults.refuse[sop])
                    return self._answer(409, json.dumps(doc).encode(), "application/dicom+json")
                if headers.get("content-type", "").startswith("application/dicom"):
                    boundary = "proxy-part-boundary"
                    body = (
                        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                        + body
                        + f"\r\n--{boundary}--\r\n".encode()
                    )
                    headers["content-type"] = (
                        f'multipart/related; type="application/dicom"; boundary={boundary}'
                    )
                self._forward("POST", path, body, headers)

            def _read(self, path: str, headers: dict[str, str]) -> None:
                hidden = proxy.faults.conflicts
                if any(sop in urlsplit(path).path for sop in hidden):
                    return self._error(404, "not in a primary image set")
                query = parse_qs(urlsplit(path).query)
                if set(query.get("SOPInstanceUID", [])) & hidden:
                    return self._answer(200, b"[]", "application/dicom+json")
                if RETRIEVAL.fullmatch(urlsplit(path).path):
                    time.sleep(proxy.faults.retrieval_delay)
                    fault = proxy.faults.next_retrieval()
                    if fault is not None:
                        return self._error(fault, f"injected HTTP {fault}")
                media, _, parameters = headers.get("accept", "").partition(";")
                refused = proxy.faults.stored_syntax_refused
                if refused and RETRIEVAL.fullmatch(urlsplit(path).path) and STORED in parameters:
                    return self._error(refused, f"injected HTTP {refused} for the stored syntax")
                if media.strip() == "application/dicom":
                    # Orthanc's WADO-RS answers multipart/related only (the client takes either);
                    # the transfer-syntax parameter goes along.
                    extra = [x.strip() for x in parameters.split(";") if x.strip()]
                    headers["accept"] = "; ".join(
                        ['multipart/related; type="application/dicom"', *extra]
                    )
                self._forward("GET", path, b"", headers)

            def _forward(self, method: str, path: str, body: bytes, headers: dict[str, str]):
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=60)
                keep = ("accept", "content-type")
                upstream.request(
                    method,
                    proxy.root + path,
                    body=body or None,
                    headers={k: v for k, v in headers.items() if k in keep},
                )
                rsp = upstream.getresponse()
                data = rsp.read()
                upstream.close()
                self._answer(rsp.status, data, rsp.getheader("Content-Type", ""))

            do_GET = do_POST = _handle

        return Handler
