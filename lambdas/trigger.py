"""Lambda handler: SQS batch of S3 events for batch manifests -> Step Functions executions."""

from __future__ import annotations

from lambdas.clients import client
from lambdas.environment import env, env_int
from lambdas.executions import DEFAULT_POLL_SECONDS, start_executions


def handler(event: dict, context: object = None) -> dict:
    """Start one execution per announced batch; returns SQS partial batch failures."""
    return start_executions(
        event,
        client("s3"),
        client("stepfunctions"),
        env("STATE_MACHINE_ARN"),
        # At least 1: the status checks' interval doubles from it (the state machine's BackOff).
        env_int("STATUS_POLL_SECONDS", DEFAULT_POLL_SECONDS, minimum=1),
    )
