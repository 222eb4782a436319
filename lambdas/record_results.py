"""Lambda handler (state RecordResults): write the import job's per-instance results to DynamoDB."""

from __future__ import annotations

from lambdas.clients import client, table
from lambdas.environment import env
from lambdas.results import record_results


def handler(event: dict, context: object = None) -> dict:
    """Event: the execution state with $.job. Returns the job id, status and counts."""
    return record_results(event, client("s3"), table(env("JOB_TABLE_NAME")))
