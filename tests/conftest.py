"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.aws import FAKE_AWS_ENV, MotoServer, moto_server
from tests.support.dicomweb import orthanc_server, proxy, running_proxy  # noqa: F401 (fixtures)

os.environ.update(FAKE_AWS_ENV)
# The host must not choose what is tested: an SCP a test starts without `workers` runs two worker
# processes (SharedSlots, the supervisor) on any machine, rather than one per CPU of whatever runs
# the suite. Tests of the single-process path (LocalSlots) pass workers=1.
os.environ["WORKERS"] = "2"


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """One moto server for the session. Tests use their own bucket/table names to stay apart."""
    with moto_server() as server:
        yield server
