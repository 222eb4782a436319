"""AWS Marketplace RegisterUsage: request shape, refusals, and a task that will not serve."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from scp.metering import MeteringError, register_usage
from tests.support.net import free_port
from tests.support.scp import ScpProcess

CODE = "abcdefghijklmnopqrstuvwxy"


@pytest.fixture
def metering():
    client = boto3.client("meteringmarketplace", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub


def test_register_usage_sends_the_product_code_and_key_version(metering) -> None:
    client, stub = metering
    stub.add_response(
        "register_usage", {"Signature": "sig"}, {"ProductCode": CODE, "PublicKeyVersion": 1}
    )
    register_usage(client, CODE)
    stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("CustomerNotEntitledException", "subscribe in AWS Marketplace"),
        ("PlatformNotSupportedException", "unset MARKETPLACE_PRODUCT_CODE"),
        ("InvalidProductCodeException", "not this product's code"),
        ("AccessDeniedException", "aws-marketplace:RegisterUsage"),
    ],
)
def test_refusals_say_what_to_do(metering, code: str, says: str) -> None:
    client, stub = metering
    stub.add_client_error("register_usage", service_error_code=code)
    with pytest.raises(MeteringError, match=says):
        register_usage(client, CODE)


def test_the_scp_does_not_serve_when_registration_fails(tmp_path) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}"
    scp = ScpProcess(
        log_dir=tmp_path,
        storage=str(tmp_path / "store"),
        marketplace_product_code=CODE,
        env={"AWS_ENDPOINT_URL_MARKETPLACE_METERING": unreachable, "AWS_MAX_ATTEMPTS": "1"},
    )
    with pytest.raises(RuntimeError, match="exited with 1"):
        scp.start()
    scp.kill()
    (line,) = [x for x in scp.log_lines() if x.get("event") == "metering-failed"]
    assert "unreachable" in line["error"]
