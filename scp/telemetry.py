"""JSON log lines and CloudWatch embedded-metric-format (EMF) lines, both on stdout.

Only UIDs, AE titles, addresses, sizes, statuses and timings are ever logged: never a value read
from a dataset other than its UIDs (no names, IDs, dates or pixel data). LOG_UIDS decides how
instance UIDs appear (config/log-fields.yaml lists every field; docs/data-protection.md says it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import threading
import time
from typing import Any, ClassVar, TextIO

_WRITE_LOCK = threading.Lock()
METRICS_INTERVAL = 60.0  # seconds between EMF lines


def _write(line: str, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    with _WRITE_LOCK:
        stream.write(line + "\n")
        stream.flush()


# An instance UID wherever it appears (a field, an S3 key, an error message): five or more
# dotted numbers (an IPv4 address has four); DICOM's own UIDs (SOP classes, transfer syntaxes,
# under 1.2.840.10008) identify nothing and stay readable.
UID_TOKEN = re.compile(r"(?<![0-9.])[0-9]+(?:\.[0-9]+){4,}(?![0-9]|\.[0-9])")
STANDARD_UID_ROOT = "1.2.840.10008."
UID_POLICIES = ("plain", "hashed", "none")


def uid_pseudonym(uid: str) -> str:
    """`sha256:` and the first 16 hex digits of the UID's SHA-256: the same UID gives the same
    pseudonym, so lines still correlate (`printf %s UID | sha256sum` finds a known UID's)."""
    return "sha256:" + hashlib.sha256(uid.encode()).hexdigest()[:16]


def apply_uid_policy(value: Any, policy: str) -> Any:
    """value with every instance UID in its strings kept, hashed or replaced by `(uid)`."""
    if policy == "plain":
        return value
    if isinstance(value, str):
        return UID_TOKEN.sub(lambda m: _replace(m.group(0), policy), value)
    if isinstance(value, dict):
        return {k: apply_uid_policy(v, policy) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [apply_uid_policy(v, policy) for v in value]
    return value


def _replace(uid: str, policy: str) -> str:
    if uid.startswith(STANDARD_UID_ROOT):
        return uid
    return uid_pseudonym(uid) if policy == "hashed" else "(uid)"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; structured fields come from extra={"fields": {...}}.
    `uids` (LOG_UIDS): plain, hashed (a pseudonym per UID) or none (fields named *InstanceUID
    dropped, UIDs inside other values replaced by `(uid)`)."""

    def __init__(self, uids: str = "plain") -> None:
        super().__init__()
        self.uids = uids

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update(getattr(record, "fields", {}))
        if record.exc_info and record.exc_info[0] is not None:
            # The exception's type and message only: a traceback's locals never reach the log.
            doc["error"] = f"{record.exc_info[0].__name__}: {record.exc_info[1]}"
        if self.uids == "none":
            doc = {k: v for k, v in doc.items() if not k.endswith("InstanceUID")}
        return json.dumps(apply_uid_policy(doc, self.uids), default=str)


class _StdoutHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            _write(self.format(record))
        except Exception:
            self.handleError(record)


def configure_logging(level: str, uids: str = "plain") -> None:
    """JSON lines on stdout, instance UIDs as LOG_UIDS says. pynetdicom's own logger is kept at
    WARNING (it can print PDUs)."""
    handler = _StdoutHandler()
    handler.setFormatter(JsonFormatter(uids))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


class Metrics:
    """EMF emitter. Counters accumulate and are flushed as one line per interval."""

    UNITS: ClassVar[dict[str, str]] = {
        "InstancesStored": "Count",
        "BytesStored": "Bytes",
        "StoreFailures": "Count",
        "StoreLatency": "Milliseconds",
        "ActiveAssociations": "Count",
        "RejectedAssociations": "Count",
        "DirectStored": "Count",
        "DirectFallbacks": "Count",
        "DirectStoreLatency": "Milliseconds",
        "CommitmentsPending": "Count",
        "InstancesCommitted": "Count",
        "CommitmentFailures": "Count",
        "CommitmentsUndeliverable": "Count",
    }
    MAX_VALUES = 100  # EMF accepts at most 100 values per metric in one line

    def __init__(self, namespace: str, stream: TextIO | None = None) -> None:
        self.namespace = namespace
        self.stream = stream
        self._lock = threading.Lock()
        self._counts = {
            "InstancesStored": 0,
            "BytesStored": 0,
            "StoreFailures": 0,
            "RejectedAssociations": 0,
            "DirectStored": 0,
            "DirectFallbacks": 0,
        }
        self._latencies: list[float] = []
        self._direct_latencies: list[float] = []
        self._gauges: dict[str, int] = {}

    def stored(self, size: int, latency_ms: float) -> None:
        with self._lock:
            self._counts["InstancesStored"] += 1
            self._counts["BytesStored"] += size
            self._latencies = self._sample(self._latencies, latency_ms)

    def direct_stored(self, latency_ms: float) -> None:
        """An instance StoreDICOM stored; latency_ms is StoreDICOM's, retries included."""
        with self._lock:
            self._counts["DirectStored"] += 1
            self._direct_latencies = self._sample(self._direct_latencies, latency_ms)

    def direct_fallback(self) -> None:
        """An instance routed to StoreDICOM that took the batch path instead."""
        with self._lock:
            self._counts["DirectFallbacks"] += 1

    def _sample(self, values: list[float], latency_ms: float) -> list[float]:
        values.append(round(latency_ms, 2))
        return values[-self.MAX_VALUES :]

    def failed(self) -> None:
        with self._lock:
            self._counts["StoreFailures"] += 1

    def rejected(self) -> None:
        with self._lock:
            self._counts["RejectedAssociations"] += 1

    def add(self, name: str, value: int) -> None:
        """Add to a counter of UNITS (flushed and reset each interval)."""
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + value

    def gauge(self, name: str, value: int) -> None:
        """Set a gauge of UNITS (its last value goes into each line)."""
        with self._lock:
            self._gauges[name] = value

    def flush(self, active_associations: int | None) -> None:
        """Write one EMF line with the counters since the last flush and, unless None (a worker
        process: the supervisor reports it), the ActiveAssociations gauge."""
        with self._lock:
            values: dict[str, Any] = {**self._counts, **self._gauges}
            if self._latencies:
                values["StoreLatency"] = self._latencies
            if self._direct_latencies:
                values["DirectStoreLatency"] = self._direct_latencies
            if active_associations is not None:
                values["ActiveAssociations"] = active_associations
            for name in self._counts:
                self._counts[name] = 0
            self._latencies, self._direct_latencies = [], []
        emit_metrics(self.namespace, values, self.UNITS, self.stream)


def emit_metrics(
    namespace: str, values: dict[str, Any], units: dict[str, str], stream: TextIO | None = None
) -> None:
    """One EMF line with these values (a number, or a list of at most 100), named in units."""
    doc = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [[]],
                    "Metrics": [{"Name": n, "Unit": units[n]} for n in values],
                }
            ],
        },
        **values,
    }
    _write(json.dumps(doc), stream)
