"""The SCP's behaviour: association policy, C-ECHO, C-STORE, and closing batches.

Handlers are bound to pynetdicom events and return DICOM statuses instead of raising.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pynetdicom import evt
from pynetdicom.association import Association

from scp.batches import AssociationBatches, Limits, StoredInstance
from scp.dataset_scan import DatasetError, InstanceInfo, scan_part10
from scp.settings import UID_RE, Settings
from scp.slots import LocalSlots
from scp.storage import StorageError, Store
from scp.telemetry import Metrics

LOG = logging.getLogger("scp")

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # storage failed: the modality retries
DATASET_MISMATCH = 0xA900  # dataset does not match the SOP class it was sent as
CANNOT_UNDERSTAND = 0xC210  # dataset does not parse to its end
UNEXPECTED_ERROR = 0xC211
INVALID_UID = 0xC212

# A-ASSOCIATE-RJ (result, source, diagnostic)
REJECT_CALLED_AE = (0x01, 0x01, 0x07)
REJECT_CALLING_AE = (0x01, 0x01, 0x03)
REJECT_LIMIT = (0x02, 0x03, 0x02)
REJECT_DRAINING = (0x02, 0x03, 0x01)
CONTEXT_RESULTS = {
    0x01: "user rejection",
    0x02: "no reason",
    0x03: "SOP class not supported",
    0x04: "transfer syntaxes not supported",
}


class Refused(Exception):
    """An instance is refused with a DICOM failure status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class AssociationState:
    """What the SCP tracks for one accepted association."""

    calling_ae: str
    called_ae: str
    peer: str
    batches: AssociationBatches
    started: float = field(default_factory=time.monotonic)
    instances: int = 0
    bytes: int = 0
    failures: int = 0
    finished: bool = False


def valid_uid(uid: str) -> bool:
    return 0 < len(uid) <= 64 and UID_RE.match(uid) is not None


class StoreService:
    """Association policy and DIMSE handlers over one Store."""

    def __init__(
        self, settings: Settings, store: Store, metrics: Metrics, slots: LocalSlots | None = None
    ) -> None:
        self.settings, self.store, self.metrics = settings, store, metrics
        self.slots = slots or LocalSlots()
        self.limits = Limits(settings.batch_max_files, settings.batch_max_bytes)
        self.draining = False
        self.shutting_down = False  # drain deadline passed: batches close as "shutdown"
        self._lock = threading.Lock()
        self._states: dict[Association, AssociationState] = {}
        self._finishers: list[threading.Thread] = []

    # -- bindings -------------------------------------------------------------------------
    def handlers(self) -> list[tuple[Any, Any]]:
        return [
            (evt.EVT_REQUESTED, self.on_requested),
            (evt.EVT_ESTABLISHED, self.on_established),
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_C_STORE, self.on_store),
            (evt.EVT_CONN_CLOSE, self.on_conn_close),
        ]

    # -- association policy ----------------------------------------------------------------
    def _live(self) -> int:
        """Accepted associations whose thread still runs (self-healing: no counter to leak).
        Call with self._lock held."""
        return sum(1 for a in self._states if a.is_alive())

    def active_count(self) -> int:
        """Associations running now, across worker processes."""
        self.reap()
        with self._lock:
            self.slots.update(self._live())
        return self.slots.total()

    def reap(self) -> None:
        """Finish associations whose thread ended without a connection-closed event (pynetdicom's
        DUL thread dies on some protocol errors): close their batches, forget their state."""
        with self._lock:
            dead = [a for a, st in self._states.items() if not st.finished and not a.is_alive()]
        for assoc in dead:
            self._finish(assoc, join=False)

    def on_requested(self, event: evt.Event) -> None:
        self.reap()
        assoc = event.assoc
        rq = assoc.requestor.primitive
        calling, called = rq.calling_ae_title.strip(), rq.called_ae_title.strip()
        peer = assoc.requestor.address
        s = self.settings
        reason, rsd = "", ()
        if self.draining:
            reason, rsd = "draining", REJECT_DRAINING
        elif s.require_called_ae_title and called != s.ae_title:
            reason, rsd = "called AE title not recognised", REJECT_CALLED_AE
        elif s.require_calling_ae_title and calling not in s.require_calling_ae_title:
            reason, rsd = "calling AE title not allowed", REJECT_CALLING_AE
        else:
            with self._lock:
                if not self.slots.admit(self._live(), s.maximum_associations):
                    reason, rsd = "local limit exceeded", REJECT_LIMIT
                else:
                    self._states[assoc] = AssociationState(
                        calling,
                        called,
                        peer,
                        AssociationBatches(self.store, calling, called, self.limits),
                    )
        if rsd:
            self.metrics.rejected()
            LOG.warning(
                "association rejected",
                extra={
                    "fields": {
                        "event": "association-rejected",
                        "reason": reason,
                        "callingAETitle": calling,
                        "calledAETitle": called,
                        "peer": peer,
                        "result": rsd[0],
                        "source": rsd[1],
                        "diagnostic": rsd[2],
                    }
                },
            )
            assoc.acse.send_reject(*rsd)
            assoc.kill()

    def on_established(self, event: evt.Event) -> None:
        """Log, once per association, the presentation contexts it was refused."""
        refused = event.assoc.rejected_contexts
        if refused:
            state = self._states.get(event.assoc)
            LOG.warning(
                "presentation contexts rejected",
                extra={
                    "fields": {
                        "event": "contexts-rejected",
                        "callingAETitle": state.calling_ae if state else "",
                        "contexts": [
                            {
                                "abstractSyntax": str(cx.abstract_syntax),
                                "reason": CONTEXT_RESULTS.get(cx.result, str(cx.result)),
                            }
                            for cx in refused
                        ],
                    }
                },
            )

    # -- DIMSE -----------------------------------------------------------------------------
    def on_echo(self, event: evt.Event) -> int:
        return SUCCESS

    def on_store(self, event: evt.Event) -> int:
        started = time.monotonic()
        state = self._states.get(event.assoc)
        req = event.request
        sop_uid = str(req.AffectedSOPInstanceUID or "")
        try:
            if state is None:
                raise Refused(UNEXPECTED_ERROR, "association not accepted by this SCP")
            size = self._store(state, event, sop_uid)
        except Refused as exc:
            return self._failed(state, exc.status, str(exc), sop_uid)
        except Exception as exc:
            return self._failed(state, UNEXPECTED_ERROR, f"{type(exc).__name__}: {exc}", sop_uid)
        state.instances += 1
        state.bytes += size
        self.metrics.stored(size, (time.monotonic() - started) * 1000)
        return SUCCESS

    def _store(self, state: AssociationState, event: evt.Event, sop_uid: str) -> int:
        sop_class = str(event.request.AffectedSOPClassUID or "")
        if not (valid_uid(sop_uid) and valid_uid(sop_class)):
            raise Refused(INVALID_UID, "C-STORE request has an invalid SOP Class/Instance UID")
        if sop_class != event.context.abstract_syntax:
            raise Refused(DATASET_MISMATCH, "SOP Class differs from the presentation context's")
        path = os.fspath(event.dataset_path)
        try:
            info = scan_part10(path)
        except DatasetError as exc:
            raise Refused(CANNOT_UNDERSTAND, f"dataset does not parse: {exc}") from None
        _check_identity(info, sop_class, sop_uid)
        size = os.path.getsize(path)
        try:
            batch = state.batches.batch_for(info.study_instance_uid, info.study_date, size)
            key = batch.key_for(info.series_instance_uid, sop_uid)
            self.store.put_file(key, path, size)
        except StorageError as exc:
            raise Refused(OUT_OF_RESOURCES, str(exc)) from None
        state.batches.record(
            batch,
            StoredInstance(
                key, sop_uid, info.series_instance_uid, sop_class, info.transfer_syntax_uid, size
            ),
        )
        return size

    def _failed(
        self, state: AssociationState | None, status: int, reason: str, sop_uid: str
    ) -> int:
        if state is not None:
            state.failures += 1
        self.metrics.failed()
        LOG.error(
            "instance refused",
            extra={
                "fields": {
                    "event": "store-failed",
                    "status": f"0x{status:04X}",
                    "reason": reason,
                    "sopInstanceUID": sop_uid if valid_uid(sop_uid) else "(invalid)",
                    "callingAETitle": state.calling_ae if state else "",
                }
            },
        )
        return status

    # -- association end -------------------------------------------------------------------
    def on_conn_close(self, event: evt.Event) -> None:
        """The connection closed (DUL thread). Close batches once the association's own thread
        has ended, so no C-STORE is still being stored when its manifest is written."""
        assoc = event.assoc
        if assoc not in self._states:
            return
        finisher = threading.Thread(
            target=self._finish, args=(assoc,), daemon=True, name="BatchCloser"
        )
        with self._lock:
            self._finishers = [t for t in self._finishers if t.is_alive()] + [finisher]
        finisher.start()

    def _finish(self, assoc: Association, join: bool = True) -> None:
        if join:
            assoc.join(timeout=self.settings.dimse_timeout + 30)
        with self._lock:
            state = self._states.get(assoc)
            if state is None or state.finished:
                return
            state.finished = True
        if self.shutting_down:
            outcome = "shutdown"
        else:
            outcome = "released" if assoc.is_released else "aborted"
        closed = state.batches.close_all(outcome)
        LOG.info(
            "association ended",
            extra={
                "fields": {
                    "event": "association",
                    "outcome": outcome,
                    "callingAETitle": state.calling_ae,
                    "calledAETitle": state.called_ae,
                    "peer": state.peer,
                    "instances": state.instances,
                    "bytes": state.bytes,
                    "failures": state.failures,
                    "batches": closed,
                    "durationMs": round((time.monotonic() - state.started) * 1000),
                }
            },
        )
        with self._lock:
            self._states.pop(assoc, None)
            self.slots.update(self._live())

    def abort_all(self) -> None:
        """Drain deadline passed: abort what is still running; its batches close as shutdown."""
        self.shutting_down = True
        for assoc in list(self._states):
            if assoc.is_alive():
                assoc.abort()

    def finish_all(self, timeout: float) -> None:
        """Wait for batch closers in flight, then close whatever is still open."""
        deadline = time.monotonic() + timeout
        for t in list(self._finishers):
            t.join(max(0.0, deadline - time.monotonic()))
        for assoc in list(self._states):
            self._finish(assoc, join=False)


def _check_identity(info: InstanceInfo, sop_class: str, sop_uid: str) -> None:
    for name in ("study_instance_uid", "series_instance_uid"):
        if not valid_uid(getattr(info, name)):
            raise Refused(INVALID_UID, f"{name} is not a valid UID")
    if info.sop_instance_uid != sop_uid:
        raise Refused(DATASET_MISMATCH, "dataset's SOP Instance UID differs from the request's")
    if info.sop_class_uid != sop_class:
        raise Refused(DATASET_MISMATCH, "dataset's SOP Class UID differs from the request's")
