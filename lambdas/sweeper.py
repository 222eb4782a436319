"""Lambda handler (scheduled): close batches whose SCP died before writing their manifest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lambdas.clients import client
from lambdas.environment import env, env_int
from lambdas.sweep import sweep


def handler(event: dict, context: object = None) -> dict:
    """Event: the schedule's (ignored). Returns the ids of the batches it closed."""
    older_than = timedelta(seconds=env_int("SWEEP_AFTER_SECONDS", 900))
    bucket, prefix = env("DICOM_BUCKET"), env("STORE_PREFIX", "")
    closed = sweep(client("s3"), bucket, prefix, older_than, datetime.now(UTC))
    return {"closedBatchIds": closed}
