"""HealthImaging's DICOMweb APIs over HTTPS: SigV4-signed requests on reused connections, retried
with capped exponential backoff and jitter while throttled or unavailable, within a time budget.

Sources ([DICOMWEB], [STORE], [SEARCH], [RETRIEVE], [THROTTLE]) are listed in
scp/healthimaging/__init__.py.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlencode

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from scp.healthimaging.errors import DicomWebError, DicomWebUnavailable
from scp.healthimaging.multipart import first_part
from scp.healthimaging.stow import StowOutcome, parse_stow_response

# [DICOMWEB]/[STORE]: the signing name of every DICOMweb request, and its host.
SIGNING_NAME = "medical-imaging"
ENDPOINT = "https://dicom-medical-imaging.{region}.amazonaws.com"
# [THROTTLE]: throttling answers 429 (ThrottlingException); 5xx are the service's own failures.
RETRIABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# [STORE]: the STOW-RS statuses of PS3.18 10.5.3 whose body is a Store Instances Response
# (200 all stored, 202 some stored or with warnings, 409 none stored).
STOW_STATUSES = frozenset({200, 202, 409})
# [STORE]: "up to 1GB of DICOM data per request"; read as 10^9 bytes, the smaller reading.
MAX_STORE_BYTES = 10**9
MAX_SEARCH_RESULTS = 10_000  # [SEARCH]: a QIDO-RS search returns at most 10,000 records


@dataclass(frozen=True)
class RetryPolicy:
    """How long one call may take in all, and how attempts are spaced: the n-th retry waits
    between half and all of min(max_delay, first_delay * 2**(n-1)) ("equal jitter")."""

    budget: float = 10.0
    first_delay: float = 0.1
    max_delay: float = 2.0
    connect_timeout: float = 3.0
    read_timeout: float = 30.0

    def delay(self, retry: int, rng: random.Random) -> float:
        ceiling = min(self.max_delay, self.first_delay * 2 ** (retry - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class DicomWebClient:
    """One data store's DICOMweb endpoint; safe to share between threads."""

    def __init__(
        self,
        region: str,
        datastore_id: str,
        credentials: Callable[[], Credentials],
        endpoint_url: str = "",
        policy: RetryPolicy | None = None,
        connections: int = 16,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        base = (endpoint_url or ENDPOINT.format(region=region)).rstrip("/")
        self.root = f"{base}/datastore/{datastore_id}"
        self.region, self.credentials = region, credentials
        self.policy = policy or RetryPolicy()
        self.sleep, self.clock = sleep, clock
        self.rng = random.Random()
        self.pool = urllib3.PoolManager(maxsize=connections, block=False, retries=False)

    def __str__(self) -> str:
        return self.root

    def store(self, body: IO[bytes], size: int) -> StowOutcome:
        """StoreDICOM ([STORE]): one DICOM P10 file as the request body."""
        rsp = self.request(
            "StoreDICOM",
            "POST",
            "/studies",
            body=body,
            headers={
                "Content-Type": "application/dicom",
                "Content-Length": str(size),
                "Accept": "application/dicom+json",
            },
            accept=STOW_STATUSES,
        )
        try:
            return parse_stow_response(json.loads(rsp.data or b"{}"))
        except ValueError as exc:
            raise DicomWebError(
                "StoreDICOM", "POST", "/studies", f"unreadable STOW-RS response: {exc}"
            ) from None

    def search(
        self,
        path: str,
        query: dict[str, str] | None = None,
        page_size: int = 1000,
        budget: float | None = None,
    ) -> SearchResults:
        """QIDO-RS results of `path` (`/studies`, `/studies/{uid}/series`, `/instances`, ...),
        page by page with limit and offset, up to [SEARCH]'s 10,000 records; once iterated,
        the result's `capped` says whether the cap cut the results short."""
        return SearchResults(self, path, query or {}, page_size, budget)

    def retrieve_instance(
        self, study: str, series: str, sop: str, transfer_syntax: str = "*"
    ) -> bytes:
        """GetDICOMInstance ([RETRIEVE]): the instance's DICOM P10 bytes, in its stored transfer
        syntax ("*") or the one named (HealthImaging offers Explicit VR Little Endian for
        every instance, 1.2.840.10008.1.2.1)."""
        path = f"/studies/{study}/series/{series}/instances/{sop}"
        rsp = self.request(
            "GetDICOMInstance",
            "GET",
            path,
            headers={"Accept": f"application/dicom; transfer-syntax={transfer_syntax}"},
        )
        return first_part(rsp.headers.get("Content-Type", ""), rsp.data)

    def request(
        self,
        action: str,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        body: IO[bytes] | bytes = b"",
        headers: dict[str, str] | None = None,
        accept: frozenset[int] = frozenset({200, 204}),
        budget: float | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """Send one signed request, retrying throttling, 5xx, timeouts and dropped connections
        until `budget` (default: the policy's) runs out (DicomWebUnavailable); another status
        outside `accept` raises DicomWebError."""
        budget = budget or self.policy.budget
        # QIDO-RS wildcards and includefield lists go as a literal `*` and `,` (RFC 3986
        # sub-delimiters): some servers (Orthanc) take `%2A` and `%2C` literally. SigV4's
        # canonical query string encodes them either way.
        url = self.root + path + (f"?{urlencode(query, safe='*,')}" if query else "")
        started = self.clock()
        retry = 0
        while True:
            try:
                rsp = self._send(method, url, body, headers or {}, started + budget)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                problem = f"{type(exc).__name__}"
            else:
                if rsp.status in accept:
                    return rsp
                if rsp.status not in RETRIABLE_STATUSES:
                    raise DicomWebError(
                        action, method, path, f"HTTP {rsp.status}: {_reason(rsp)}", rsp.status
                    )
                problem = f"HTTP {rsp.status}"
            retry += 1
            elapsed = self.clock() - started
            wait = self.policy.delay(retry, self.rng)
            if elapsed + wait >= budget:
                raise DicomWebUnavailable(
                    action,
                    method,
                    path,
                    f"{problem}; gave up after {retry} attempt(s) in {elapsed:.1f}s",
                )
            self.sleep(wait)

    def _send(
        self,
        method: str,
        url: str,
        body: IO[bytes] | bytes,
        headers: dict[str, str],
        deadline: float,
    ) -> urllib3.BaseHTTPResponse:
        if not isinstance(body, bytes):
            body.seek(0)
        signed = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(self.credentials(), SIGNING_NAME, self.region).add_auth(signed)
        if not isinstance(body, bytes):
            body.seek(0)
        left = max(0.1, deadline - self.clock())
        timeout = urllib3.Timeout(
            connect=min(self.policy.connect_timeout, left), read=min(self.policy.read_timeout, left)
        )
        return self.pool.request(
            method, url, body=body or None, headers=dict(signed.headers.items()), timeout=timeout
        )


class SearchResults:
    """One QIDO-RS search's records, fetched a page at a time while iterated. `capped` once the
    cap's worth of records came back: whether more exist cannot be asked ([SEARCH])."""

    def __init__(
        self,
        client: DicomWebClient,
        path: str,
        query: dict[str, str],
        page_size: int,
        budget: float | None,
    ) -> None:
        self.client, self.path, self.query = client, path, query
        self.page_size, self.budget = page_size, budget
        self.capped = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        offset = 0
        while offset < MAX_SEARCH_RESULTS:
            limit = min(self.page_size, MAX_SEARCH_RESULTS - offset)
            params = {**self.query, "limit": str(limit), "offset": str(offset)}
            rsp = self.client.request(
                "Search",
                "GET",
                self.path,
                query=params,
                headers={"Accept": "application/dicom+json"},
                budget=self.budget,
            )
            page = json.loads(rsp.data) if rsp.status != 204 and rsp.data else []
            yield from page
            if len(page) < limit:
                return
            offset += len(page)
        self.capped = True


def _reason(rsp: urllib3.BaseHTTPResponse) -> str:
    """The service's error message (AWS's JSON `message`), else the start of the body."""
    try:
        doc = json.loads(rsp.data)
        if isinstance(doc, dict):
            return str(doc.get("message") or doc.get("Message") or doc)[:200]
    except ValueError:
        pass
    return rsp.data[:200].decode("utf-8", "replace") or "(no body)"
