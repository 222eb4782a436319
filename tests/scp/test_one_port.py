"""One SCP per port: our workers share one socket; any other program that wants the port is
refused with one sentence naming the holder, and we are refused by it the same way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.scp.conftest import stored_files
from tests.scp.test_transfer import DCMTK_ENV, storescu
from tests.support.net import free_port, wait_for_port
from tests.support.scp import REPO

PROG = "storescp-healthimaging: error: "


def second_scp(port: int, storage: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """`python -m scp` on `port`, as an admin would start a second one by mistake."""
    argv = [sys.executable, "-m", "scp", "--port", str(port), "--storage", str(storage)]
    argv += ["--bind", "127.0.0.1", *flags]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_a_second_scp_on_the_port_is_refused_and_the_first_gets_every_study(
    start_scp, instances, tmp_path
):
    first = start_scp(workers=2)
    second = second_scp(first.port, tmp_path / "other", "--health-port", str(free_port()))
    assert second.returncode == 1
    assert second.stderr.splitlines() == [
        f"{PROG}SCP_PORT {first.port} on 127.0.0.1 is already in use by "
        f"{Path(sys.executable).name} -m scp (pid {first.proc.pid}); stop it, or give this SCP "
        "another port (--port / SCP_PORT)"
    ]
    for name in ("explicit", "mr", "sc", "implicit"):
        assert storescu(first.port, str(instances[name])).returncode == 0
    assert len(stored_files(tmp_path / "store")) == 4
    assert not (tmp_path / "other" / "incoming").exists()


def test_the_health_port_in_use_is_one_sentence(start_scp, tmp_path):
    first = start_scp(workers=1)
    second = second_scp(free_port(), tmp_path / "other", "--health-port", str(first.health_port))
    assert second.returncode == 1
    (line,) = second.stderr.splitlines()
    assert line.startswith(f"{PROG}HEALTH_PORT {first.health_port} on 127.0.0.1 is already in use")
    assert "(--health-port / HEALTH_PORT)" in line


def test_dcmtk_storescp_and_our_scp_refuse_each_others_port(start_scp, tmp_path):
    port = free_port()
    (tmp_path / "dcmtk").mkdir()
    dcmtk = subprocess.Popen(
        ["storescp", "-od", str(tmp_path / "dcmtk"), str(port)],
        env=DCMTK_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        ours = second_scp(port, tmp_path / "ours", "--health-port", "0")
    finally:
        dcmtk.terminate()
        dcmtk.wait(10)
    assert ours.returncode == 1
    assert ours.stderr.splitlines() == [
        f"{PROG}SCP_PORT {port} on 127.0.0.1 is already in use by storescp (pid {dcmtk.pid}); "
        "stop it, or give this SCP another port (--port / SCP_PORT)"
    ]
    scp = start_scp(workers=2)
    theirs = subprocess.run(
        ["storescp", "-od", str(tmp_path / "dcmtk"), str(scp.port)],
        env=DCMTK_ENV,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert theirs.returncode != 0
    assert "Address already in use" in theirs.stderr
