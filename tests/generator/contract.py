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
