"""Our server's associations: pynetdicom 3.0's objects, subclassed and installed per association.

`ScpServer` (scp/server.py) passes `request_handler=ScpRequestHandler` to `AE.make_server`; the
handler gives each association it creates our socket, DUL, DIMSE provider and reactor. Nothing
in pynetdicom's modules is replaced, so other associations in the process (a test's SCU) run
stock pynetdicom. The changes:

1. Bounded PDUs (`ScpSocket.recv`): stock pynetdicom reads whatever length a PDU header announces,
   so a peer announcing 4 GiB makes it buffer gigabytes. A P-DATA-TF longer than the maximum PDU
   we negotiated, or any other PDU over MAX_CONTROL_PDU, closes the connection unread.
2. Early end (`ScpDUL.run_reactor`): a connection that closes before associating ends its
   association thread at once, instead of waiting for the ACSE timeout.
3. Event-driven waits (`ScpSocket.ready`, `ScpDIMSE.get_msg`, `ScpAssociation._run_reactor`):
   stock reactors poll with fixed 1 ms sleeps, several per C-STORE. Ours wait on the socket, an
   eventfd (outgoing PDUs) and the DIMSE queue's condition (messages, DUL indications), at most
   IDLE_WAIT when idle.
4. Owned temporary files and hand-encoded bytes (`ScpMessage`, `ScpDIMSE.send_msg`): a received
   dataset streams to `{receive_dir}/{random}.part` (never `.dcm`), is refused before anything is
   written when free disk space is below the minimum, and is removed as soon as its association
   no longer needs it (handled, refused, aborted, cut off mid-transfer). Every message class is
   ours, so pynetdicom's stock decoder never writes its own tmp*.dcm, whatever order a peer
   sends commands and datasets in; a second command set before a message's dataset ended, or
   a dataset fragment on another presentation context than its command's, is a protocol error
   the association is aborted on (pynetdicom's invalid-message path). File meta and
   C-STORE-RSP are hand-encoded (byte-identical to pynetdicom's), a fifth of the CPU per instance,
   and the response goes to the socket from the association's thread (`ScpDUL.send_command`),
   sparing the DUL thread a wake-up per instance. EVT_DIMSE_SENT and EVT_PDU_SENT still fire:
   when a handler is bound to either, the stock path runs.

Every pynetdicom method these rely on is pinned by tests/scp/test_pynetdicom_contract.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import secrets
import select
import shutil
import ssl
import struct
import threading
from io import BytesIO
from pathlib import Path
from typing import Any, cast

import pynetdicom
from pydicom.dataset import Dataset
from pynetdicom import (
    PYNETDICOM_IMPLEMENTATION_UID,
    PYNETDICOM_IMPLEMENTATION_VERSION,
    _config,
    evt,
)
from pynetdicom import dimse_messages as stock_messages
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import decode
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.transport import AssociationSocket, RequestHandler

LOG = logging.getLogger("scp")
WRITTEN_FOR = "3.0.4"  # the pynetdicom release these classes were written and tested against
IDLE_WAIT = 0.05  # longest wait of an idle reactor: events wake it sooner
P_DATA_TF = 0x04
MAX_CONTROL_PDU = 1 << 20  # association, release and abort PDUs are a few KiB in practice
PDU_HEADER = 6
PART_SUFFIX = ".part"


def pynetdicom_supported() -> bool:
    """True when the running pynetdicom is the release these classes were written for; else log
    what happens: the SCP runs stock pynetdicom associations (correct, slower, without the PDU
    bound, and temporary files named by pynetdicom)."""
    if pynetdicom.__version__ == WRITTEN_FOR:
        return True
    LOG.warning(
        "pynetdicom version not supported by the SCP's association classes; running stock "
        "pynetdicom associations",
        extra={
            "fields": {
                "event": "pynetdicom-unsupported",
                "found": pynetdicom.__version__,
                "writtenFor": WRITTEN_FOR,
                "effect": "no PDU size bound, polling reactors, pynetdicom's temporary files",
            }
        },
    )
    return False


# -- bytes ---------------------------------------------------------------------------------------
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


def p_data_tf(context_id: int, pdv: bytes) -> bytes:
    """A P-DATA-TF PDU holding one presentation data value (control header included)."""
    item = struct.pack(">LB", len(pdv) + 1, context_id) + pdv
    return struct.pack(">BBL", P_DATA_TF, 0, len(item)) + item


# Command set elements of a C-STORE-RQ (PS3.7 table 9.3-1)
GROUP_LENGTH, SOP_CLASS, COMMAND_FIELD, MESSAGE_ID = 0x00000000, 0x00000002, 0x00000100, 0x00000110
PRIORITY, DATA_SET_TYPE, SOP_INSTANCE = 0x00000700, 0x00000800, 0x00001000
MOVE_ORIGINATOR_AE, MOVE_ORIGINATOR_ID = 0x00001030, 0x00001031
STORE_RQ_ELEMENTS = {
    GROUP_LENGTH: 4, SOP_CLASS: 0, COMMAND_FIELD: 2, MESSAGE_ID: 2, PRIORITY: 2,
    DATA_SET_TYPE: 2, SOP_INSTANCE: 0, MOVE_ORIGINATOR_AE: 0, MOVE_ORIGINATOR_ID: 2,
}  # tag -> fixed length (0: any)  # fmt: skip
REQUIRED = {SOP_CLASS, COMMAND_FIELD, MESSAGE_ID, PRIORITY, DATA_SET_TYPE, SOP_INSTANCE}
NO_DATA_SET = b"\x01\x01"


def store_rq_fields(raw: bytes) -> dict[int, bytes] | None:
    """The elements of an implicit VR little endian command set when it is a well-formed
    C-STORE-RQ with only the elements the standard gives one; None for anything else."""
    fields: dict[int, bytes] = {}
    offset, end = 0, len(raw)
    while offset + 8 <= end:
        group, element, length = struct.unpack_from("<HHL", raw, offset)
        tag, offset = (group << 16) | element, offset + 8
        fixed = STORE_RQ_ELEMENTS.get(tag)
        if fixed is None or (fixed and length != fixed) or offset + length > end:
            return None
        fields[tag] = raw[offset : offset + length]
        offset += length
    if offset != end or not fields.keys() >= REQUIRED or fields[COMMAND_FIELD] != b"\x01\x00":
        return None
    return fields


def _u16(value: bytes) -> int:
    return int.from_bytes(value, "little")


def _text(value: bytes) -> str:
    return value.rstrip(b"\0 ").decode("ascii", "replace").strip()


# -- temporary files -----------------------------------------------------------------------------
class PartFile:
    """A dataset being received: `{folder}/{random}.part`, buffered, with the attributes
    pynetdicom's C-STORE service expects of its NamedTemporaryFile (name, file, close)."""

    def __init__(self, folder: str) -> None:
        self.name = os.path.join(folder, secrets.token_hex(12) + PART_SUFFIX)
        self.file = open(self.name, "xb", buffering=1 << 16)  # noqa: SIM115 - closed by owner

    def write(self, data: bytes) -> int:
        return self.file.write(data)

    def close(self) -> None:
        self.file.close()

    def discard(self) -> None:
        """Close and remove (if the store did not take it already)."""
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.name)


class ScpMessage(stock_messages.DIMSEMessage):
    """A DIMSE message being received; C-STORE-RQ datasets go to a PartFile of our own."""

    def __init__(self) -> None:  # the attributes stock DIMSEMessage() sets (it keys on its name)
        self.context_id: int | None = None
        self.encoded_command_set = BytesIO()
        self.data_set: BytesIO | None = BytesIO()
        self.command_set = Dataset()
        self._data_set_path: Path | None = None
        self._data_set_file: Any = None
        self._scp_fields: dict[int, bytes] | None = None  # a hand-read C-STORE-RQ's elements
        self._scp_discard = False  # refused for disk space: the dataset is dropped unread
        self._scp_commands = 0  # complete command sets seen
        self._scp_invalid = ""  # why the message breaks PS3.8 (the association is aborted)

    def decode_msg(self, primitive: P_DATA, assoc: Association | None = None) -> bool:
        if primitive.__class__ != P_DATA:
            return False
        for context_id, data in primitive.presentation_data_value_list:
            header = data[0]
            # A message that breaks PS3.8 annex E ends here as invalid: message_to_primitive
            # raises and pynetdicom aborts the association (its invalid-message path).
            if header & 1 and self._scp_commands:
                self._scp_invalid = "a second command set before the message's dataset ended"
                return True
            if not header & 1 and self._scp_commands and context_id != self.context_id:
                self._scp_invalid = "a dataset fragment on another presentation context"
                return True
            if header & 1:  # command set fragment
                self.encoded_command_set.write(data[1:])
                if header & 2 and self._command_done(context_id, cast(Association, assoc)):
                    return True
            else:  # dataset fragment
                if self._data_set_file is not None:
                    self._data_set_file.write(data[1:])
                elif not self._scp_discard:
                    cast(BytesIO, self.data_set).write(data[1:])
                if header & 2:
                    if self._data_set_file is not None:
                        self._data_set_file.file.flush()
                    return True
        return False

    def _command_done(self, context_id: int, assoc: Association) -> bool:
        """The command set is complete: decode it; True when the message has no dataset.

        A well-formed C-STORE-RQ is read by hand (pydicom's decode and pynetdicom's conversion
        to a primitive cost about 0.3 ms per instance); anything else, or any C-STORE-RQ while
        an EVT_DIMSE_RECV handler wants the decoded command set, takes the stock path."""
        self.context_id = context_id
        self._scp_commands = 1
        fields = store_rq_fields(self.encoded_command_set.getvalue())
        if fields is not None and not assoc.get_handlers(evt.EVT_DIMSE_RECV):
            self._scp_fields = fields
            self.__class__ = C_STORE_RQ
            if fields[DATA_SET_TYPE] == NO_DATA_SET:
                return True
            sop_class, sop_instance = _text(fields[SOP_CLASS]), _text(fields[SOP_INSTANCE])
        else:
            self.command_set = decode(self.encoded_command_set, True, True)
            stock = stock_messages._MESSAGE_TYPES[cast(int, self.command_set.CommandField)][1]
            self.__class__ = _OWN_TYPES.get(stock, stock)
            if self.command_set.CommandDataSetType == 0x0101:
                return True
            sop_class = str(self.command_set.get("AffectedSOPClassUID", ""))
            sop_instance = str(self.command_set.get("AffectedSOPInstanceUID", ""))
        if isinstance(self, C_STORE_RQ) and _config.STORE_RECV_CHUNKED_DATASET:
            dimse = cast(ScpDIMSE, assoc.dimse)
            if not dimse.disk.space_for_one():
                self._scp_discard = True  # answered NO_DISK_SPACE; nothing written
                return False
            part = dimse.new_part()
            part.write(b"\0" * 128 + b"DICM")
            transfer_syntax = assoc._accepted_cx[context_id].transfer_syntax[0]
            part.write(encode_file_meta(sop_class, sop_instance, transfer_syntax))
            self._data_set_file = part  # type: ignore[assignment]
            self._data_set_path = Path(part.name)
        return False

    def message_to_primitive(self) -> Any:
        if self._scp_invalid:
            raise ValueError(self._scp_invalid)
        fields = self._scp_fields
        primitive = super().message_to_primitive() if fields is None else self._store_rq(fields)
        if self._scp_discard:
            primitive._scp_discarded = True
        return primitive

    def _store_rq(self, fields: dict[int, bytes]) -> C_STORE:
        """The C-STORE primitive pynetdicom would make of these command fields."""
        primitive = C_STORE()
        primitive.MessageID = _u16(fields[MESSAGE_ID])
        primitive.AffectedSOPClassUID = _text(fields[SOP_CLASS])
        primitive.AffectedSOPInstanceUID = _text(fields[SOP_INSTANCE])
        primitive.Priority = _u16(fields[PRIORITY])
        if MOVE_ORIGINATOR_AE in fields:
            primitive.MoveOriginatorApplicationEntityTitle = _text(fields[MOVE_ORIGINATOR_AE])
        if MOVE_ORIGINATOR_ID in fields:
            primitive.MoveOriginatorMessageID = _u16(fields[MOVE_ORIGINATOR_ID])
        primitive.DataSet = self.data_set
        primitive._context_id = self.context_id
        primitive._dataset_path = self._data_set_path
        primitive._dataset_file = self._data_set_file
        return primitive


class C_STORE_RQ(ScpMessage, stock_messages.C_STORE_RQ):
    """A C-STORE-RQ received through ScpMessage (same class name: pynetdicom maps by name)."""


def _own_type(stock: type) -> type:
    """ScpMessage's decoding under a stock message class's name (pynetdicom maps by name), so a
    message stays ours whatever its command: a stock class's decode_msg, reached by a second
    command set after one that announced a dataset, would write pynetdicom's own tmp*.dcm."""
    if stock is stock_messages.C_STORE_RQ:
        return C_STORE_RQ
    return type(stock.__name__, (ScpMessage, stock), {"__module__": __name__})


_OWN_TYPES: dict[type, type] = {
    stock: _own_type(stock) for _, stock in stock_messages._MESSAGE_TYPES.values()
}


def refused_for_space(request: C_STORE) -> bool:
    """True when the dataset of this C-STORE-RQ was not received for lack of disk space."""
    return getattr(request, "_scp_discarded", False)


class DiskGuard:
    """The receive folder of one server and the free space it must keep; low space is logged
    once until it recovers, whichever association meets it."""

    def __init__(self, folder: str, min_free: int) -> None:
        self.folder, self.min_free = folder, min_free
        self._low = False

    def space_for_one(self) -> bool:
        free = shutil.disk_usage(self.folder).free
        if free >= self.min_free:
            self._low = False
            return True
        if not self._low:
            self._low = True
            LOG.error(
                "temporary folder low on space; refusing instances",
                extra={
                    "fields": {
                        "event": "disk-low",
                        "freeBytes": free,
                        "minimumBytes": self.min_free,
                    }
                },
            )
        return False


class ScpDIMSE(DIMSEServiceProvider):
    """DIMSE provider of one association: owns its temporary files, waits on its queue."""

    def __init__(self, assoc: Association, disk: DiskGuard) -> None:
        super().__init__(assoc)
        self.disk = disk
        self.parts: set[PartFile] = set()  # every file this association created and holds
        self._served: Any = None  # last request handed to the reactor

    def new_part(self) -> PartFile:
        """A file for the dataset being received, held until discarded."""
        part = PartFile(self.disk.folder)
        self.parts.add(part)
        return part

    def forget(self, part: PartFile) -> None:
        """Remove part (if the store did not take it already)."""
        self.parts.discard(part)
        part.discard()

    def receive_primitive(self, primitive: P_DATA) -> None:
        if self.message is None:
            self.message = ScpMessage()
        super().receive_primitive(primitive)

    def get_msg(self, block: bool = False) -> tuple[Any, Any]:
        """As stock; non-blocking calls (the reactor's) wait up to IDLE_WAIT for a message or a
        DUL indication. The previous request is done by then: its file goes if still there."""
        self._discard_served()
        if not block:
            with self.msg_queue.not_empty:
                if not self.msg_queue._qsize() and self.assoc.dul.to_user_queue.empty():
                    self.msg_queue.not_empty.wait(IDLE_WAIT)
        context_id, msg = super().get_msg(block)
        self._served = msg
        return context_id, msg

    def _discard_served(self) -> None:
        served, self._served = self._served, None
        part = getattr(served, "_dataset_file", None)
        if isinstance(part, PartFile):
            self.forget(part)

    def discard_all(self) -> None:
        """The association ended: remove every temporary file it still holds (served, queued,
        being received, or orphaned by a peer's malformed message sequence)."""
        self._discard_served()
        with contextlib.suppress(queue.Empty):
            while True:
                self.msg_queue.get_nowait()
        for part in list(self.parts):
            self.forget(part)

    def wake(self) -> None:
        with self.msg_queue.not_empty:
            self.msg_queue.not_empty.notify_all()

    def send_msg(self, primitive: Any, context_id: int) -> None:
        if (
            isinstance(primitive, C_STORE)
            and primitive.MessageIDBeingRespondedTo is not None
            and primitive.Status is not None
            and primitive.ErrorComment is None
            and primitive.OffendingElement is None
            and not self.assoc.get_handlers(evt.EVT_DIMSE_SENT)
        ):
            command = encode_store_rsp(
                primitive.MessageIDBeingRespondedTo,
                primitive.Status,
                primitive.AffectedSOPClassUID or "",
                primitive.AffectedSOPInstanceUID or "",
            )
            if not self.maximum_pdu_size or len(command) + 7 <= self.maximum_pdu_size:
                cast(ScpDUL, self.dul).send_command(context_id, command)
                return
        super().send_msg(primitive, context_id)


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


class _UserQueue(queue.Queue):
    """The DUL's indications for its association (release, abort, None when the DUL ends); a
    put also wakes the association's reactor."""

    def __init__(self, dimse: ScpDIMSE) -> None:
        super().__init__()
        self._dimse = dimse

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._dimse.wake()


class ScpDUL(DULServiceProvider):
    """DUL of one association: no polling sleep (its socket's `ready` waits), wakes on sends,
    and ends its association at once when the connection goes before associating."""

    def __init__(self, assoc: Association, dimse: ScpDIMSE) -> None:
        super().__init__(assoc)
        self.waker = _Waker()
        self.to_user_queue = _UserQueue(dimse)
        self._run_loop_delay = 0  # ScpSocket.ready does the waiting

    def run_reactor(self) -> None:
        try:
            super().run_reactor()
        finally:
            self.waker.close()
            # None is what the association's wait for an A-ASSOCIATE-RQ returns on timeout,
            # so a connection that closed before associating ends its thread now.
            self.to_user_queue.put(None)

    def send_pdu(self, primitive: Any) -> None:
        super().send_pdu(primitive)
        self.waker.signal()

    def send_command(self, context_id: int, command: bytes) -> None:
        """Send a one-PDV command (a C-STORE-RSP) from the association's own thread.

        In Sta6 a P-DATA request is only ever sent as is (DT-1, no state change), so when nothing
        waits in the DUL's queue (order is kept) and no handler wants EVT_PDU_SENT, the PDU goes
        straight to the socket, saving the DUL thread's wake-up per instance; otherwise it goes
        through the DUL as usual."""
        if (
            self.state_machine.current_state != "Sta6"
            or not self.to_provider_queue.empty()
            or self.assoc.get_handlers(evt.EVT_PDU_SENT)
        ):
            pdata = P_DATA()
            pdata.presentation_data_value_list.append((context_id, b"\x03" + command))
            self.send_pdu(pdata)
            return
        cast(ScpSocket, self.socket).send(p_data_tf(context_id, b"\x03" + command))

    def kill_dul(self) -> None:
        super().kill_dul()
        self.waker.signal()

    def stop_dul(self) -> bool:
        if self.state_machine.current_state != "Sta1":
            return False
        self.kill_dul()
        if threading.current_thread() is not self:
            self.join()
        return True


class ScpSocket(AssociationSocket):
    """The association's socket: bounded PDU reads, and `ready` that waits for data."""

    def __init__(self, assoc: Association, client_socket: Any, max_pdu: int) -> None:
        super().__init__(assoc, client_socket=client_socket)
        self.max_pdu = max_pdu
        self._header: tuple[int, int] | None = None
        self._send_lock = threading.Lock()

    @property
    def ready(self) -> bool:
        sock = self.socket
        if sock is None or not self._is_connected:
            return False
        if isinstance(sock, ssl.SSLSocket) and sock.pending():  # decrypted bytes in OpenSSL
            return True
        dul = cast(ScpDUL, self.assoc.dul)
        waker = dul.waker.fd
        busy = (
            waker is None
            or dul._kill_thread
            or not dul.to_provider_queue.empty()
            or not dul.event_queue.empty()
        )
        try:
            waiting = [sock] if waker is None else [sock, waker]
            readable, _, _ = select.select(waiting, [], [], 0 if busy else IDLE_WAIT)
        except (OSError, ValueError):
            self.event_queue.put("Evt17")  # transport connection closed
            return False
        if waker is not None and waker in readable:
            dul.waker.drain()
        return sock in readable

    def send(self, bytestream: bytes) -> None:
        """Whole PDUs, whichever thread sends them (the DUL, or ScpDUL.send_command)."""
        with self._send_lock:
            super().send(bytestream)

    def recv(self, nr_bytes: int) -> bytearray:
        """The DUL reads a PDU as recv(6), then recv(length): refuse an oversized body."""
        header, self._header = self._header, None
        if header is not None and nr_bytes == header[1]:
            limit = self.max_pdu if header[0] == P_DATA_TF else MAX_CONTROL_PDU
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
        data = super().recv(nr_bytes)
        if nr_bytes == PDU_HEADER and len(data) == PDU_HEADER:
            pdu_type, _, length = struct.unpack(">BBL", data)
            self._header = (pdu_type, length)
        return data


class ScpAssociation(Association):
    """An association of our server: event-driven reactor; its temporary files go with it."""

    dimse: ScpDIMSE
    dul: ScpDUL

    def _run_reactor(self) -> None:
        """pynetdicom's acceptor loop (see the contract test) without its 1 ms sleep: waiting
        happens in ScpDIMSE.get_msg, which any message or DUL indication ends. When it ends,
        so do the association's temporary files."""
        self._is_paused = False
        try:
            while not self._kill:
                self._is_paused = True
                self._reactor_checkpoint.wait()
                self._is_paused = False
                context_id, msg = self.dimse.get_msg(block=False)
                if msg:
                    self._serve_request(msg, cast(int, context_id))
                if self._peer_ended():
                    return
        finally:
            self.dimse.discard_all()

    def _peer_ended(self) -> bool:
        """Release, abort, a dead DUL or the network timeout: handled as pynetdicom does."""
        if self.is_established and self.acse.is_release_requested():
            self.acse.send_release(is_response=True)
            self.is_released = True
            self.is_established = False
            evt.trigger(self, evt.EVT_RELEASED, {})
            self.kill()
            return True
        if self.acse.is_aborted():
            self.dul.receive_pdu(wait=False)  # so EVT_ACSE_RECV fires
            self.is_aborted = True
            self.is_established = False
            evt.trigger(self, evt.EVT_ABORTED, {})
            self.kill()
            return True
        if not self.dul.is_alive():
            self.kill()
            return True
        if self.dul.idle_timer_expired():
            LOG.warning("network timeout", extra={"fields": {"event": "network-timeout"}})
            self.abort()
            self.kill()
            return True
        return False


class ScpRequestHandler(RequestHandler):
    """pynetdicom's request handler, giving each association our classes (before it starts)."""

    def _create_association(self) -> Association:
        assoc = super()._create_association()
        server = self.server
        dimse = ScpDIMSE(assoc, server.disk)  # type: ignore[attr-defined]
        assoc.dimse = dimse
        assoc.dul = ScpDUL(assoc, dimse)
        assoc.dul.socket = ScpSocket(assoc, self.request, self.ae.maximum_pdu_size)
        # The timeout setters configure the DUL's ARTIM and idle timers: apply them to ours.
        assoc.acse_timeout = assoc.acse_timeout
        assoc.network_timeout = assoc.network_timeout
        assoc.__class__ = ScpAssociation
        return assoc
