"""Every status the SCP's code returns is in STORE_STATUSES, and the README lists them all."""

from __future__ import annotations

import ast
from pathlib import Path

from scp import statuses
from scp.statuses import STORE_STATUSES, statuses_table
from tests.support.scp import REPO


def test_codes_are_unique_and_the_readme_table_is_current() -> None:
    codes = [s.code for s in STORE_STATUSES]
    assert len(codes) == len(set(codes))
    assert statuses_table() in (REPO / "README.md").read_text(), (
        "README status table is stale: run `python -m scp.settings`"
    )


def test_every_status_the_code_names_is_listed() -> None:
    """A status used in scp/ (statuses.NAME) but missing from STORE_STATUSES fails here."""
    used = set()
    for path in Path(REPO / "scp").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "statuses"
            ):
                used.add(node.attr)
    assert used, "no handler uses scp.statuses"
    assert {getattr(statuses, name) for name in used} <= set(STORE_STATUSES)
