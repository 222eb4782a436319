"""Associations we open (storage-commitment reports; later C-MOVE sub-operations): our own
pynetdicom AE per association, with the SCP's AE title, timeouts and PDU size, the process-wide
library settings of the receiving side (scp/server.py build_ae), and TLS when the registry says
the remote AE wants it."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Sequence
from typing import Any

from pynetdicom import AE, evt
from pynetdicom._globals import DEFAULT_TRANSFER_SYNTAXES
from pynetdicom.association import Association

from scp.reactor import REACTOR_HANDLERS
from scp.remote_aes import RemoteAE
from scp.settings import Settings

LOG = logging.getLogger("scp")


def _no_delay(event: evt.Event) -> None:
    """TCP_NODELAY on a connection we open, as on those we accept (scp/server.py): otherwise
    Nagle's algorithm holds a message's last small segment until the peer's delayed ACK, tens
    of milliseconds per DIMSE message (a C-STORE to dcmtk's storescp took 44 ms instead of
    2.7 ms here)."""
    event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# evt_handlers for every association we request (AE.associate): EVT_CONN_OPEN fires once its
# TCP connection is up, before A-ASSOCIATE-RQ is sent; EVT_ACCEPTED before its reactor starts.
OUTGOING_HANDLERS = [(evt.EVT_CONN_OPEN, _no_delay), *REACTOR_HANDLERS]


def client_tls(settings: Settings, remote: RemoteAE) -> tuple[ssl.SSLContext, str] | None:
    """TLS 1.2+ to remote if it is registered with tls: its certificate checked against
    TLS_CA_FILE (or the system's CAs) and its host name; our certificate, if we have one, sent
    as the client certificate."""
    if not remote.tls:
        return None
    ctx = ssl.create_default_context(cafile=settings.tls_ca or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.tls_cert:
        ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    return ctx, remote.host


def associate(
    settings: Settings,
    remote: RemoteAE,
    abstract_syntaxes: Sequence[str],
    ext_neg: Sequence[Any] = (),
) -> Association | None:
    """An established association to remote proposing the given SOP classes (pynetdicom's
    default syntaxes), or None (refused, unreachable, TLS failed: the reason is logged)."""
    ae = AE(ae_title=settings.ae_title)
    ae.maximum_pdu_size = settings.max_pdu_size
    ae.acse_timeout = settings.acse_timeout
    # TCP connect bounded too: an unreachable host must not outlast a report's lease
    # (scp/commitment/job_table.py LEASE) with the kernel's SYN retries.
    ae.connection_timeout = settings.acse_timeout
    ae.dimse_timeout = settings.dimse_timeout
    ae.network_timeout = settings.network_timeout
    for uid in abstract_syntaxes:
        ae.add_requested_context(uid, DEFAULT_TRANSFER_SYNTAXES)
    try:
        assoc = ae.associate(
            remote.host,
            remote.port,
            ae_title=remote.ae_title,
            ext_neg=list(ext_neg),
            tls_args=client_tls(settings, remote),
            evt_handlers=OUTGOING_HANDLERS,
        )
    except (OSError, ssl.SSLError, RuntimeError) as exc:
        LOG.warning(
            "association not opened",
            extra={"fields": {"event": "outgoing-failed", "calledAETitle": remote.ae_title,
                              "host": remote.host, "port": remote.port, "error": str(exc)}},
        )  # fmt: skip
        return None
    if assoc.is_established:
        return assoc
    return None
