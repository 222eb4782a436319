"""The SCP's pynetdicom event handlers, wiring one object per responsibility: admission
(scp/admission.py), the association registry (scp/registry.py), storing one instance
(scp/storing.py) and closing batches (scp/closing.py).

Handlers are bound to pynetdicom events and return DICOM statuses instead of raising.
"""

from __future__ import annotations

import logging
from typing import Any

from pynetdicom import evt

from scp.admission import LIMIT_EXCEEDED, Admission
from scp.batches import AssociationBatches, Limits
from scp.closing import BatchCloser
from scp.direct_store import open_direct_store
from scp.job_records import open_stored_records
from scp.registry import AssociationRegistry, AssociationState
from scp.settings import Settings
from scp.slots import LocalSlots
from scp.storage import Store
from scp.storing import InstanceStorer
from scp.telemetry import Metrics

LOG = logging.getLogger("scp")
CONTEXT_RESULTS = {
    0x01: "user rejection",
    0x02: "no reason",
    0x03: "SOP class not supported",
    0x04: "transfer syntaxes not supported",
}


class StoreService:
    """Association policy and DIMSE handlers over one Store."""

    def __init__(
        self, settings: Settings, store: Store, metrics: Metrics, slots: LocalSlots | None = None
    ) -> None:
        self.settings, self.store, self.metrics = settings, store, metrics
        self.limits = Limits(settings.batch_max_files, settings.batch_max_bytes)
        self.admission = Admission(settings)
        self.registry = AssociationRegistry(slots)
        self.storer = InstanceStorer(
            store,
            metrics,
            open_direct_store(settings, store, metrics),
            open_stored_records(settings),
        )
        self.closer = BatchCloser(self.registry, join_timeout=settings.dimse_timeout + 30)

    def start(self) -> StoreService:
        self.closer.start()
        return self

    @property
    def draining(self) -> bool:
        return self.admission.draining

    def drain(self) -> None:
        self.admission.drain()

    def active_count(self) -> int:
        """Associations running now, across worker processes; never waits on storage."""
        return self.registry.active_count()

    def abort_all(self) -> None:
        self.closer.abort_all()

    def finish_all(self, timeout: float) -> None:
        self.closer.finish_all(timeout)

    def handlers(self) -> list[tuple[Any, Any]]:
        """The association policy's handlers; the DIMSE services' are in scp/services.py."""
        return [
            (evt.EVT_REQUESTED, self.on_requested),
            (evt.EVT_ESTABLISHED, self.on_established),
            (evt.EVT_CONN_CLOSE, self.on_conn_close),
        ]

    def on_requested(self, event: evt.Event) -> None:
        assoc = event.assoc
        rq = assoc.requestor.primitive
        calling, called = rq.calling_ae_title.strip(), rq.called_ae_title.strip()
        peer = assoc.requestor.address
        rejection = self.admission.check(calling, called)
        if rejection is None:
            batches = AssociationBatches(self.store, calling, called, self.limits)
            state = AssociationState(calling, called, peer, batches)
            if self.registry.admit(assoc, state, self.settings.maximum_associations):
                return
            rejection = LIMIT_EXCEEDED
        self.metrics.rejected()
        LOG.warning(
            "association rejected",
            extra={
                "fields": {
                    "event": "association-rejected",
                    "reason": rejection.reason,
                    "callingAETitle": calling,
                    "calledAETitle": called,
                    "peer": peer,
                    "result": rejection.result,
                    "source": rejection.source,
                    "diagnostic": rejection.diagnostic,
                }
            },
        )
        assoc.acse.send_reject(rejection.result, rejection.source, rejection.diagnostic)
        assoc.kill()

    def on_established(self, event: evt.Event) -> None:
        """Log, once per association, the presentation contexts it was refused."""
        refused = event.assoc.rejected_contexts
        if refused:
            state = self.registry.get(event.assoc)
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

    def on_store(self, event: evt.Event) -> int:
        return self.storer.store_instance(self.registry.get(event.assoc), event)

    def on_conn_close(self, event: evt.Event) -> None:
        self.closer.ended(event.assoc)
