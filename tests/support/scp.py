"""Run the SCP as a real process on free loopback ports, for tests and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.net import free_port

REPO = Path(__file__).resolve().parents[2]


class ScpProcess:
    """`python -m scp` with the given settings (flag name -> value), stdout captured to a file.

    Usage: `with ScpProcess(storage=str(tmp_path)) as scp: ... scp.port ...`
    """

    def __init__(
        self, log_dir: Path | str | None = None, env: dict[str, str] | None = None, **settings: Any
    ) -> None:
        self.port = int(settings.pop("port", 0)) or free_port()
        self.health_port = int(settings.pop("health_port", 0)) or free_port()
        self.ae_title = settings.get("ae_title", "STORESCP")
        settings.setdefault("bind", "127.0.0.1")
        self.settings = settings
        self.env = {**os.environ, **(env or {})}
        self.log_path = Path(log_dir or "/tmp") / f"scp-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "scp",
            "--port",
            str(self.port),
            "--health-port",
            str(self.health_port),
        ]
        for name, value in self.settings.items():
            if isinstance(value, bool):
                value = str(value).lower()
            elif isinstance(value, list | tuple):
                value = ",".join(value)
            args += ["--" + name.replace("_", "-"), str(value)]
        return args

    def start(self, timeout: float = 20.0) -> ScpProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(
            self.argv(), cwd=REPO, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"SCP exited with {self.proc.returncode}:\n{self.output()}")
            if self.health()[0] == 200:
                return self
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"SCP not healthy after {timeout}s:\n{self.output()}")

    def health(self) -> tuple[int, dict[str, Any]]:
        url = f"http://127.0.0.1:{self.health_port}/health"
        try:
            with urllib.request.urlopen(url, timeout=1) as rsp:
                return rsp.status, json.load(rsp)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)
        except OSError:
            return 0, {}

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """Every JSON line the SCP printed."""
        return [json.loads(line) for line in self.output().splitlines() if line.startswith("{")]

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> ScpProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.terminate(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        finally:
            self.kill()
            self._log.close()
