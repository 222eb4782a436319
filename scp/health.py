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


class HealthServer(ThreadingHTTPServer):
    """GET /health: 200 while serving, 503 while starting or draining."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], service: HealthSource) -> None:
        self.service = service
        self.ready = False
        super().__init__(address, _HealthHandler)


class _HealthHandler(BaseHTTPRequestHandler):
    server: HealthServer

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/health":
            self._reply(404, {"error": "not found; try /health"})
            return
        service = self.server.service
        ok = self.server.ready and not service.draining
        self._reply(
            200 if ok else 503,
            {
                "status": "ok" if ok else ("draining" if service.draining else "starting"),
                "activeAssociations": service.active_count(),
                "version": __version__,
            },
        )

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # health checks every few seconds would drown the log


def start_health(settings: Settings, service: HealthSource) -> HealthServer | None:
    if not settings.health_port:
        return None
    health = HealthServer((settings.bind, settings.health_port), service)
    threading.Thread(target=health.serve_forever, name="Health", daemon=True).start()
    return health
