"""Storing one instance straight into HealthImaging (StoreDICOM), acknowledged only when the
STOW-RS response lists it as stored.

The three answers: STORED (listed in 0008,1199: kept under direct/ in the store, recorded in the
job table); REFUSED (listed in 0008,1198: the matching failure status, nothing stored); FALLBACK
(throttled, unreachable, 5xx beyond the budget, or any other answer that does not list it: the
caller stores it on the batch path, so it is never lost and never waits long).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from scp import statuses
from scp.contracts import DIRECT_PREFIX
from scp.dataset_scan import InstanceInfo
from scp.healthimaging.client import MAX_STORE_BYTES, DicomWebClient, RetryPolicy
from scp.healthimaging.errors import DicomWebError
from scp.healthimaging.routing import DirectRoute
from scp.healthimaging.signing import open_client
from scp.job_records import JobTable, direct_item
from scp.settings import Settings
from scp.statuses import StoreStatus
from scp.storage import StorageError, Store
from scp.telemetry import Metrics

LOG = logging.getLogger("scp.direct")
STORED, REFUSED, FALLBACK = "stored", "refused", "fallback"
PRIMARY_CHECK_BUDGET = 2.0  # seconds the QIDO-RS check of a stored instance may take


@dataclass(frozen=True)
class DirectResult:
    outcome: str
    status: StoreStatus | None = None
    reason: str = ""


def refusal_status(reason: int) -> StoreStatus | None:
    """The C-STORE status of a STOW-RS Failure Reason; None when the reason is the service's
    resources (0xA7xx), which another path can still store."""
    if 0xA700 <= reason <= 0xA7FF:
        return None
    if 0xA900 <= reason <= 0xA9FF:
        return statuses.DATASET_MISMATCH
    return statuses.REFUSED_BY_HEALTHIMAGING


class DirectStore:
    """StoreDICOM for the instances the route selects."""

    def __init__(
        self,
        client: DicomWebClient,
        route: DirectRoute,
        store: Store,
        metrics: Metrics,
        datastore_id: str,
        table: JobTable | None = None,
    ) -> None:
        self.client, self.route, self.store, self.metrics = client, route, store, metrics
        self.datastore_id, self.table = datastore_id, table

    def store_instance(self, path: str, size: int, info: InstanceInfo) -> DirectResult:
        sop = info.sop_instance_uid
        if size > MAX_STORE_BYTES:
            return self._fallback(sop, f"{size} bytes: above StoreDICOM's 1 GB a request")
        started = time.monotonic()
        try:
            with open(path, "rb") as body:
                outcome = self.client.store(body, size)
        except DicomWebError as exc:
            return self._fallback(sop, str(exc))
        if sop in outcome.failed:
            reason = outcome.failed[sop]
            status = refusal_status(reason)
            if status is None:
                return self._fallback(sop, f"StoreDICOM Failure Reason 0x{reason:04X}")
            return DirectResult(REFUSED, status, f"StoreDICOM Failure Reason 0x{reason:04X}")
        if sop not in outcome.stored:
            return self._fallback(sop, "StoreDICOM's response does not list the instance")
        latency_ms = (time.monotonic() - started) * 1000
        self.metrics.direct_stored(latency_ms)
        key = self._keep_copy(path, size, info)
        primary = self._primary(info)
        self._record(info, primary, key)
        LOG.info(
            "stored in HealthImaging",
            extra={
                "fields": {
                    "event": "direct-stored",
                    "sopInstanceUID": sop,
                    "primary": primary,
                    "latencyMs": round(latency_ms, 1),
                    "warningReason": outcome.stored[sop].warning_reason,
                }
            },
        )
        return DirectResult(STORED)

    def _fallback(self, sop: str, reason: str) -> DirectResult:
        self.metrics.direct_fallback()
        LOG.warning(
            "StoreDICOM did not store the instance; it takes the batch path",
            extra={"fields": {"event": "direct-fallback", "sopInstanceUID": sop, "reason": reason}},
        )
        return DirectResult(FALLBACK, reason=reason)

    def _keep_copy(self, path: str, size: int, info: InstanceInfo) -> str:
        """The direct/ copy for lookup and redrive; its loss is logged, not the instance's."""
        key = (
            f"{DIRECT_PREFIX}{info.study_instance_uid}/{info.series_instance_uid}/"
            f"{info.sop_instance_uid}.dcm"
        )
        try:
            self.store.put_file(key, path, size)
        except StorageError as exc:
            LOG.error(
                "direct copy not kept",
                extra={
                    "fields": {
                        "event": "direct-copy-failed",
                        "sopInstanceUID": info.sop_instance_uid,
                        "error": str(exc),
                    }
                },
            )
            return ""
        return key

    def _primary(self, info: InstanceInfo) -> bool | None:
        """Whether QIDO-RS finds the instance: it searches primary image sets only ([SEARCH]),
        so a stored instance it does not find went to a non-primary image set (a conflict)."""
        path = f"/studies/{info.study_instance_uid}/series/{info.series_instance_uid}/instances"
        try:
            found = self.client.search(
                path,
                {"SOPInstanceUID": info.sop_instance_uid},
                page_size=1,
                budget=PRIMARY_CHECK_BUDGET,
            )
            return next(iter(found), None) is not None
        except DicomWebError as exc:
            LOG.warning(
                "primary image set not checked",
                extra={"fields": {"sopInstanceUID": info.sop_instance_uid, "error": str(exc)}},
            )
            return None

    def _record(self, info: InstanceInfo, primary: bool | None, key: str) -> None:
        if self.table is None:
            return
        item = direct_item(
            self.datastore_id,
            info.study_instance_uid,
            info.series_instance_uid,
            info.sop_instance_uid,
            primary,
            key,
        )
        try:
            self.table.put(item)
        except Exception as exc:
            LOG.error(
                "direct store not recorded in the job table",
                extra={
                    "fields": {
                        "event": "direct-record-failed",
                        "sopInstanceUID": info.sop_instance_uid,
                        "error": f"{type(exc).__name__}: {exc}",
                    }
                },
            )


def open_direct_store(settings: Settings, store: Store, metrics: Metrics) -> DirectStore | None:
    """The DirectStore the settings ask for (None with DIRECT_STORE=none)."""
    if settings.direct_store == "none":
        return None
    client = open_client(settings, RetryPolicy(budget=settings.direct_store_budget))
    route = DirectRoute(
        settings.direct_store,
        settings.direct_store_calling_ae_titles,
        settings.direct_store_high_priority,
    )
    table = JobTable(settings.job_table) if settings.job_table else None
    return DirectStore(client, route, store, metrics, settings.healthimaging_datastore_id, table)
