"""Our SCP as a real process (`python -m scp`), and the figures the suite reports.

`make reliability` sets RELIABILITY_FULL=1 for the full sizes (10,000 malformed inputs);
`make test` runs the same tests on samples small enough for a couple of minutes in all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.runner import tree_rss
from tests.support.aws import FAKE_AWS_ENV
from tests.support.net import free_port

REPO = Path(__file__).resolve().parents[2]
FULL = os.environ.get("RELIABILITY_FULL") == "1"
FIGURES: list[str] = []


def report(line: str) -> None:
    """Record a figure for the 'reliability figures' section at the end of the run."""
    FIGURES.append(line)


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("reliability figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


class ScpProcess:
    """`python -m scp` on a fixed loopback port, restartable on the same port and storage."""

    def __init__(self, storage: str, log: Path, *flags: str) -> None:
        self.storage = storage
        self.log = log
        self.flags = list(flags)
        self.port = free_port()
        self.health_port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> ScpProcess:
        command = [sys.executable, "-m", "scp", "--bind", "127.0.0.1", "--port", str(self.port),
                   "--ae-title", "STORESCP", "--storage", self.storage,
                   "--health-port", str(self.health_port), *self.flags]  # fmt: skip
        env = {**os.environ, **FAKE_AWS_ENV, "PYTHONPATH": str(REPO)}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"scp exited with {self.process.returncode}: {self.tail()}")
            try:
                url = f"http://127.0.0.1:{self.health_port}/health"
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"scp not healthy after {timeout}s: {self.tail()}")

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def rss(self) -> int:
        """Resident bytes of the SCP and all its worker processes."""
        return tree_rss(psutil.Process(self.process.pid))

    def kill(self) -> None:
        """SIGKILL the SCP and every worker it started, as a crashed host would."""
        root = psutil.Process(self.process.pid)
        children = root.children(recursive=True)
        for process in [root, *children]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        self.process.wait()
        psutil.wait_procs(children, timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_scp(tmp_path: Path) -> Iterator:
    """Factory: start_scp(storage, *flags) -> a healthy ScpProcess; all stopped at teardown."""
    started: list[ScpProcess] = []

    def start(storage: str, *flags: str) -> ScpProcess:
        scp = ScpProcess(storage, tmp_path / f"scp-{len(started)}.log", *flags)
        started.append(scp)
        return scp.start()

    yield start
    for scp in started:
        scp.stop()
