"""AWS Marketplace hourly metering: RegisterUsage once at start-up.

A paid container product must register each task with AWS Marketplace when it starts, and must
not serve when the customer is not entitled. The release builds the product code into the image
(scp/marketplace.json, from the spec), so the SCP registers whatever its settings say and a buyer
cannot switch metering off by editing the task definition; MARKETPLACE_PRODUCT_CODE serves images
built without one (development). The SCP refuses to start when RegisterUsage fails.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from scp import ScpError

LOG = logging.getLogger("scp")
PUBLIC_KEY_VERSION = 1
BUILT_IN = Path(__file__).with_name("marketplace.json")


class MeteringError(ScpError):
    """RegisterUsage failed: the task must not serve."""


def product_code(setting: str, built_in: Path = BUILT_IN) -> str:
    """The product code to register: the one built into the image, else the setting's."""
    try:
        return str(json.loads(built_in.read_text())["productCode"]) or setting
    except FileNotFoundError:
        return setting


def metering_client() -> Any:
    import boto3  # here, so that start-up reads product_code without loading boto3
    from botocore.config import Config

    return boto3.client(
        "meteringmarketplace", config=Config(retries={"mode": "standard", "max_attempts": 5})
    )


def register_usage(client: Any, product_code: str) -> None:
    """Register this task for hourly metering; raise MeteringError saying what to do if not."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.register_usage(ProductCode=product_code, PublicKeyVersion=PUBLIC_KEY_VERSION)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        hint = {
            "CustomerNotEntitledException": "this AWS account has no active subscription to "
            "the product; subscribe in AWS Marketplace",
            "PlatformNotSupportedException": "RegisterUsage works only on Amazon ECS, EKS or "
            "Fargate; elsewhere run an image built without a product code and unset "
            "MARKETPLACE_PRODUCT_CODE",
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
