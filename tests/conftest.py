"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.aws import FAKE_AWS_ENV, MotoServer, moto_server
from tests.support.dicomweb import orthanc_server, proxy, running_proxy  # noqa: F401 (fixtures)
from tests.support.figures import FIGURES
from tests.support.scheduling import ModuleScheduling

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


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Under `-n`, tests/support/scheduling.py shares the tests between the workers."""
    return ModuleScheduling(config, log)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its figures to the controller."""
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:
        worker_output["figures"] = FIGURES


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """The controller gathers a finished worker's figures (an xdist hook)."""
    FIGURES.extend(getattr(node, "workeroutput", {}).get("figures", []))


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
