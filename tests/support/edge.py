"""An edge SCP (folder store forwarding to moto's S3, through a relay that can refuse) and what
the bucket holds, for the edge tests, the reliability faults and the WAN benchmark."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.wire import EXPLICIT_LE, RawAssociation


def edge_settings(storage: Path, endpoint: str, bucket: str, prefix: str) -> dict[str, Any]:
    """ScpProcess settings of an edge SCP storing in `storage`, forwarding to s3://bucket/prefix."""
    return {
        "storage": str(storage),
        "edge_forward_to": f"s3://{bucket}/{prefix}",
        "s3_endpoint_url": endpoint,
    }


def forwarding(scp) -> dict[str, Any]:
    """The 'forwarding' section of an edge SCP's /health ({} while it does not answer)."""
    return scp.health(timeout=10)[1].get("forwarding", {})


def bucket_objects(s3, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every object under prefix: key -> body."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def manifests_in(objects: dict[str, bytes]) -> list[dict[str, Any]]:
    return [json.loads(body) for key, body in sorted(objects.items()) if "/batches/" in f"/{key}"]


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll until condition() is truthy; return it, or raise AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def store_all(port: int, instances: list) -> list[int]:
    """C-STORE each instance on one association (raw DIMSE); their statuses."""
    contexts = [(1, instances[0].sop_class, [EXPLICIT_LE])]
    assoc = RawAssociation(port, contexts)
    statuses = [assoc.store(1, i.sop_class, i.sop_uid, i.dataset) for i in instances]
    assoc.release()
    return statuses
