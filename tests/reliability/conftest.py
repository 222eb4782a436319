"""Our SCP as a real process (tests/support/scp.py), and the sizes the tests run at.

`make reliability` sets RELIABILITY_FULL=1 for the full sizes (10,000 malformed inputs);
`make test` runs the same tests on samples small enough for a couple of minutes in all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.scp import ScpProcess

REPO = Path(__file__).resolve().parents[2]
FULL = os.environ.get("RELIABILITY_FULL") == "1"


@pytest.fixture
def start_scp(tmp_path: Path) -> Iterator:
    """Factory: start_scp(storage, *flags) -> a healthy ScpProcess; all stopped at teardown."""
    started: list[ScpProcess] = []

    def start(storage: str, *flags: str) -> ScpProcess:
        log = tmp_path / f"scp-{len(started)}.log"
        scp = ScpProcess(log_path=log, flags=flags, storage=storage)
        started.append(scp)
        return scp.start()

    yield start
    for scp in started:
        scp.stop()
