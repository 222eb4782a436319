"""What docs/CONTRACTS.md says, read from the document itself (the tests' source of truth)."""

from __future__ import annotations

import re

from generator.spec import ROOT

CONTRACTS = (ROOT / "docs" / "CONTRACTS.md").read_text()

# Lambda functions, from the handler names `lambdas.{name}.handler`.
FUNCTIONS = tuple(dict.fromkeys(re.findall(r"`lambdas\.(\w+)\.handler`", CONTRACTS)))


def scp_environment() -> dict[str, str]:
    """Environment variable -> template parameter, from the SCP settings table."""
    rows = re.findall(r"^\| `([A-Z_]+)` \|[^|]*\|[^|]*\| ([A-Za-z]+) \|$", CONTRACTS, re.M)
    return dict(rows)


def scp_metrics() -> dict[str, str]:
    """Metric name -> unit, from the "Metrics (CloudWatch embedded metric format" paragraph."""
    paragraph = CONTRACTS.split("Metrics (CloudWatch embedded metric format", 1)[1].split("\n\n")[0]
    return dict(re.findall(r"`(\w+)`\s+\((\w+)", paragraph))
