"""The HTTP health endpoint (NLB target group and container HEALTHCHECK): GET /health."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from scp import __version__
from scp.settings import Settings


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
    """GET /health: 200 while serving, 503 while starting, draining, or a background part
    reports trouble (the edge forwarder's backlog too old)."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        service: HealthSource,
        background: Background | None = None,
    ) -> None:
        self.service = service
        self.background = background
        self.ready = False
        super().__init__(address, _HealthHandler)


class _HealthHandler(BaseHTTPRequestHandler):
    server: HealthServer

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/health":
            self._reply(404, {"error": "not found; try /health"})
            return
        service, background = self.server.service, self.server.background
        ok = self.server.ready and not service.draining
        body: dict[str, Any] = {
            "status": "ok" if ok else ("draining" if service.draining else "starting"),
            "activeAssociations": service.active_count(),
            "version": __version__,
        }
        if background is not None:
            body[background.name] = background.status()
            if ok and not background.healthy():
                ok, body["status"] = False, f"{background.name}-behind"
        self._reply(200 if ok else 503, body)

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # health checks every few seconds would drown the log


def start_health(
    settings: Settings, service: HealthSource, background: Background | None = None
) -> HealthServer | None:
    if not settings.health_port:
        return None
    health = HealthServer((settings.bind, settings.health_port), service, background)
    threading.Thread(target=health.serve_forever, name="Health", daemon=True).start()
    return health
