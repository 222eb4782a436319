"""Batch manifests: find them in S3 events, read them from S3, validate them against the schema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from lambdas.errors import ManifestError
from lambdas.schema import schema_errors

SCHEMA_NAME = "batch-manifest.schema.json"
# In the repository and in a Lambda zip the schema sits at config/ beside the lambdas package;
# a package built without config/ may carry it inside the package instead.
PACKAGE_DIR = Path(__file__).resolve().parent
SCHEMA_PATHS = (PACKAGE_DIR.parent / "config" / SCHEMA_NAME, PACKAGE_DIR / SCHEMA_NAME)


@cache
def manifest_schema() -> dict:
    """The batch-manifest JSON Schema, read once."""
    for path in SCHEMA_PATHS:
        if path.is_file():
            return json.loads(path.read_text())
    raise ManifestError(
        f"{SCHEMA_NAME} not found at {' or '.join(map(str, SCHEMA_PATHS))}; "
        "package config/batch-manifest.schema.json at the root of the Lambda zip"
    )


def validate_manifest(manifest: Any, where: str) -> dict:
    """Return `manifest` when it follows the schema (and its own invariants), else raise."""
    errors = schema_errors(manifest, manifest_schema())
    if not errors:
        errors = _consistency_errors(manifest)
    if errors:
        shown = "; ".join(errors[:5]) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
        raise ManifestError(f"batch manifest {where} is invalid: {shown}")
    return manifest


def open_marker_errors(marker: Any) -> list[str]:
    """How an open marker (open/{batchId}.json) breaks its schema definition."""
    schema = manifest_schema()
    return schema_errors(marker, schema["$defs"]["openMarker"], schema)


def _consistency_errors(manifest: dict) -> list[str]:
    prefix, batch_id = manifest["inputPrefix"], manifest["batchId"]
    errors = []
    if not prefix.endswith(f"incoming/{batch_id}/"):
        errors.append(f"$.inputPrefix: must end with incoming/{batch_id}/")
    if manifest["instanceCount"] != len(manifest["instances"]):
        errors.append("$.instanceCount: differs from the number of instances")
    errors += [
        f"$.instances[{i}].key: not under inputPrefix"
        for i, instance in enumerate(manifest["instances"])
        if not instance["key"].startswith(prefix)
    ]
    return errors


def read_json(s3, bucket: str, key: str) -> Any:
    """Read and parse one JSON object from S3."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ManifestError(f"s3://{bucket}/{key} is not JSON ({exc}); fix its writer") from exc


def read_manifest(s3, bucket: str, key: str) -> dict:
    """Read the manifest at s3://bucket/key and validate it."""
    return validate_manifest(read_json(s3, bucket, key), f"s3://{bucket}/{key}")


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
    locations = []
    for record in event.get("Records", []):
        if not record.get("eventName", "").startswith("ObjectCreated:"):
            continue
        s3 = record["s3"]
        locations.append((s3["bucket"]["name"], unquote_plus(s3["object"]["key"])))
    return locations
