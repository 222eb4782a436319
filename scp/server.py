"""Assemble and run the SCP: the pynetdicom AE, its listening server, health, metrics, drain."""

from __future__ import annotations

import logging
import signal
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from pydicom import config as pydicom_config
from pynetdicom import AE, _config
from pynetdicom.transport import ThreadedAssociationServer

from scp.association import DiskGuard, ScpRequestHandler, pynetdicom_supported
from scp.health import Background, HealthServer
from scp.listener import tls_context
from scp.service import StoreService
from scp.services import (  # noqa: F401 (TRANSFER_SYNTAXES: read by the documents)
    TRANSFER_SYNTAXES,
    Services,
    StorageService,
    VerificationService,
    add_contexts,
    build_services,
)
from scp.settings import Settings
from scp.slots import LocalSlots
from scp.storage import Store
from scp.store_check import StoreCheck
from scp.telemetry import METRICS_INTERVAL, Metrics

LOG = logging.getLogger("scp")
SIGNAL_POLL = 0.2  # seconds between the main thread's looks at the stop flag
PENDING_CONNECTIONS = 100  # connections not yet associated, beyond MaximumAssociations


class SharedContexts(list):
    """The server's supported presentation contexts, shared by its associations instead of
    deep-copied for each (171 contexts x 16 transfer syntaxes: tens of ms per association).
    Safe because acceptor negotiation only reads them (pinned by the contract tests)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> list[Any]:
        return list(self)


class ScpServer(ThreadedAssociationServer):
    """pynetdicom's threaded server, hardened: TCP_NODELAY, TLS handshakes off the accept loop
    with a deadline, a cap on connections that have not associated yet, and (through its request
    handler) our association classes, which receive datasets into `receive_dir` while it keeps
    `min_free_disk` bytes free. Given a `listener` (scp.listener.listen: bound once, shared by
    the worker processes), it serves that socket instead of binding its own."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        *args: Any,
        receive_dir: str,
        min_free_disk: int,
        listener: socket.socket | None = None,
        **kwargs: Any,
    ) -> None:
        self.disk = DiskGuard(receive_dir, min_free_disk)
        self.listener = listener
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:
        if self.listener is None:
            super().server_bind()
            return
        self.socket.close()  # the unbound socket socketserver made
        self.socket = self.listener
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        if self.listener is None:
            super().server_activate()

    def get_request(self) -> tuple[socket.socket, Any]:
        client, address = self.socket.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context:
            client = self.ssl_context.wrap_socket(
                client, server_side=True, do_handshake_on_connect=False
            )
        return client, address

    def verify_request(self, request: Any, client_address: Any) -> bool:
        limit = self.ae.maximum_associations + PENDING_CONNECTIONS
        if len(self.active_associations) >= limit:
            LOG.warning(
                "connection dropped: too many connections",
                extra={
                    "fields": {
                        "event": "connection-dropped",
                        "peer": client_address[0],
                        "limit": limit,
                    }
                },
            )
            return False
        return True

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(self.ae.acse_timeout)
                request.do_handshake()
                request.settimeout(None)
            except (OSError, ssl.SSLError) as exc:
                LOG.warning(
                    "TLS handshake failed",
                    extra={
                        "fields": {
                            "event": "tls-refused",
                            "peer": client_address[0],
                            "error": str(exc),
                        }
                    },
                )
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)


def build_ae(settings: Settings) -> AE:
    """The application entity with its presentation contexts and timeouts."""
    _config.STORE_RECV_CHUNKED_DATASET = True  # stream datasets to a file, never hold them
    _config.LOG_HANDLER_LEVEL = "none"  # pynetdicom's PDU dumps could carry PHI
    # pydicom re-validates every UID it touches with regexes, a large share of the receive
    # path's CPU; the SCP validates the UIDs it uses itself (settings.is_uid).
    pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
    pydicom_config.settings.writing_validation_mode = pydicom_config.IGNORE
    ae = AE(ae_title=settings.ae_title)
    ae.maximum_pdu_size = settings.max_pdu_size
    ae.acse_timeout = settings.acse_timeout
    ae.dimse_timeout = settings.dimse_timeout
    ae.network_timeout = settings.network_timeout
    # The limit is enforced by the AssociationRegistry on associations; this only caps threads.
    ae.maximum_associations = settings.maximum_associations + PENDING_CONNECTIONS
    add_contexts(ae, settings)
    return ae


def serve(
    settings: Settings,
    store: Store,
    slots: LocalSlots,
    listener: socket.socket,
    *,
    health: HealthServer | None = None,
    store_check: StoreCheck | None = None,
    worker: bool = False,
    on_listening: Callable[[], None] | None = None,
    background: Background | None = None,
) -> int:
    """One serving process: DICOM server on `listener`, metrics, drain; the health endpoint
    when given one, the periodic storage check when given `store_check`, and a background part
    (the edge forwarder) started before it listens and stopped after it. A `worker` leaves the
    ActiveAssociations gauge to its supervisor."""
    tempfile.tempdir = store.temp_dir  # stock pynetdicom's files too (unsupported versions)
    ae = build_ae(settings)
    store.connect()
    metrics = Metrics(settings.metrics_namespace)
    service = StoreService(settings, store, metrics, slots).start()
    services = build_services(settings, service.on_store, metrics)
    services.start()
    server = start_dicom_server(ae, settings, service, store.temp_dir, listener, services)
    if background:
        background.start()
    stop = threading.Event()
    if store_check:
        store_check.start(store, settings.min_free_disk, settings.storage_check_interval, stop)
    if health:
        health.start(service, store_check, background)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    LOG.info("SCP listening", extra={"fields": {"event": "listening", "port": settings.port}})
    if on_listening:
        on_listening()
    if health:
        health.ready = True
    # Short waits: a SIGTERM delivered to another thread only runs its Python handler once the
    # main thread executes bytecode again, so a minute-long wait would delay the drain a minute.
    next_flush = time.monotonic() + METRICS_INTERVAL
    while not stop.wait(SIGNAL_POLL):
        if time.monotonic() >= next_flush:
            metrics.flush(None if worker else service.active_count())
            next_flush += METRICS_INTERVAL
    services.drain()
    _drain(settings, service, server)
    services.stop(timeout=settings.dimse_timeout)
    metrics.flush(None if worker else service.active_count())
    if background:
        background.stop()
    if health:
        health.shutdown()
    LOG.info("SCP stopped", extra={"fields": {"event": "stopped"}})
    return 0


def start_dicom_server(
    ae: AE,
    settings: Settings,
    service: StoreService,
    receive_dir: str,
    listener: socket.socket | None = None,
    services: Services | None = None,
) -> ScpServer:
    """Listen with the association policy's handlers and those of every service (without
    `services`: Verification and Storage over `service`, no background parts)."""
    own = pynetdicom_supported()
    services = services or Services(
        [VerificationService(), StorageService(service.on_store)], settings
    )
    server = ae.make_server(
        (settings.bind, settings.port),
        evt_handlers=service.handlers() + services.handlers(),
        ssl_context=tls_context(settings),
        server_class=ScpServer,
        request_handler=ScpRequestHandler if own else None,
        receive_dir=receive_dir,
        min_free_disk=settings.min_free_disk,
        listener=listener,
    )
    if own:
        server.contexts = SharedContexts(server.contexts)
    ae._servers.append(server)
    threading.Thread(target=server.serve_forever, name="AcceptorServer", daemon=True).start()
    return server


def _drain(settings: Settings, service: StoreService, server: ThreadedAssociationServer) -> None:
    """Stop accepting, let associations finish until the deadline, then abort the rest."""
    service.drain()
    server.shutdown()  # closes the listening socket: new connections are refused
    LOG.info(
        "draining",
        extra={
            "fields": {
                "event": "draining",
                "activeAssociations": service.active_count(),
                "drainTimeout": settings.drain_timeout,
            }
        },
    )
    deadline = time.monotonic() + settings.drain_timeout
    while service.active_count() and time.monotonic() < deadline:
        time.sleep(0.1)
    if service.active_count():
        LOG.warning(
            "drain deadline passed; aborting associations",
            extra={
                "fields": {"event": "drain-timeout", "activeAssociations": service.active_count()}
            },
        )
        service.abort_all()
    service.finish_all(timeout=30)
