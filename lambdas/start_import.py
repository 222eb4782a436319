"""Lambda handler (state StartImport): start the HealthImaging import job for a batch."""

from __future__ import annotations

from lambdas.clients import client
from lambdas.environment import env
from lambdas.imports import start_import


def handler(event: dict, context: object = None) -> dict:
    """Event: the execution input. Returns the job (jobId, datastoreId, jobStatus, submittedAt)."""
    return start_import(
        event,
        client("medical-imaging"),
        env("DATASTORE_ID"),
        env("DATA_ACCESS_ROLE_ARN"),
        env("OUTPUT_S3_URI"),
    )
