"""Sweeper core: close batches left open by an SCP that died, from what it stored in S3.

A batch is swept when its open marker and its newest instance are both older than the threshold:
a live association writes far more often (DIMSE and network timeouts are minutes at most), so a
batch still being received is never closed under its SCP.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

from lambdas.errors import WorkflowError
from lambdas.job_table import now_iso
from lambdas.layout import BATCHES_PREFIX, INCOMING_PREFIX, OPEN_PREFIX
from lambdas.log import log

UID = r"[0-9]+(?:\.[0-9]+)*"
INSTANCE_KEY = re.compile(rf"(?P<study>{UID})/(?P<series>{UID})/(?P<sop>{UID})\.dcm")


def sweep(s3, bucket: str, store_prefix: str, older_than: timedelta, now: datetime) -> list[str]:
    """Close every stale open batch (write its manifest, delete its marker); return their ids.

    A batch that cannot be closed does not stop the others; the sweep then raises at the end.
    """
    closed, failed = [], []
    for marker in _objects(s3, bucket, f"{store_prefix}{OPEN_PREFIX}"):
        batch_id = marker["Key"].rsplit("/", 1)[-1].removesuffix(".json")
        try:
            if _close(s3, bucket, store_prefix, marker, batch_id, now - older_than):
                closed.append(batch_id)
        except Exception as exc:  # one bad batch must not keep the others open
            log("sweep-failed", "ERROR", batchId=batch_id, error=str(exc))
            failed.append(batch_id)
    if failed:
        raise WorkflowError(f"could not sweep {failed}; see the log lines sweep-failed")
    return closed


def _close(
    s3, bucket: str, store_prefix: str, marker: dict, batch_id: str, cutoff: datetime
) -> bool:
    """Close one batch if it is stale; True when a manifest was written."""
    manifest_key = f"{store_prefix}{BATCHES_PREFIX}{batch_id}.json"
    if _objects(s3, bucket, manifest_key):
        s3.delete_object(Bucket=bucket, Key=marker["Key"])
        return False
    input_prefix = f"{store_prefix}{INCOMING_PREFIX}{batch_id}/"
    stored = _objects(s3, bucket, input_prefix)
    if max(item["LastModified"] for item in [marker, *stored]) > cutoff:
        return False
    instances = [i for i in (_instance(item, input_prefix) for item in stored) if i]
    if instances:
        manifest = swept_manifest(batch_id, input_prefix, _marker(s3, bucket, marker), instances)
        body = json.dumps(manifest).encode()
        s3.put_object(Bucket=bucket, Key=manifest_key, Body=body, ContentType="application/json")
    s3.delete_object(Bucket=bucket, Key=marker["Key"])
    log("batch-swept", batchId=batch_id, instanceCount=len(instances))
    return bool(instances)


def swept_manifest(batch_id: str, input_prefix: str, opened: dict, instances: list[dict]) -> dict:
    """A manifest for a batch closed by the sweeper; AE titles and times come from its marker."""
    study = opened.get("studyInstanceUID") or instances[0]["study"]
    instances = [{k: v for k, v in instance.items() if k != "study"} for instance in instances]
    series: list[str] = []
    for instance in instances:
        if instance["seriesInstanceUID"] not in series:
            series.append(instance["seriesInstanceUID"])
    manifest = {
        "schemaVersion": 1,
        "batchId": batch_id,
        "inputPrefix": input_prefix,
        "instanceCount": len(instances),
        "totalBytes": sum(instance["bytes"] for instance in instances),
        "callingAETitle": opened.get("callingAETitle", ""),
        "calledAETitle": opened.get("calledAETitle", ""),
        "studyInstanceUID": study,
        "seriesInstanceUIDs": series,
        "instances": instances,
        "openedAt": opened["openedAt"],
        "closedAt": now_iso(),
        "closeReason": "swept",
        "producer": "lambdas/sweeper",
    }
    if re.fullmatch(r"[0-9]{8}", opened.get("studyDate", "")):
        manifest["studyDate"] = opened["studyDate"]
    return manifest


def _instance(item: dict, input_prefix: str) -> dict | None:
    match = INSTANCE_KEY.fullmatch(item["Key"].removeprefix(input_prefix))
    if not match or item["Size"] < 1:
        return None
    return {
        "key": item["Key"],
        "sopInstanceUID": match["sop"],
        "seriesInstanceUID": match["series"],
        "bytes": item["Size"],
        "study": match["study"],
    }


def _marker(s3, bucket: str, marker: dict) -> dict:
    """The open marker's content, or just its time when it cannot be trusted."""
    fallback = {"openedAt": marker["LastModified"].strftime("%Y-%m-%dT%H:%M:%SZ")}
    try:
        content = json.loads(s3.get_object(Bucket=bucket, Key=marker["Key"])["Body"].read())
    except ValueError:
        content = None
    if not isinstance(content, dict) or not isinstance(content.get("openedAt"), str):
        log("marker-invalid", "WARNING", key=marker["Key"])
        return fallback
    return content


def _objects(s3, bucket: str, prefix: str) -> list[dict]:
    """Every object under `prefix` (Key, Size, LastModified), oldest first."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    items = [item for page in pages for item in page.get("Contents", [])]
    return sorted(items, key=lambda item: (item["LastModified"], item["Key"]))
