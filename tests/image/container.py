"""One SCP container run from the built image on loopback ports, for the image tests."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from generator.release.image import Engine
from tests.support.net import free_port, get_health

# The host's 127.0.0.1 as a container with its own (slirp4netns) network reaches it.
HOST_LOOPBACK = "10.0.2.2"


class Container:
    """`run -d` of image with the SCP's ports (its only settings unless given).

    By default with host networking, so the ports must be free ones rather than the image's
    defaults 11112 and 8080 (set in env); or in a network of its own (`published`).
    """

    def __init__(
        self,
        engine: Engine,
        image: str,
        *options: str,
        env: dict[str, str] | None = None,
        published: tuple[int, int] | None = None,
    ) -> None:
        """published: the container's own (DICOM, health) ports. Then the container gets a
        network of its own (slirp4netns, as awsvpc gives each Fargate task one), keeps those
        ports and has them published on free loopback ports; the host's loopback is
        HOST_LOOPBACK inside. Otherwise host networking, with free ports set in env."""
        self.engine, self.image, self.options = engine, image, options
        self.port, self.health_port = free_port(), free_port()
        if published:
            dicom, health = published
            self.network = ["--network", "slirp4netns:allow_host_loopback=true"]
            self.network += ["-p", f"127.0.0.1:{self.port}:{dicom}"]
            self.network += ["-p", f"127.0.0.1:{self.health_port}:{health}"]
            self.env = dict(env or {})
        else:
            self.network = ["--network", "host"]
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
            "run", "-d", *self.network, *flags, *self.options, self.image
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
