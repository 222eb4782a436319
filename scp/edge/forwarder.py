"""The edge forwarder: closed batches from the local folder to the stack's DICOM bucket.

Per batch: every instance is uploaded (in parallel, idempotent PUTs of the keys the cloud SCP
writes), then the manifest (the import workflow's trigger), then the local manifest moves to
forwarded/ and only then are the local copies removed (at once, or after EDGE_KEEP_DAYS). A
restart at any point repeats at most the PUTs of one batch: the same objects again, and at worst
the same manifest again, whose Step Functions execution (named after the batch) already exists,
so the batch is not imported twice. While S3 or the network is down the forwarder retries with
capped exponential backoff and full jitter, and says when forwarding resumes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from scp import ScpError
from scp.contracts import BATCHES_PREFIX, INCOMING_PREFIX
from scp.edge import FORWARDED_PREFIX, UNFORWARDABLE_PREFIX, names_in
from scp.edge.backlog import Backlog, scan_backlog
from scp.storage import StorageError, Store, lock_exclusively
from scp.storage.local import fsync_path
from scp.telemetry import METRICS_INTERVAL, emit_metrics

LOG = logging.getLogger("scp.edge")
LOCK_NAME = ".storescp-forwarder.lock"
# Retries: "Exponential Backoff And Jitter" (AWS Architecture Blog), full jitter:
# sleep = random_between(0, min(cap, base * 2 ** attempt)).
BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0
IDLE_POLL = 1.0  # seconds between looks for newly closed batches
BACKLOG_SCAN = 1.0  # seconds between walks of incoming/ for the backlog figures, at least
SCAN_SHARE = 0.1  # and at most this share of the time walking (a days-long backlog is large)
METRIC_UNITS = {
    "InstancesForwarded": "Count",
    "BytesForwarded": "Bytes",
    "ForwardFailures": "Count",
    "BacklogFiles": "Count",
    "BacklogBytes": "Bytes",
    "BacklogAgeSeconds": "Seconds",
}


class ForwardError(ScpError):
    """A batch was not forwarded this time (S3 or the network); it is retried."""


class Unforwardable(ScpError):
    """A batch can never be forwarded as it is (its manifest or an instance file is broken)."""


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Seconds to wait before retry `attempt` (1, 2, ...): full jitter under a capped doubling."""
    return rng.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempt, 32)))


@dataclass(frozen=True)
class Forwarded:
    batch_id: str
    instances: int
    bytes: int


class Forwarder:
    """Forwards the batches closed under `root` to `target` on a thread of its own."""

    name = "forwarding"  # its key in /health

    def __init__(
        self,
        root: str,
        target: Store,
        *,
        uploads: int,
        keep_days: float,
        max_age: float,
        min_free: int,
        namespace: str,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root, self.target = root, target
        self.keep_seconds, self.max_age = keep_days * 86400, max_age
        self.min_free = min_free
        self.namespace = namespace
        self.rng, self.clock = rng or random.Random(), clock
        self._pool = ThreadPoolExecutor(uploads, thread_name_prefix="Upload")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock_fd: int | None = None
        self._status_lock = threading.Lock()
        self.backlog = Backlog()
        self.failing_since: float | None = None
        self.failures = 0  # consecutive failed attempts
        self.last_error = ""
        self._counts = {"InstancesForwarded": 0, "BytesForwarded": 0, "ForwardFailures": 0}
        self._next_scan = 0.0
        self._next_flush = time.monotonic() + METRICS_INTERVAL

    # -- lifecycle --------------------------------------------------------------------------
    def claim(self) -> None:
        """Take the folder's forwarder lock: one edge SCP forwards one folder."""
        for folder in (FORWARDED_PREFIX, UNFORWARDABLE_PREFIX, BATCHES_PREFIX):
            os.makedirs(os.path.join(self.root, folder), exist_ok=True)
        fd = os.open(os.path.join(self.root, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
        lock_exclusively(
            fd, f"another edge SCP forwards {self.root!r}; give each edge SCP its own STORAGE"
        )
        self._lock_fd = fd
        self.rescan()

    def rescan(self) -> None:
        """Walk the folder for the backlog figures; the next periodic walk comes after
        BACKLOG_SCAN, or later when walking takes more than SCAN_SHARE of the time."""
        started = time.monotonic()
        self.backlog = scan_backlog(self.root)
        took = time.monotonic() - started
        self._next_scan = started + max(BACKLOG_SCAN, took / SCAN_SHARE)

    def start(self) -> Forwarder:
        self._thread = threading.Thread(target=self._run, name="Forwarder", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the batch in flight (what is not forwarded stays for the next start)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- what /health and the metrics report ------------------------------------------------
    def healthy(self) -> bool:
        return self.backlog.age(self.clock()) <= self.max_age

    def status(self) -> dict[str, Any]:
        now = self.clock()
        with self._status_lock:
            doc: dict[str, Any] = {
                "backlogFiles": self.backlog.files,
                "backlogBytes": self.backlog.bytes,
                "oldestNotForwardedSeconds": round(self.backlog.age(now), 1),
                "maxAgeSeconds": self.max_age,
                "target": str(self.target),
            }
            if self.failing_since is not None:
                doc["failingForSeconds"] = round(now - self.failing_since, 1)
                doc["failedAttempts"] = self.failures
                doc["lastError"] = self.last_error
        return doc

    def flush_metrics(self) -> None:
        with self._status_lock:
            values: dict[str, Any] = dict(self._counts)
            for name in self._counts:
                self._counts[name] = 0
        values["BacklogFiles"] = self.backlog.files
        values["BacklogBytes"] = self.backlog.bytes
        values["BacklogAgeSeconds"] = round(self.backlog.age(self.clock()), 1)
        emit_metrics(self.namespace, values, METRIC_UNITS)

    # -- the loop ---------------------------------------------------------------------------
    def _run(self) -> None:
        self.target.connect()
        while not self._stop.is_set():
            try:
                forwarded = self.forward_pending()
            except ForwardError as exc:
                self._failed(str(exc))
                self._pause(backoff_delay(self.failures, self.rng))
                continue
            self.prune()
            if forwarded:
                self.rescan()
            else:
                self._pause(IDLE_POLL)
        self.flush_metrics()

    def _pause(self, seconds: float) -> None:
        """Wait (a stop ends it), keeping the backlog figures and the metrics current."""
        end = time.monotonic() + seconds
        while not self._stop.is_set() and (left := end - time.monotonic()) > 0:
            now = time.monotonic()
            if now >= self._next_scan:
                self.rescan()
            if now >= self._next_flush:
                self.flush_metrics()
                self._next_flush = now + METRICS_INTERVAL
            self._stop.wait(min(left, BACKLOG_SCAN))

    def forward_pending(self) -> list[Forwarded]:
        """Forward every closed batch, oldest first; raises ForwardError at the first that
        S3 did not take (the others wait: order is kept)."""
        done = []
        for name in sorted(names_in(os.path.join(self.root, BATCHES_PREFIX))):
            if self._stop.is_set():
                break
            if not name.endswith(".json"):
                continue
            batch_id = name.removesuffix(".json")
            try:
                done.append(self.forward(batch_id))
            except Unforwardable as exc:
                self._set_aside(batch_id, str(exc))
        return done

    def forward(self, batch_id: str) -> Forwarded:
        """Upload one batch's instances, then its manifest; then mark it forwarded locally."""
        started = time.monotonic()
        manifest = self._manifest(batch_id)
        uploads = []
        for entry in manifest["instances"]:
            path = os.path.join(self.root, *entry["key"].split("/"))
            if not os.path.isfile(path):
                raise Unforwardable(f"instance file missing: {entry['key']}")
            uploads.append(
                self._pool.submit(self.target.put_file, entry["key"], path, entry["bytes"])
            )
        errors = [str(e) for e in (f.exception() for f in uploads) if e is not None]
        if errors:
            raise ForwardError(f"{len(errors)} of {len(uploads)} uploads failed: {errors[0]}")
        try:
            self.target.put_json(f"{BATCHES_PREFIX}{batch_id}.json", self._for_target(manifest))
        except StorageError as exc:
            raise ForwardError(str(exc)) from None
        self._mark_forwarded(batch_id)
        done = Forwarded(batch_id, len(uploads), manifest["totalBytes"])
        self._succeeded(done, time.monotonic() - started)
        return done

    def prune(self) -> None:
        """Remove the local copies of forwarded batches past EDGE_KEEP_DAYS (at once if 0),
        and, oldest first, any forwarded copy while the disk is within twice MIN_FREE_DISK of
        full: the cache gives way before new instances are refused. Nothing not forwarded."""
        folder = os.path.join(self.root, FORWARDED_PREFIX)
        now = self.clock()
        cached = []
        for name in names_in(folder):
            with contextlib.suppress(FileNotFoundError):
                cached.append((os.path.getmtime(os.path.join(folder, name)), name))
        for modified, name in sorted(cached):
            if now - modified < self.keep_seconds and not self._disk_tight():
                continue
            shutil.rmtree(
                os.path.join(self.root, INCOMING_PREFIX, name.removesuffix(".json")), True
            )
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(folder, name))

    def _disk_tight(self) -> bool:
        return shutil.disk_usage(self.root).free < 2 * self.min_free

    # -- steps ------------------------------------------------------------------------------
    def _manifest(self, batch_id: str) -> dict[str, Any]:
        try:
            with open(os.path.join(self.root, BATCHES_PREFIX, batch_id + ".json"), "rb") as fp:
                manifest = json.load(fp)
        except (OSError, ValueError) as exc:
            raise Unforwardable(f"manifest unreadable: {exc}") from None
        if not (isinstance(manifest.get("instances"), list) and "totalBytes" in manifest):
            raise Unforwardable("manifest without instances or totalBytes")
        return manifest

    def _for_target(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """The manifest as the cloud SCP writes it under the target's prefix."""
        prefix = self.target.prefix
        doc = dict(manifest)
        doc["inputPrefix"] = prefix + manifest["inputPrefix"]
        doc["instances"] = [{**e, "key": prefix + e["key"]} for e in manifest["instances"]]
        return doc

    def _mark_forwarded(self, batch_id: str) -> None:
        """S3 acknowledged the manifest: from now on the batch is the cloud's."""
        name = batch_id + ".json"
        os.replace(
            os.path.join(self.root, BATCHES_PREFIX, name),
            os.path.join(self.root, FORWARDED_PREFIX, name),
        )
        os.utime(os.path.join(self.root, FORWARDED_PREFIX, name))  # keep-days count from now
        for folder in (BATCHES_PREFIX, FORWARDED_PREFIX):
            fsync_path(os.path.join(self.root, folder))

    def _set_aside(self, batch_id: str, reason: str) -> None:
        name = batch_id + ".json"
        os.replace(
            os.path.join(self.root, BATCHES_PREFIX, name),
            os.path.join(self.root, UNFORWARDABLE_PREFIX, name),
        )
        LOG.error(
            "batch cannot be forwarded; set aside in unforwardable/ with its instances",
            extra={
                "fields": {"event": "edge-unforwardable", "batchId": batch_id, "reason": reason}
            },
        )

    def _failed(self, error: str) -> None:
        with self._status_lock:
            if self.failing_since is None:
                self.failing_since = self.clock()
            self.failures += 1
            self.last_error = error
            self._counts["ForwardFailures"] += 1
        LOG.warning(
            "forwarding failed; retrying",
            extra={
                "fields": {
                    "event": "edge-forward-failed",
                    "attempt": self.failures,
                    "error": error,
                    "backlogFiles": self.backlog.files,
                }
            },
        )

    def _succeeded(self, done: Forwarded, seconds: float) -> None:
        with self._status_lock:
            outage, failures = self.failing_since, self.failures
            self.failing_since, self.failures, self.last_error = None, 0, ""
            self._counts["InstancesForwarded"] += done.instances
            self._counts["BytesForwarded"] += done.bytes
        if outage is not None:
            LOG.info(
                "forwarding resumed after an outage",
                extra={
                    "fields": {
                        "event": "edge-forward-resumed",
                        "outageSeconds": round(self.clock() - outage, 1),
                        "failedAttempts": failures,
                        "backlogFiles": self.backlog.files,
                        "backlogBytes": self.backlog.bytes,
                    }
                },
            )
        LOG.info(
            "batch forwarded",
            extra={
                "fields": {
                    "event": "edge-batch-forwarded",
                    "batchId": done.batch_id,
                    "instances": done.instances,
                    "bytes": done.bytes,
                    "seconds": round(seconds, 3),
                }
            },
        )
