"""The one way tests, the reliability suite and the benchmark start our SCP: `python -m scp` as a
real process on free loopback ports, ready once /health answers 200."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from tests.support.aws import FAKE_AWS_ENV
from tests.support.memory import tree_rss
from tests.support.net import free_port, get_health

REPO = Path(__file__).resolve().parents[2]


class ScpProcess:
    """`python -m scp` with the given settings (flag name -> value) and extra command-line
    flags; stdout and stderr go to `log_path`. The fake AWS credentials are in its environment.

    Usage: `with ScpProcess(storage=str(tmp_path)) as scp: ... scp.port ...`
    """

    def __init__(
        self,
        log_dir: Path | str | None = None,
        env: dict[str, str] | None = None,
        flags: list[str] | tuple[str, ...] = (),
        log_path: Path | None = None,
        **settings: Any,
    ) -> None:
        self.port = int(settings.pop("port", 0)) or free_port()
        self.health_port = int(settings.pop("health_port", 0)) or free_port()
        self.ae_title = settings.setdefault("ae_title", "STORESCP")
        settings.setdefault("bind", "127.0.0.1")
        self.settings = settings
        self.flags = list(flags)
        self.env = {**os.environ, **FAKE_AWS_ENV, "PYTHONPATH": str(REPO), **(env or {})}
        self.log_path = log_path or Path(log_dir or "/tmp") / f"scp-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        args = [sys.executable, "-m", "scp", "--port", str(self.port)]
        args += ["--health-port", str(self.health_port)]
        for name, value in self.settings.items():
            if isinstance(value, bool):
                value = str(value).lower()
            elif isinstance(value, list | tuple):
                value = ",".join(value)
            args += ["--" + name.replace("_", "-"), str(value)]
        return args + self.flags

    def start(self, timeout: float = 30.0, healthy: bool = True) -> ScpProcess:
        """Start, and return once /health says 200 (or, with healthy=False, answers at all:
        an SCP that cannot store reports 503 with the reason)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv(), cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"SCP exited with {self.proc.returncode}:\n{self.tail()}")
            code = self.health()[0]
            if code == 200 or (code and not healthy):
                return self
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"SCP not healthy after {timeout}s:\n{self.tail()}")

    def health(self, timeout: float = 1.0) -> tuple[int, dict[str, Any]]:
        return get_health(self.health_port, timeout)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def log_lines(self) -> list[dict[str, Any]]:
        """Every JSON line the SCP printed."""
        return [json.loads(line) for line in self.output().splitlines() if line.startswith("{")]

    def events(self, event: str) -> list[dict[str, Any]]:
        """The log lines of one event, in order."""
        return [line for line in self.log_lines() if line.get("event") == event]

    def rss(self) -> int:
        """Resident bytes of the SCP and all its worker processes."""
        assert self.proc is not None
        return tree_rss(psutil.Process(self.proc.pid))

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the SCP and every worker it started, as a crashed host would."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(psutil.NoSuchProcess):
            children = psutil.Process(self.proc.pid).children(recursive=True)
            self.proc.kill()
            self.proc.wait(10)
            for child in children:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
            psutil.wait_procs(children, timeout=10)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL whatever is left after timeout."""
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.terminate(timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:
            self.kill()

    def __enter__(self) -> ScpProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
