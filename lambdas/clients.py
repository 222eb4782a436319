"""boto3 clients, created once per Lambda container on first use, passed to the core functions."""

from __future__ import annotations

from functools import cache

import boto3


@cache
def client(service: str):
    """The shared client for `service` (endpoints come from the usual AWS_* environment)."""
    return boto3.client(service)


@cache
def table(name: str):
    """The shared DynamoDB Table resource for `name`."""
    return boto3.resource("dynamodb").Table(name)
