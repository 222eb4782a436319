"""Batch manifests: find them in S3 events, read them from S3, check what the workflow relies on.

The full contract is config/batch-manifest.schema.json (the SCP's tests validate what it writes);
functions that run inline in the template carry no files, so they check the fields they use.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_plus

from lambdas.errors import ManifestError
from lambdas.layout import INCOMING_PREFIX

BATCH_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def manifest_errors(manifest: Any) -> list[str]:
    """What is wrong with a manifest for the workflow (empty when nothing is)."""
    if not isinstance(manifest, dict):
        return ["$: expected an object"]
    batch_id, prefix = manifest.get("batchId"), manifest.get("inputPrefix")
    instances = manifest.get("instances")
    if not isinstance(batch_id, str) or not BATCH_ID.fullmatch(batch_id):
        return ["$.batchId: must be 1-64 characters of A-Z a-z 0-9 . _ -"]
    if not isinstance(prefix, str) or not prefix.endswith(f"{INCOMING_PREFIX}{batch_id}/"):
        return [f"$.inputPrefix: must end with {INCOMING_PREFIX}{batch_id}/"]
    if not isinstance(manifest.get("studyInstanceUID"), str):
        return ["$.studyInstanceUID: expected a string"]
    if not isinstance(instances, list) or not instances:
        return ["$.instances: expected a non-empty array"]
    errors = []
    if manifest.get("instanceCount") != len(instances):
        errors.append("$.instanceCount: differs from the number of instances")
    for i, instance in enumerate(instances):
        names = ("key", "sopInstanceUID", "seriesInstanceUID")
        if not isinstance(instance, dict) or not all(
            isinstance(instance.get(n), str) for n in names
        ):
            errors.append(f"$.instances[{i}]: needs the strings {', '.join(names)}")
        elif not instance["key"].startswith(prefix):
            errors.append(f"$.instances[{i}].key: not under inputPrefix")
    return errors


def check_manifest(manifest: Any, where: str) -> dict:
    """Return `manifest` when the workflow can use it, else raise ManifestError."""
    errors = manifest_errors(manifest)
    if errors:
        shown = "; ".join(errors[:5]) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        raise ManifestError(f"batch manifest {where} is invalid: {shown}")
    return manifest


def read_json(s3, bucket: str, key: str) -> Any:
    """Read and parse one JSON object from S3."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ManifestError(f"s3://{bucket}/{key} is not JSON ({exc}); fix its writer") from exc


def read_manifest(s3, bucket: str, key: str) -> dict:
    """Read the manifest at s3://bucket/key and check it."""
    return check_manifest(read_json(s3, bucket, key), f"s3://{bucket}/{key}")


def manifest_locations(message_body: str) -> list[tuple[str, str]]:
    """(bucket, key) of each manifest an SQS message body (an S3 event) announces.

    S3's initial s3:TestEvent and events other than ObjectCreated give nothing.
    """
    try:
        event = json.loads(message_body)
    except ValueError as exc:
        raise ManifestError(
            f"SQS message is not an S3 event ({exc}); check the queue's source"
        ) from exc
    return [
        (r["s3"]["bucket"]["name"], unquote_plus(r["s3"]["object"]["key"]))
        for r in event.get("Records", [])
        if r.get("eventName", "").startswith("ObjectCreated:")
    ]
