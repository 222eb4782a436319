"""Four changes to pynetdicom 3.0 (pinned) installed at start-up by `install()`.

1. A bound on the PDUs a peer may send: pynetdicom reads whatever length a PDU header announces
   into memory, so a peer announcing 4 GiB could make the SCP buffer gigabytes. A P-DATA-TF PDU
   longer than the maximum PDU size we negotiated, or any other PDU over MAX_CONTROL_PDU, closes
   the connection before its body is read.

2. Connections that close before associating end at once: pynetdicom's association thread
   would wait for the A-ASSOCIATE-RQ until the ACSE timeout, holding memory and a thread.

3. Event-driven waits for pynetdicom's polling reactors. Its DUL and association threads poll:
   each idle loop sleeps a fixed 1 ms, and a C-STORE crosses those loops several times (every
   PDU that arrives after the DUL caught up, the hand-over to the association thread, the
   response going back), so an instance waits milliseconds doing nothing. These waits keep the
   1 ms cadence as an upper bound but return as soon as there is work: socket data or an
   outgoing PDU for the DUL, a decoded message for the association. Idle CPU is unchanged.

4. Hand-encoded C-STORE-RSP commands and file meta groups. pynetdicom builds both through
   pydicom datasets (the command set twice, to measure its group length), a fifth of the CPU
   the SCP spends per instance; the bytes are fixed layouts of a few UIDs and integers.

Every SCP test runs with all four; tests/scp/test_pynetdicom_patches.py checks the
encodings against pydicom's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import ssl
import struct
import threading
import time as _time
from types import ModuleType
from typing import Any

import pynetdicom.association as _association_module
import pynetdicom.dimse_messages as _dimse_messages_module
import pynetdicom.dul as _dul_module
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.transport import AssociationSocket

LOG = logging.getLogger("scp")
REACTOR_DELAY = 0.001  # the association reactor's fixed sleep in pynetdicom 3.0
# Longest wait of an idle reactor thread: every event that needs it wakes it sooner, so this
# only bounds how late it notices timers and kill flags. (1 ms, pynetdicom's, made 300 idle
# associations keep both cores busy.)
IDLE_WAIT = 0.05
P_DATA_TF = 0x04
MAX_CONTROL_PDU = 1 << 20  # association, release and abort PDUs are a few KiB in practice
PDU_HEADER = 6


class _Waker:
    """An eventfd a thread can wait on in select(); safe to signal after it is closed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fd: int | None = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def signal(self) -> None:
        with self._lock:
            if self.fd is not None:
                os.eventfd_write(self.fd, 1)

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError, TypeError):
            os.eventfd_read(self.fd)  # type: ignore[arg-type]

    def close(self) -> None:
        with self._lock:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None


class _Clock:
    """Stands in for the `time` module inside one pynetdicom module; only sleep() differs."""

    def __init__(self, sleep: Any) -> None:
        self.sleep = sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(_time, name)


def _dul_sleep(delay: float) -> None:
    dul = threading.current_thread()
    waker: _Waker | None = getattr(dul, "_scp_waker", None)
    sock = getattr(getattr(dul, "socket", None), "socket", None)
    if waker is None or sock is None or waker.fd is None:
        _time.sleep(delay)
        return
    if not dul.to_provider_queue.empty():  # type: ignore[attr-defined]
        return
    if isinstance(sock, ssl.SSLSocket) and sock.pending():  # decrypted bytes wait in OpenSSL
        return
    try:
        ready, _, _ = select.select([sock, waker.fd], [], [], IDLE_WAIT)
    except (OSError, ValueError):  # socket closed under us: the reactor sees it next loop
        return
    if waker.fd in ready:
        waker.drain()


def _association_sleep(delay: float) -> None:
    assoc = threading.current_thread()
    if delay != REACTOR_DELAY or not isinstance(assoc, Association):
        _time.sleep(delay)
        return
    messages = assoc.dimse.msg_queue
    with messages.not_empty:
        if not messages._qsize() and not assoc.dul.to_user_queue._qsize():
            messages.not_empty.wait(IDLE_WAIT)


class _UserQueue(queue.Queue):
    """The DUL's queue of indications for its association (release, abort, None when the DUL
    ends); a put also wakes the association's reactor, which waits on its message queue."""

    def __init__(self, wake: threading.Condition) -> None:
        super().__init__()
        self._wake = wake

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        with self._wake:
            self._wake.notify_all()


def _element(tag: int, vr: bytes, value: bytes, explicit: bool) -> bytes:
    """One little endian data element; UIs padded with NUL, other strings with a space."""
    if len(value) % 2:
        value += b"\0" if vr in (b"UI", b"OB") else b" "
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if not explicit:
        return head + struct.pack("<I", len(value)) + value
    if vr == b"OB":
        return head + vr + b"\0\0" + struct.pack("<I", len(value)) + value
    return head + vr + struct.pack("<H", len(value)) + value


def encode_file_meta(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> bytes:
    """The File Meta Information group (explicit VR little endian), after the DICM prefix."""
    body = b"".join(
        [
            _element(0x00020001, b"OB", b"\0\1", True),
            _element(0x00020002, b"UI", sop_class_uid.encode(), True),
            _element(0x00020003, b"UI", sop_instance_uid.encode(), True),
            _element(0x00020010, b"UI", transfer_syntax.encode(), True),
            _element(0x00020012, b"UI", PYNETDICOM_IMPLEMENTATION_UID.encode(), True),
            _element(0x00020013, b"SH", PYNETDICOM_IMPLEMENTATION_VERSION.encode(), True),
        ]
    )
    return _element(0x00020000, b"UL", struct.pack("<I", len(body)), True) + body


def encode_store_rsp(
    message_id: int, status: int, sop_class_uid: str, sop_instance_uid: str
) -> bytes:
    """A C-STORE-RSP command set (implicit VR little endian), group length included."""
    body = b"".join(
        [
            _element(0x00000002, b"UI", sop_class_uid.encode(), False),
            _element(0x00000100, b"US", struct.pack("<H", 0x8001), False),
            _element(0x00000120, b"US", struct.pack("<H", message_id), False),
            _element(0x00000800, b"US", struct.pack("<H", 0x0101), False),
            _element(0x00000900, b"US", struct.pack("<H", status), False),
            _element(0x00001000, b"UI", sop_instance_uid.encode(), False),
        ]
    )
    return _element(0x00000000, b"UL", struct.pack("<I", len(body)), False) + body


def _create_file_meta(
    *, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str, **_: Any
) -> bytes:
    return encode_file_meta(sop_class_uid, sop_instance_uid, transfer_syntax)


def _write_file_meta_info(fp: Any, meta: bytes, **_: Any) -> None:
    fp.write(meta)


def _fast_send_msg(original: Any) -> Any:
    def send_msg(self: DIMSEServiceProvider, primitive: Any, context_id: int) -> None:
        if (
            isinstance(primitive, C_STORE)
            and primitive.MessageIDBeingRespondedTo is not None
            and primitive.Status is not None
            and primitive.ErrorComment is None
            and primitive.OffendingElement is None
        ):
            command = encode_store_rsp(
                primitive.MessageIDBeingRespondedTo,
                primitive.Status,
                primitive.AffectedSOPClassUID or "",
                primitive.AffectedSOPInstanceUID or "",
            )
            if not self.maximum_pdu_size or len(command) + 7 <= self.maximum_pdu_size:
                pdata = P_DATA()
                pdata.presentation_data_value_list.append((context_id, b"\x03" + command))
                self.dul.send_pdu(pdata)
                return
        original(self, primitive, context_id)

    return send_msg


_installed = False


def _bounded_recv(original: Any, max_pdu: int) -> Any:
    """AssociationSocket.recv that refuses to read the body of an oversized PDU.

    The DUL reads a PDU as recv(6) (type and length), then recv(length); the header read is
    remembered on the socket so the body read can be checked against it."""

    def recv(self: AssociationSocket, nr_bytes: int) -> bytearray:
        header = getattr(self, "_scp_header", None)
        if header is not None and nr_bytes == header[1]:
            self._scp_header = None  # type: ignore[attr-defined]
            limit = max_pdu if header[0] == P_DATA_TF else MAX_CONTROL_PDU
            if nr_bytes > limit:
                LOG.warning(
                    "PDU larger than negotiated; connection closed",
                    extra={
                        "fields": {
                            "event": "pdu-too-large",
                            "pduType": header[0],
                            "length": nr_bytes,
                            "limit": limit,
                        }
                    },
                )
                return bytearray()  # the DUL sees a short read and closes the connection
        data = original(self, nr_bytes)
        if nr_bytes == PDU_HEADER and len(data) == PDU_HEADER:
            pdu_type, _, length = struct.unpack(">BBL", data)
            self._scp_header = (pdu_type, length)  # type: ignore[attr-defined]
        return data

    return recv


def install(max_pdu: int) -> None:
    """Patch pynetdicom (idempotent): max_pdu is the maximum PDU length we advertise."""
    global _installed
    if _installed:
        return
    AssociationSocket.recv = _bounded_recv(AssociationSocket.recv, max_pdu)  # type: ignore
    original_run = DULServiceProvider.run_reactor
    original_send = DULServiceProvider.send_pdu

    def run_reactor(self: DULServiceProvider) -> None:
        self._scp_waker = _Waker()  # type: ignore[attr-defined]
        # Replaced before the reactor signals it is ready, so nothing has been queued yet.
        self.to_user_queue = _UserQueue(self.assoc.dimse.msg_queue.not_empty)
        try:
            original_run(self)
        finally:
            self._scp_waker.close()  # type: ignore[attr-defined]
            # A connection that closed before requesting an association would otherwise keep
            # its association thread waiting for an A-ASSOCIATE-RQ until the ACSE timeout;
            # None is what that wait returns on timeout, so the thread ends now instead.
            self.to_user_queue.put(None)

    def send_pdu(self: DULServiceProvider, primitive: Any) -> None:
        original_send(self, primitive)
        waker = getattr(self, "_scp_waker", None)
        if waker is not None:
            waker.signal()

    DIMSEServiceProvider.send_msg = _fast_send_msg(DIMSEServiceProvider.send_msg)  # type: ignore
    _dimse_messages_module.create_file_meta = _create_file_meta  # type: ignore[assignment]
    _dimse_messages_module.write_file_meta_info = _write_file_meta_info  # type: ignore
    DULServiceProvider.run_reactor = run_reactor  # type: ignore[method-assign]
    DULServiceProvider.send_pdu = send_pdu  # type: ignore[method-assign]
    _patch_time(_dul_module, _dul_sleep)
    _patch_time(_association_module, _association_sleep)
    _installed = True


def _patch_time(module: ModuleType, sleep: Any) -> None:
    module.time = _Clock(sleep)  # type: ignore[attr-defined]
