"""Several worker processes on one port: one association limit, one health endpoint, one drain."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psutil

from tests.scp.conftest import manifests, stored_files
from tests.scp.test_policy import associate, rejection
from tests.scp.test_transfer import storescu
from tests.support.net import free_port
from tests.support.scp import REPO
from tests.support.waiting import wait_until


def test_workers_share_the_port_the_limit_and_the_drain(start_scp, instances, tmp_path):
    scp = start_scp(workers=2, maximum_associations=3)
    held = [associate(scp.port, calling=f"MOD{i}") for i in range(3)]
    assert all(a.is_established for a in held)
    assert scp.health()[1]["activeAssociations"] == 3
    # The fourth is refused whichever worker the kernel hands it to.
    for _ in range(4):
        assert rejection(associate(scp.port)) == (0x02, 0x03, 0x02)
    for a in held:
        a.release()
    assert wait_until(lambda: scp.health()[1]["activeAssociations"] == 0)
    for name in ("explicit", "mr", "sc"):
        assert storescu(scp.port, str(instances[name])).returncode == 0
    assert scp.terminate(timeout=60) == 0
    assert len(stored_files(tmp_path / "store")) == 3
    assert len(manifests(tmp_path / "store")) == 3


def test_a_worker_that_dies_stops_the_task(start_scp):
    scp = start_scp(workers=2)
    workers = psutil.Process(scp.proc.pid).children()
    assert len(workers) == 2
    os.kill(workers[0].pid, signal.SIGKILL)
    assert scp.proc.wait(30) == 1
    assert any(line.get("event") == "worker-died" for line in scp.log_lines())


def test_a_worker_that_cannot_start_says_why(tmp_path):
    """A failure inside a worker before it serves is one log line, not a silent exit 1."""
    code = (
        "import sys, scp.server as s\n"
        "def broken(*args, **kwargs): raise RuntimeError('cannot build the DICOM server')\n"
        "s.serve = broken\n"
        "from scp.__main__ import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = ["--storage", str(tmp_path / "store"), "--bind", "127.0.0.1", "--workers", "2"]
    argv += ["--port", str(free_port()), "--health-port", "0"]
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith('{"time"')]
    failed = [x for x in lines if x.get("event") == "worker-failed"]
    assert failed and failed[0]["error"] == "RuntimeError: cannot build the DICOM server"
