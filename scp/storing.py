"""Storing one received instance: check it, store it durably, record it in its batch; the
answer is a C-STORE status (scp/statuses.py), never an exception."""

from __future__ import annotations

import logging
import os
import time

from pynetdicom import evt

from scp import statuses
from scp.association import refused_for_space
from scp.batches import StoredInstance
from scp.dataset_scan import DatasetError, InstanceInfo, scan_part10
from scp.direct_store import STORED, DirectStore
from scp.job_records import StoredRecords
from scp.registry import AssociationState
from scp.settings import is_uid
from scp.statuses import StoreStatus
from scp.storage import StorageError, Store
from scp.telemetry import Metrics

LOG = logging.getLogger("scp")


class Refused(Exception):
    """An instance is refused with a DICOM failure status."""

    def __init__(self, status: StoreStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class InstanceStorer:
    """The C-STORE pipeline of one process, over one Store."""

    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        direct: DirectStore | None = None,
        stored_records: StoredRecords | None = None,
    ) -> None:
        self.store, self.metrics, self.direct = store, metrics, direct
        self.stored_records = stored_records

    def store_instance(self, state: AssociationState | None, event: evt.Event) -> int:
        started = time.monotonic()
        sop_uid = str(event.request.AffectedSOPInstanceUID or "")
        try:
            if state is None:
                raise Refused(statuses.UNEXPECTED_ERROR, "association not accepted by this SCP")
            size = self._store(state, event, sop_uid)
        except Refused as exc:
            return self._failed(state, exc.status, str(exc), sop_uid)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            return self._failed(state, statuses.UNEXPECTED_ERROR, reason, sop_uid)
        state.instances += 1
        state.bytes += size
        self.metrics.stored(size, (time.monotonic() - started) * 1000)
        return statuses.SUCCESS.code

    def _store(self, state: AssociationState, event: evt.Event, sop_uid: str) -> int:
        sop_class = str(event.request.AffectedSOPClassUID or "")
        if not (is_uid(sop_uid) and is_uid(sop_class)):
            raise Refused(
                statuses.INVALID_UID, "C-STORE request has an invalid SOP Class/Instance UID"
            )
        if sop_class != event.context.abstract_syntax:
            raise Refused(
                statuses.DATASET_MISMATCH, "SOP Class differs from the presentation context's"
            )
        if refused_for_space(event.request):
            raise Refused(statuses.NO_DISK_SPACE, "temporary folder below MIN_FREE_DISK")
        path = os.fspath(event.dataset_path)
        try:
            info = scan_part10(path)
        except DatasetError as exc:
            raise Refused(statuses.CANNOT_UNDERSTAND, f"dataset does not parse: {exc}") from None
        _check_identity(info, sop_class, sop_uid)
        size = os.path.getsize(path)
        if self.direct and self.direct.route.wants(state.calling_ae, _priority(event)):
            result = self.direct.store_instance(path, size, info)
            if result.outcome == STORED:
                return size
            if result.status is not None:
                raise Refused(result.status, result.reason)
        try:
            batch = state.batches.batch_for(info.study_instance_uid, info.study_date, size)
            key = batch.key_for(info.series_instance_uid, sop_uid)
            self.store.put_file(key, path, size)
        except StorageError as exc:
            raise Refused(statuses.OUT_OF_RESOURCES, str(exc)) from None
        state.batches.record(
            batch,
            StoredInstance(
                key, sop_uid, info.series_instance_uid, sop_class, info.transfer_syntax_uid, size
            ),
        )
        if self.stored_records is not None:
            _record_stored(self.stored_records, info, batch.batch_id, self.store.prefix + key)
        return size

    def _failed(
        self, state: AssociationState | None, status: StoreStatus, reason: str, sop_uid: str
    ) -> int:
        if state is not None:
            state.failures += 1
        self.metrics.failed()
        LOG.error(
            "instance refused",
            extra={
                "fields": {
                    "event": "store-failed",
                    "status": f"0x{status.code:04X}",
                    "reason": reason,
                    "sopInstanceUID": sop_uid if is_uid(sop_uid) else "(invalid)",
                    "callingAETitle": state.calling_ae if state else "",
                }
            },
        )
        return status.code


def _record_stored(records: StoredRecords, info: InstanceInfo, batch_id: str, key: str) -> None:
    """Commit on storage: the job-table item before Success. Without it the answer is a
    failure; the object stays in its batch and is imported as usual, and the modality sends
    the instance again."""
    try:
        records.record(info, batch_id, key)
    except Exception as exc:
        raise Refused(
            statuses.OUT_OF_RESOURCES,
            f"stored, but not recorded for storage commitment: {type(exc).__name__}: {exc}",
        ) from None


def _priority(event: evt.Event) -> int:
    return int(getattr(event.request, "Priority", 0) or 0)


def _check_identity(info: InstanceInfo, sop_class: str, sop_uid: str) -> None:
    if info.sop_instance_uid != sop_uid:
        raise Refused(
            statuses.DATASET_MISMATCH, "dataset's SOP Instance UID differs from the request's"
        )
    if info.sop_class_uid != sop_class:
        raise Refused(
            statuses.DATASET_MISMATCH, "dataset's SOP Class UID differs from the request's"
        )
    for name in ("study_instance_uid", "series_instance_uid"):
        if not is_uid(getattr(info, name)):
            raise Refused(statuses.NOT_IMPORTABLE, f"{name} is missing or not a valid UID")
