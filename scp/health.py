"""The HTTP health endpoint (NLB target group and container HEALTHCHECK): GET /health."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from scp import __version__
from scp.listener import listen
from scp.settings import Settings
from scp.store_check import StoreCheck


class HealthSource(Protocol):
    """What the health endpoint reports: a StoreService, or the workers' supervisor."""

    draining: bool

    def active_count(self) -> int: ...


class Background(Protocol):
    """A part running beside the DICOM server, started and stopped with it, whose state
    /health reports (the edge forwarder): `healthy()` False turns /health to 503, `status()`
    joins its body under `name`."""

    name: str

    def start(self) -> object: ...

    def stop(self, timeout: float = 30.0) -> None: ...

    def healthy(self) -> bool: ...

    def status(self) -> dict[str, Any]: ...


class HealthServer(ThreadingHTTPServer):
    """GET /health: 200 while serving and able to store; 503 while starting, draining, while
    the last storage check failed (with its reason), or while a background part reports trouble
    (the edge forwarder's backlog too old)."""

    daemon_threads = True

    def __init__(self, sock: socket.socket) -> None:
        self.service: HealthSource | None = None
        self.store_check: StoreCheck | None = None
        self.background: Background | None = None
        self.ready = False
        super().__init__(sock.getsockname()[:2], _HealthHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.server_name, self.server_port = sock.getsockname()[:2]

    def start(
        self,
        service: HealthSource,
        store_check: StoreCheck | None,
        background: Background | None = None,
    ) -> HealthServer:
        self.service, self.store_check, self.background = service, store_check, background
        threading.Thread(target=self.serve_forever, name="Health", daemon=True).start()
        return self

    def verdict(self) -> tuple[str, str]:
        """(status, reason): ok, starting, draining or unhealthy."""
        assert self.service is not None
        if self.service.draining:
            return "draining", ""
        problem = self.store_check.problem if self.store_check else ""
        if problem:
            return "unhealthy", f"cannot store: {problem}"
        if not self.ready or problem is None:
            return "starting", ""
        if self.background is not None and not self.background.healthy():
            return f"{self.background.name}-behind", ""
        return "ok", ""


class _HealthHandler(BaseHTTPRequestHandler):
    server: HealthServer

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/health":
            self._reply(404, {"error": "not found; try /health"})
            return
        status, reason = self.server.verdict()
        assert self.server.service is not None
        body: dict[str, Any] = {"status": status}
        if reason:
            body["reason"] = reason
        body.update(activeAssociations=self.server.service.active_count(), version=__version__)
        if self.server.background is not None:
            body[self.server.background.name] = self.server.background.status()
        self._reply(200 if status == "ok" else 503, body)

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # health checks every few seconds would drown the log


def open_health(settings: Settings) -> HealthServer | None:
    """The health endpoint's socket, bound at start-up (StartupError naming HEALTH_PORT when
    it cannot be); it answers once `start` is called."""
    if not settings.health_port:
        return None
    return HealthServer(listen(settings.bind, settings.health_port, "health_port"))
