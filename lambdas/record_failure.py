"""Lambda handler (state RecordFailure): record an error the state machine caught."""

from __future__ import annotations

import os

from lambdas.clients import client, table
from lambdas.failures import record_failure


def handler(event: dict, context: object = None) -> dict:
    """Event: the execution state with $.error ({"Error", "Cause"}). Returns the recorded status."""
    return record_failure(event, client("s3"), table(os.environ["JOB_TABLE_NAME"]))
