"""boto3 clients, created once per Lambda container on first use, passed to the core functions."""

from __future__ import annotations

from functools import cache

import boto3
from botocore.config import Config

# The state machine retries HealthImaging throttling with its own backoff (and the Lambda is not
# billed while it waits), so the client itself does not retry.
IMAGING_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1})


@cache
def client(service: str):
    """The shared client for `service` (endpoints come from the usual AWS_* environment)."""
    return boto3.client(service, config=IMAGING_CONFIG if service == "medical-imaging" else None)


@cache
def table(name: str):
    """The shared DynamoDB Table resource for `name`."""
    return boto3.resource("dynamodb").Table(name)
