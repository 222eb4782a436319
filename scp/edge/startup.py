"""Edge mode's start-up: the forwarder over the folder store, after the previous run's open
batches are closed."""

from __future__ import annotations

import logging

from scp.edge.forwarder import Forwarder
from scp.edge.recovery import close_left_open
from scp.settings import Settings
from scp.storage import StorageError, Store, open_store
from scp.storage.local import LocalStore

LOG = logging.getLogger("scp.edge")


def edge_forwarder(settings: Settings, store: Store) -> Forwarder:
    """The forwarder of EDGE_FORWARD_TO, its lock taken and left-open batches closed; raises
    StorageError when the folder cannot be used."""
    if not isinstance(store, LocalStore):
        raise StorageError("edge mode needs STORAGE to be a folder")
    target = open_store(
        settings.edge_forward_to,
        endpoint_url=settings.s3_endpoint_url,
        multipart_threshold=settings.s3_multipart_threshold,
    )
    forwarder = Forwarder(
        store.root,
        target,
        uploads=settings.edge_uploads,
        keep_days=settings.edge_keep_days,
        max_age=settings.edge_backlog_max_age,
        min_free=settings.min_free_disk,
        namespace=settings.metrics_namespace,
    )
    try:
        forwarder.claim()
        recovered = close_left_open(store)
    except OSError as exc:
        raise StorageError(f"cannot use {store.root!r} in edge mode: {exc.strerror}") from None
    forwarder.rescan()
    LOG.info(
        "edge mode: forwarding closed batches",
        extra={
            "fields": {
                "event": "edge-started",
                "target": str(target),
                "batchesRecovered": len(recovered),
                "backlogFiles": forwarder.backlog.files,
                "backlogBytes": forwarder.backlog.bytes,
            }
        },
    )
    return forwarder
