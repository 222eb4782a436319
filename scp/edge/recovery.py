"""Start-up of an edge SCP: close the batches its previous run left open (the host died or the
SCP was killed mid-association), from the instances stored under them, as the stack's sweeper
does for the cloud SCP. Their instances were fsynced before they were acknowledged, so every
acknowledged instance reaches a manifest and S3."""

from __future__ import annotations

import json
import logging
import os
import shutil

from scp.batches import Batch, StoredInstance
from scp.contracts import BATCHES_PREFIX, INCOMING_PREFIX, OPEN_PREFIX
from scp.dataset_scan import DatasetError, scan_part10
from scp.edge import FORWARDED_PREFIX, UNFORWARDABLE_PREFIX, names_in
from scp.storage.local import LocalStore

LOG = logging.getLogger("scp.edge")
SWEPT = "swept"  # the manifest schema's closeReason for a batch closed after its SCP died


def close_left_open(store: LocalStore) -> list[str]:
    """Write the manifest of every batch with an open marker (none is live: this runs before
    the SCP listens, and the forwarder's lock keeps one edge SCP per folder); returns their
    ids. A batch with no instance loses its marker and folder only."""
    closed = []
    for name in sorted(names_in(os.path.join(store.root, OPEN_PREFIX))):
        marker_key = OPEN_PREFIX + name
        if _manifest_written(store.root, name):  # died between the manifest and the marker
            store.delete(marker_key)
            continue
        try:
            with open(os.path.join(store.root, OPEN_PREFIX, name), "rb") as fp:
                marker = json.load(fp)
            batch = _batch(store, marker)
        except (OSError, ValueError, KeyError) as exc:
            LOG.error(
                "open batch marker unreadable; left in place",
                extra={
                    "fields": {"event": "edge-marker-unreadable", "marker": name, "error": str(exc)}
                },
            )
            continue
        if batch.instances:
            store.put_json(f"{BATCHES_PREFIX}{batch.batch_id}.json", batch.manifest(SWEPT))
            closed.append(batch.batch_id)
        else:
            shutil.rmtree(os.path.join(store.root, INCOMING_PREFIX, batch.batch_id), True)
        store.delete(marker_key)
        LOG.info(
            "batch left open by a previous run closed",
            extra={
                "fields": {
                    "event": "edge-batch-recovered",
                    "batchId": batch.batch_id,
                    "instances": len(batch.instances),
                    "bytes": batch.total_bytes,
                }
            },
        )
    return closed


def _batch(store: LocalStore, marker: dict) -> Batch:
    """The batch a marker opened, holding every complete instance stored under it."""
    batch = Batch(
        marker["batchId"],
        marker["studyInstanceUID"],
        marker.get("studyDate", ""),
        marker["callingAETitle"],
        marker["calledAETitle"],
        "",
        opened_at=marker["openedAt"],
    )
    folder = os.path.join(store.root, INCOMING_PREFIX, batch.batch_id)
    for path in sorted(_files(folder), key=os.path.getmtime):
        try:
            info = scan_part10(path)
        except DatasetError as exc:  # cannot happen to a renamed-into-place instance
            LOG.error(
                "stored file does not parse; not forwarded",
                extra={
                    "fields": {"event": "edge-file-unreadable", "path": path, "error": str(exc)}
                },
            )
            continue
        key = batch.key_for(info.series_instance_uid, info.sop_instance_uid)
        if os.path.join(store.root, *key.split("/")) != path:
            continue  # not where the SCP would have stored it: not ours
        batch.add(
            StoredInstance(
                key,
                info.sop_instance_uid,
                info.series_instance_uid,
                info.sop_class_uid,
                info.transfer_syntax_uid,
                os.path.getsize(path),
            )
        )
    return batch


def _manifest_written(root: str, name: str) -> bool:
    """True when batch `name` ({batchId}.json) was closed already (forwarded or not)."""
    return any(
        os.path.exists(os.path.join(root, folder, name))
        for folder in (BATCHES_PREFIX, FORWARDED_PREFIX, UNFORWARDABLE_PREFIX)
    )


def _files(folder: str) -> list[str]:
    return [os.path.join(top, name) for top, _, names in os.walk(folder) for name in names]
