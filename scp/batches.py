"""Batches: what one association sent for one study, closed into a manifest for one import job.

A batch opens with its open marker (so a sweeper can close it if this process dies), collects
the instances stored under incoming/{batchId}/, and closes by writing batches/{batchId}.json
after every instance is stored, then removing the marker. Schema:
config/batch-manifest.schema.json.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scp import __version__
from scp.contracts import BATCHES_PREFIX, INCOMING_PREFIX, OPEN_PREFIX
from scp.storage import StorageError, Store

LOG = logging.getLogger("scp.batches")
PRODUCER = f"scp/{__version__}"
MARKER_REFRESH_SECONDS = 60.0
CLOSE_ATTEMPTS = 3


def new_batch_id() -> str:
    """Unique and safe as an S3 key part, execution name, clientToken and jobName."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(6)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Limits:
    max_files: int = 5000
    max_bytes: int = 10 * 10**9


@dataclass(frozen=True)
class StoredInstance:
    key: str
    sop_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    size: int


@dataclass
class Batch:
    """One open batch."""

    batch_id: str
    study_uid: str
    study_date: str
    calling_ae: str
    called_ae: str
    store_prefix: str
    opened_at: str = field(default_factory=utc_now)
    instances: dict[str, StoredInstance] = field(default_factory=dict)
    total_bytes: int = 0
    marker_written: float = 0.0

    @property
    def input_prefix(self) -> str:
        return f"{self.store_prefix}{INCOMING_PREFIX}{self.batch_id}/"

    def add(self, instance: StoredInstance) -> None:
        """Add an instance; a resent one replaces its earlier copy (same key)."""
        earlier = self.instances.get(instance.key)
        self.total_bytes += instance.size - (earlier.size if earlier else 0)
        self.instances[instance.key] = instance

    def key_for(self, series_uid: str, sop_uid: str) -> str:
        """Object key of an instance, relative to the store prefix."""
        return f"{INCOMING_PREFIX}{self.batch_id}/{self.study_uid}/{series_uid}/{sop_uid}.dcm"

    def marker(self) -> dict[str, Any]:
        doc = {
            "schemaVersion": 1,
            "batchId": self.batch_id,
            "inputPrefix": self.input_prefix,
            "callingAETitle": self.calling_ae,
            "calledAETitle": self.called_ae,
            "studyInstanceUID": self.study_uid,
            "openedAt": self.opened_at,
            "producer": PRODUCER,
        }
        if self.study_date:
            doc["studyDate"] = self.study_date
        return doc

    def manifest(self, reason: str) -> dict[str, Any]:
        series: dict[str, None] = {}
        entries = []
        for inst in self.instances.values():
            series[inst.series_instance_uid] = None
            entries.append(
                {
                    "key": self.store_prefix + inst.key,
                    "sopInstanceUID": inst.sop_instance_uid,
                    "seriesInstanceUID": inst.series_instance_uid,
                    "sopClassUID": inst.sop_class_uid,
                    "transferSyntaxUID": inst.transfer_syntax_uid,
                    "bytes": inst.size,
                }
            )
        doc = self.marker()
        doc.update(
            {
                "instanceCount": len(entries),
                "totalBytes": self.total_bytes,
                "seriesInstanceUIDs": list(series),
                "instances": entries,
                "closedAt": utc_now(),
                "closeReason": reason,
            }
        )
        return doc


class AssociationBatches:
    """The open batches of one association, one per study. Safe to close from another thread."""

    def __init__(
        self,
        store: Store,
        calling_ae: str,
        called_ae: str,
        limits: Limits,
        id_factory: Callable[[], str] = new_batch_id,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store, self.limits, self.id_factory = store, limits, id_factory
        self.clock, self.sleep = clock, sleep
        self.calling_ae, self.called_ae = calling_ae, called_ae
        self.open: dict[str, Batch] = {}
        self.closed: list[str] = []
        self._lock = threading.Lock()

    def batch_for(self, study_uid: str, study_date: str, size: int) -> Batch:
        """The batch the next instance of study_uid (size bytes) goes into; opens one if needed.

        Raises StorageError when a new batch's open marker cannot be written."""
        with self._lock:
            batch = self.open.get(study_uid)
            if (
                batch is not None
                and batch.instances
                and (batch.total_bytes + size > self.limits.max_bytes)
            ):
                self._close(batch, "byte-limit")
                batch = None
            if batch is None:
                batch = Batch(
                    self.id_factory(),
                    study_uid,
                    study_date,
                    self.calling_ae,
                    self.called_ae,
                    self.store.prefix,
                )
                self._write_marker(batch)
                self.open[study_uid] = batch
            elif self.clock() - batch.marker_written > MARKER_REFRESH_SECONDS:
                self._write_marker(batch)  # heartbeat: the sweeper leaves live batches alone
            return batch

    def record(self, batch: Batch, instance: StoredInstance) -> None:
        """Add a durably stored instance; close the batch when it is full."""
        with self._lock:
            batch.add(instance)
            if len(batch.instances) >= self.limits.max_files:
                self._close(batch, "file-limit")

    def close_all(self, reason: str) -> list[str]:
        """Close every open batch; returns the ids of all batches this association closed."""
        with self._lock:
            for batch in list(self.open.values()):
                self._close(batch, reason)
            return list(self.closed)

    def _write_marker(self, batch: Batch) -> None:
        self.store.put_json(f"{OPEN_PREFIX}{batch.batch_id}.json", batch.marker())
        batch.marker_written = self.clock()

    def _close(self, batch: Batch, reason: str) -> None:
        del self.open[batch.study_uid]
        if not batch.instances:
            self._forget_marker(batch)
            return
        for attempt in range(1, CLOSE_ATTEMPTS + 1):
            try:
                self.store.put_json(
                    f"{BATCHES_PREFIX}{batch.batch_id}.json", batch.manifest(reason)
                )
                break
            except StorageError as exc:
                LOG.error(
                    "batch manifest not written",
                    extra={
                        "fields": {"batchId": batch.batch_id, "attempt": attempt, "error": str(exc)}
                    },
                )
                if attempt == CLOSE_ATTEMPTS:
                    # The open marker stays: the sweeper closes this batch from what is stored.
                    return
                self.sleep(0.5 * 2**attempt)
        self.closed.append(batch.batch_id)
        LOG.info(
            "batch closed",
            extra={
                "fields": {
                    "batchId": batch.batch_id,
                    "reason": reason,
                    "instances": len(batch.instances),
                    "bytes": batch.total_bytes,
                    "studyInstanceUID": batch.study_uid,
                }
            },
        )
        self._forget_marker(batch)

    def _forget_marker(self, batch: Batch) -> None:
        try:
            self.store.delete(f"{OPEN_PREFIX}{batch.batch_id}.json")
        except StorageError as exc:
            LOG.warning(
                "open marker not removed; the sweeper removes it",
                extra={"fields": {"batchId": batch.batch_id, "error": str(exc)}},
            )
