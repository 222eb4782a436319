"""One SCP container run from the built image on loopback ports, for the image tests."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from generator.release.image import Engine
from tests.support.net import free_port, get_health


class Container:
    """`run -d --network host` of image with the SCP's ports (its only settings unless given).

    Host networking is how podman runs here (no user-mode network), so the ports must be free
    ones rather than the image's defaults 11112 and 8080.
    """

    def __init__(
        self, engine: Engine, image: str, *options: str, env: dict[str, str] | None = None
    ) -> None:
        self.engine, self.image, self.options = engine, image, options
        self.port, self.health_port = free_port(), free_port()
        self.env = {
            "SCP_PORT": str(self.port),
            "HEALTH_PORT": str(self.health_port),
            "BIND_ADDRESS": "127.0.0.1",
            **(env or {}),
        }
        self.id = ""

    def start(self, healthy: bool = True, timeout: float = 60) -> Container:
        flags = [a for k, v in self.env.items() for a in ("-e", f"{k}={v}")]
        self.id = self.engine.run(
            "run", "-d", "--network", "host", *flags, *self.options, self.image
        ).strip()
        deadline = time.monotonic() + timeout
        while healthy and self.health()[0] != 200:
            if time.monotonic() > deadline or self.state() == "exited":
                raise AssertionError(f"container not healthy:\n{self.output()}")
            time.sleep(0.2)
        return self

    def health(self) -> tuple[int, dict[str, Any]]:
        return get_health(self.health_port)

    def state(self) -> str:
        return self.engine.run("inspect", "--format", "{{.State.Status}}", self.id).strip()

    def output(self) -> str:
        return self.engine.logs(self.id)

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.output().splitlines() if x.startswith("{")]

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.engine.cli, "exec", self.id, *command],
            env=self.engine.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def signal(self, name: str) -> None:
        self.engine.run("kill", "--signal", name, self.id)

    def wait(self, timeout: float = 120) -> int:
        """Exit code once the container has stopped."""
        return int(self.engine.run("wait", self.id, timeout=timeout).strip().splitlines()[-1])

    def remove(self) -> None:
        if self.id:
            self.engine.run("rm", "-f", "-v", self.id, check=False)

    def __enter__(self) -> Container:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()
