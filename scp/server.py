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
from pynetdicom.sop_class import _STORAGE_CLASSES, Verification
from pynetdicom.transport import ThreadedAssociationServer

from scp.association import DiskGuard, ScpRequestHandler, pynetdicom_supported
from scp.health import Background, start_health
from scp.service import StoreService
from scp.settings import Settings
from scp.slots import LocalSlots
from scp.storage import Store
from scp.telemetry import METRICS_INTERVAL, Metrics

LOG = logging.getLogger("scp")
SIGNAL_POLL = 0.2  # seconds between the main thread's looks at the stop flag
PENDING_CONNECTIONS = 100  # connections not yet associated, beyond MaximumAssociations

# Stored as received, never transcoded: the uncompressed syntaxes and every compressed one
# HealthImaging imports.
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old modalities)
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51",  # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless, Non-Hierarchical (Process 14)
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, First-Order Prediction (Process 14 SV1)
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202",  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.5",  # RLE Lossless
]


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
    `min_free_disk` bytes free."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        *args: Any,
        receive_dir: str,
        min_free_disk: int,
        reuse_port: bool = False,
        **kwargs: Any,
    ) -> None:
        self.disk = DiskGuard(receive_dir, min_free_disk)
        self.reuse_port = reuse_port  # worker processes share the port; the kernel spreads them
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:
        if self.reuse_port:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()

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
    ae.add_supported_context(Verification)
    sop_classes = settings.supported_sop_class_uids or sorted(set(_STORAGE_CLASSES.values()))
    for uid in sop_classes:
        ae.add_supported_context(uid, TRANSFER_SYNTAXES)
    return ae


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls_enabled:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    if settings.tls_ca:
        ctx.load_verify_locations(settings.tls_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def serve(
    settings: Settings,
    store: Store,
    slots: LocalSlots,
    *,
    with_health: bool,
    reuse_port: bool = False,
    on_listening: Callable[[], None] | None = None,
    background: Background | None = None,
) -> int:
    """One serving process: DICOM server, optional health endpoint, metrics, drain, and a
    background part (the edge forwarder) started before it listens and stopped after it."""
    tempfile.tempdir = store.temp_dir  # stock pynetdicom's files too (unsupported versions)
    ae = build_ae(settings)
    store.connect()
    metrics = Metrics(settings.metrics_namespace)
    service = StoreService(settings, store, metrics, slots).start()
    try:
        server = start_dicom_server(ae, settings, service, store.temp_dir, reuse_port)
    except OSError as exc:
        LOG.error("cannot listen", extra={"fields": {"port": settings.port, "error": str(exc)}})
        return 1
    if background:
        background.start()
    health = start_health(settings, service, background) if with_health else None
    stop = threading.Event()
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
            metrics.flush(service.active_count() if with_health else None)
            next_flush += METRICS_INTERVAL
    _drain(settings, service, server)
    metrics.flush(service.active_count() if with_health else None)
    if background:
        background.stop()
    if health:
        health.shutdown()
    LOG.info("SCP stopped", extra={"fields": {"event": "stopped"}})
    return 0


def start_dicom_server(
    ae: AE, settings: Settings, service: StoreService, receive_dir: str, reuse_port: bool
) -> ScpServer:
    own = pynetdicom_supported()
    server = ae.make_server(
        (settings.bind, settings.port),
        evt_handlers=service.handlers(),
        ssl_context=tls_context(settings),
        server_class=ScpServer,
        request_handler=ScpRequestHandler if own else None,
        receive_dir=receive_dir,
        min_free_disk=settings.min_free_disk,
        reuse_port=reuse_port,
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
