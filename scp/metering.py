"""AWS Marketplace hourly metering: RegisterUsage once at start-up.

A paid container product must register each task with AWS Marketplace when it starts, and must
not serve when the customer is not entitled. The SCP therefore refuses to start when
MARKETPLACE_PRODUCT_CODE is set and RegisterUsage fails.
"""

from __future__ import annotations

import logging
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from scp import ScpError

LOG = logging.getLogger("scp")
PUBLIC_KEY_VERSION = 1


class MeteringError(ScpError):
    """RegisterUsage failed: the task must not serve."""


def metering_client() -> Any:
    return boto3.client(
        "meteringmarketplace", config=Config(retries={"mode": "standard", "max_attempts": 5})
    )


def register_usage(client: Any, product_code: str) -> None:
    """Register this task for hourly metering; raise MeteringError saying what to do if not."""
    try:
        client.register_usage(ProductCode=product_code, PublicKeyVersion=PUBLIC_KEY_VERSION)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        hint = {
            "CustomerNotEntitledException": "this AWS account has no active subscription to "
            "the product; subscribe in AWS Marketplace",
            "PlatformNotSupportedException": "RegisterUsage works only on Amazon ECS, EKS or "
            "Fargate; unset MARKETPLACE_PRODUCT_CODE to run elsewhere",
            "InvalidProductCodeException": "MARKETPLACE_PRODUCT_CODE is not this product's code",
        }.get(code, "check the task role allows aws-marketplace:RegisterUsage")
        raise MeteringError(f"RegisterUsage failed ({code or exc}): {hint}") from None
    except BotoCoreError as exc:
        raise MeteringError(
            f"RegisterUsage failed ({exc}): AWS Marketplace metering is "
            "unreachable; check the task's route to the internet"
        ) from None
    LOG.info(
        "registered with AWS Marketplace metering",
        extra={"fields": {"event": "metering-registered", "productCode": product_code}},
    )
