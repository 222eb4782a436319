"""Start-up: prepare storage, register metering, then serve in this process or in workers.

Nothing heavy (pynetdicom, boto3) is imported here, so a supervisor of worker processes stays
small: each worker imports and builds its own DICOM server after the fork.
"""

from __future__ import annotations

import logging

from scp import __version__
from scp.cpu_quota import worker_count
from scp.health import open_health
from scp.listener import StartupError, check_tls, listen
from scp.metering import MeteringError, metering_client, product_code, register_usage
from scp.settings import Settings, SettingsError, env_name
from scp.slots import LocalSlots
from scp.storage import StorageError, open_store
from scp.store_check import StoreCheck

LOG = logging.getLogger("scp")


def run(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT, then drain. Returns the process exit code; StartupError (one
    sentence) when the store, a port or the direct-store signing cannot be had."""
    try:
        store = open_store(
            settings.storage,
            endpoint_url=settings.s3_endpoint_url,
            temp_dir=settings.temp_dir,
            port=settings.port,
            multipart_threshold=settings.s3_multipart_threshold,
        )
        store.prepare()
    except StorageError as exc:
        raise StartupError(f"{env_name('storage')}: {exc}") from None
    if settings.healthimaging_datastore_id:  # Query/Retrieve, and StoreDICOM if routed
        from scp.healthimaging.signing import signing_context

        try:
            signing_context(settings)
        except SettingsError as exc:
            raise StartupError(str(exc)) from None
    forwarder = None
    if settings.edge_forward_to:
        from scp.edge.startup import edge_forwarder

        try:
            forwarder = edge_forwarder(settings, store)
        except StorageError as exc:
            raise StartupError(f"EDGE_FORWARD_TO: {exc}") from None
    # Both ports are bound here, before any worker forks: the workers share the DICOM socket,
    # and a port someone else holds stops the start-up with a sentence, not a traceback.
    check_tls(settings)
    listener = listen(settings.bind, settings.port, "port")
    health = open_health(settings)
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
    store_check = StoreCheck()
    if workers == 1:
        from scp.server import serve

        return serve(
            settings,
            store,
            LocalSlots(),
            listener,
            health=health,
            store_check=store_check,
            background=forwarder,
        )
    from scp.workers import supervise

    return supervise(settings, store, workers, listener, health, store_check, forwarder)


def effective_workers(settings: Settings) -> int:
    """WORKERS, or when 0 one per CPU this process may use (cgroup v1/v2 quota, ECS limit)."""
    return settings.workers or worker_count()
