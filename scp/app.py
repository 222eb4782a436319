"""Start-up: prepare storage, register metering, then serve in this process or in workers.

Nothing heavy (pynetdicom, boto3) is imported here, so a supervisor of worker processes stays
small: each worker imports and builds its own DICOM server after the fork.
"""

from __future__ import annotations

import logging

from scp import __version__
from scp.cpu_quota import worker_count
from scp.metering import MeteringError, metering_client, product_code, register_usage
from scp.settings import Settings
from scp.slots import LocalSlots
from scp.storage import StorageError, open_store

LOG = logging.getLogger("scp")


def run(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT, then drain. Returns the process exit code."""
    store = open_store(
        settings.storage,
        endpoint_url=settings.s3_endpoint_url,
        temp_dir=settings.temp_dir,
        port=settings.port,
        multipart_threshold=settings.s3_multipart_threshold,
    )
    try:
        store.prepare()
    except StorageError as exc:
        LOG.error("storage unusable", extra={"fields": {"error": str(exc)}})
        return 1
    forwarder = None
    if settings.edge_forward_to:
        from scp.edge.startup import edge_forwarder

        try:
            forwarder = edge_forwarder(settings, store)
        except StorageError as exc:
            LOG.error("edge mode unusable", extra={"fields": {"error": str(exc)}})
            return 1
    if code := product_code(settings.marketplace_product_code):
        try:
            register_usage(metering_client(), code)
        except MeteringError as exc:
            LOG.error(
                "not starting", extra={"fields": {"event": "metering-failed", "error": str(exc)}}
            )
            return 1
    workers = effective_workers(settings)
    LOG.info(
        "SCP starting",
        extra={
            "fields": {
                "event": "started",
                "version": __version__,
                "storage": str(store),
                "workers": workers,
                "settings": settings.describe(),
            }
        },
    )
    if workers == 1:
        from scp.server import serve

        return serve(settings, store, LocalSlots(), with_health=True, background=forwarder)
    from scp.workers import supervise

    return supervise(settings, store, workers, background=forwarder)


def effective_workers(settings: Settings) -> int:
    """WORKERS, or when 0 one per CPU this process may use (cgroup v1/v2 quota, ECS limit)."""
    return settings.workers or worker_count()
