"""What leaves the hospital's AWS account, for the security pages: nothing to the seller; AWS
services only; and, when the release meters, the exact RegisterUsage request, obtained by
running the SCP's own call (scp.metering.register_usage) against a recorder."""

from __future__ import annotations

from typing import Any

from generator.documents.template_facts import TemplateFacts
from generator.spec import Spec
from scp import metering

# AWS Marketplace Metering Service API reference, "RegisterUsage": paid container products call
# it at start-up for entitlement and hourly metering; AWS Marketplace reports the usage to the
# seller in its seller reports.
REGISTER_USAGE_PAGE = (
    "https://docs.aws.amazon.com/marketplacemetering/latest/APIReference/API_RegisterUsage.html"
)
# Amazon VPC user guide, "Logging IP traffic using VPC Flow Logs".
FLOW_LOGS_PAGE = "https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs.html"


class _Recorder:
    """Stands in for the metering client: keeps the arguments of the call the SCP makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def register_usage(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("RegisterUsage", kwargs))
        return {}


def register_usage_request(product_code: str) -> dict[str, Any]:
    """The request the SCP sends to AWS Marketplace at start-up, exactly as scp/metering.py
    builds it."""
    recorder = _Recorder()
    metering.register_usage(recorder, product_code)
    ((_, request),) = recorder.calls
    return request


def leaving_the_account(spec: Spec, template: TemplateFacts) -> list[str]:
    """Markdown lines: every way data leaves the account, and what it is."""
    code = spec.marketplace.metering_code
    request = register_usage_request(code or "<product code>")
    payload = ", ".join(f"`{k}={v}`" for k, v in request.items())
    metered = (
        f"This release meters: each SCP task calls AWS Marketplace Metering `RegisterUsage` "
        f"once at start-up with exactly {payload} (scp/metering.py), signed with the task "
        "role. AWS Marketplace learns from it that a task of your subscription runs, bills "
        "you hourly and reports usage to the seller ([RegisterUsage]"
        f"({REGISTER_USAGE_PAGE})). Nothing else is in the request."
        if code
        else "This release does not meter: the image carries no product code and the SCP "
        "makes no AWS Marketplace call. A release that meters calls `RegisterUsage` once per "
        f"task at start-up with exactly {payload} (scp/metering.py) and nothing else "
        f"([RegisterUsage]({REGISTER_USAGE_PAGE}))."
    )
    container = template.container()
    return [
        "## What leaves your account",
        "",
        "- **Nothing goes to the seller**: no image, no DICOM attribute, no log line, no "
        "metric, no telemetry. The stack calls no endpoint of the seller: every call it "
        "makes goes to an AWS service endpoint ([network-flows.md](network-flows.md) lists "
        "each), and the template names no other host.",
        f"- Each task pulls the SCP image `{template.describe(container['Image'])}` from the "
        "AWS Marketplace registry (a download; AWS runs the registry).",
        f"- {metered}",
        "- Alarm notifications (alarm name, state, metric values; no PHI) go to the addresses "
        "you subscribe to the alarm topic.",
        "- DICOM leaves only to where you send it: the stack has no outgoing DICOM.",
        "",
    ]


def flow_logs() -> str:
    """The shared-responsibility line about VPC Flow Logs: the hospital's choice."""
    return (
        "Decide whether to record network traffic with VPC Flow Logs: the VPC is yours, so "
        "the stack does not turn them on. They record each connection's addresses, ports "
        "and bytes (not its content) for the load balancer's and the tasks' network "
        f"interfaces ([VPC Flow Logs]({FLOW_LOGS_PAGE})), and with a TCP listener they are "
        "the only record of who connected."
    )
