"""JSON log lines and CloudWatch embedded-metric-format (EMF) lines, both on stdout.

Only UIDs, AE titles, addresses, sizes, statuses and timings are ever logged: never a value read
from a dataset other than its UIDs (no names, IDs, dates or pixel data).
"""

from __future__ import annotations

import json
import logging
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


class JsonFormatter(logging.Formatter):
    """One JSON object per record; structured fields come from extra={"fields": {...}}."""

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
        return json.dumps(doc, default=str)


class _StdoutHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            _write(self.format(record))
        except Exception:
            self.handleError(record)


def configure_logging(level: str) -> None:
    """JSON lines on stdout. pynetdicom's own logger is kept at WARNING (it can print PDUs)."""
    handler = _StdoutHandler()
    handler.setFormatter(JsonFormatter())
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
        }
        self._latencies: list[float] = []

    def stored(self, size: int, latency_ms: float) -> None:
        with self._lock:
            self._counts["InstancesStored"] += 1
            self._counts["BytesStored"] += size
            self._latencies.append(round(latency_ms, 2))
            if len(self._latencies) > self.MAX_VALUES:
                self._latencies = self._latencies[-self.MAX_VALUES :]

    def failed(self) -> None:
        with self._lock:
            self._counts["StoreFailures"] += 1

    def rejected(self) -> None:
        with self._lock:
            self._counts["RejectedAssociations"] += 1

    def flush(self, active_associations: int | None) -> None:
        """Write one EMF line with the counters since the last flush and, unless None (a worker
        process: the supervisor reports it), the ActiveAssociations gauge."""
        with self._lock:
            values: dict[str, Any] = dict(self._counts)
            if self._latencies:
                values["StoreLatency"] = self._latencies
            if active_associations is not None:
                values["ActiveAssociations"] = active_associations
            for name in self._counts:
                self._counts[name] = 0
            self._latencies = []
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
