"""Several worker processes on one port: one association limit, one health endpoint, one drain."""

from __future__ import annotations

import os
import signal
import time

import psutil

from tests.scp.conftest import manifests, stored_files
from tests.scp.test_policy import associate, rejection
from tests.scp.test_transfer import storescu


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
    time.sleep(0.5)
    assert scp.health()[1]["activeAssociations"] == 0
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
