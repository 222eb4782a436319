"""Lambda handler (state CheckStatus): read the import job's status."""

from __future__ import annotations

from lambdas.clients import client
from lambdas.imports import import_status


def handler(event: dict, context: object = None) -> dict:
    """Event: {"jobId", "datastoreId"}. Returns the job properties."""
    return import_status(event, client("medical-imaging"))
