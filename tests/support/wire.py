"""DICOM upper-layer PDUs built by hand, for peers that misbehave on purpose (PS3.8 section 9.3).

Only what the reliability tests need: associate, C-STORE over P-DATA, release, and the parts of
each that fuzzing bends. Commands are Implicit VR Little Endian, as PS3.7 requires.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLEMENTATION_UID = "1.2.826.0.1.3680043.10.1087.9"

A_ASSOCIATE_RQ, A_ASSOCIATE_AC, A_ASSOCIATE_RJ = 0x01, 0x02, 0x03
P_DATA_TF, A_RELEASE_RQ, A_RELEASE_RP, A_ABORT = 0x04, 0x05, 0x06, 0x07


class WireError(Exception):
    """The peer sent something other than what the test expected."""


def uid_value(value: str) -> bytes:
    """A UI value: ASCII, padded with a NUL to an even length."""
    raw = value.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def pdu(kind: int, body: bytes, length: int | None = None) -> bytes:
    """A PDU of `kind`; `length` overrides the true body length (to lie about it)."""
    return struct.pack(">BBI", kind, 0, len(body) if length is None else length) + body


def _item(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(body)) + body


def associate_rq(
    contexts: list[tuple[int, str, list[str]]],
    called: str = "STORESCP",
    calling: str = "RELIABILITY",
    max_pdu: int = 0,
) -> bytes:
    """A-ASSOCIATE-RQ proposing `contexts` as (id, abstract syntax, transfer syntaxes)."""
    items = _item(0x10, APPLICATION_CONTEXT.encode())
    for context_id, abstract, syntaxes in contexts:
        sub = _item(0x30, abstract.encode()) + b"".join(_item(0x40, ts.encode()) for ts in syntaxes)
        items += _item(0x20, struct.pack(">BBBB", context_id, 0, 0, 0) + sub)
    user = _item(0x51, struct.pack(">I", max_pdu)) + _item(0x52, IMPLEMENTATION_UID.encode())
    items += _item(0x50, user)
    header = struct.pack(">H2x16s16s32x", 1, called.ljust(16).encode(), calling.ljust(16).encode())
    return pdu(A_ASSOCIATE_RQ, header + items)


def element(group: int, elem: int, value: bytes) -> bytes:
    """One Implicit VR Little Endian data element."""
    return struct.pack("<HHI", group, elem, len(value)) + value


def command_set(fields: list[tuple[int, bytes]]) -> bytes:
    """A command set (group 0000) from (element, value) pairs, with its group length first."""
    body = b"".join(element(0, elem, value) for elem, value in fields)
    return element(0, 0x0000, struct.pack("<I", len(body))) + body


def c_store_rq(
    message_id: int, sop_class: str, sop_instance: str, comment: bytes | None = None
) -> bytes:
    """The command set of a C-STORE-RQ that announces a dataset; with `comment`, an Error
    Comment (0000,0902) too: valid DIMSE that a receiver's fast path may leave to pynetdicom's
    stock decoder."""
    fields = [
        (0x0002, uid_value(sop_class)),
        (0x0100, struct.pack("<H", 0x0001)),
        (0x0110, struct.pack("<H", message_id)),
        (0x0700, struct.pack("<H", 0)),
        (0x0800, struct.pack("<H", 0x0000)),
        (0x1000, uid_value(sop_instance)),
    ]
    if comment is not None:
        fields.insert(5, (0x0902, comment))
    return command_set(fields)


def pdv(context_id: int, fragment: bytes, command: bool, last: bool) -> bytes:
    """A presentation data value item: context, message control header, fragment."""
    control = (1 if command else 0) | (2 if last else 0)
    return struct.pack(">IBB", len(fragment) + 2, context_id, control) + fragment


def p_data(*pdvs: bytes) -> bytes:
    return pdu(P_DATA_TF, b"".join(pdvs))


def store_pdus(
    context_id: int, sop_class: str, sop_instance: str, dataset: bytes, max_pdu: int, msg_id: int
) -> list[bytes]:
    """The P-DATA-TF PDUs of one C-STORE-RQ: the command, then the dataset in fragments."""
    pdus = [p_data(pdv(context_id, c_store_rq(msg_id, sop_class, sop_instance), True, True))]
    size = (max_pdu or 1 << 20) - 12
    for start in range(0, len(dataset), size):
        chunk = dataset[start : start + size]
        pdus.append(p_data(pdv(context_id, chunk, False, start + size >= len(dataset))))
    return pdus


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise WireError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def read_pdu(sock: socket.socket) -> tuple[int, bytes]:
    kind, _, length = struct.unpack(">BBI", recv_exact(sock, 6))
    return kind, recv_exact(sock, length)


@dataclass
class Accepted:
    """What an A-ASSOCIATE-AC granted: accepted context ids and the peer's maximum PDU."""

    contexts: set[int] = field(default_factory=set)
    max_pdu: int = 0


def parse_accept(body: bytes) -> Accepted:
    accepted = Accepted()
    offset = 68
    while offset + 4 <= len(body):
        kind, length = body[offset], struct.unpack(">H", body[offset + 2 : offset + 4])[0]
        value = body[offset + 4 : offset + 4 + length]
        if kind == 0x21 and value[2] == 0:
            accepted.contexts.add(value[0])
        elif kind == 0x50 and value[:1] == b"\x51":
            accepted.max_pdu = struct.unpack(">I", value[4:8])[0]
        offset += 4 + length
    return accepted


def status_of(body: bytes) -> int:
    """The Status (0000,0900) of the command set in a P-DATA-TF body holding one command PDV."""
    command = body[6:]  # item length (4), context id (1), control header (1)
    offset = 0
    while offset + 8 <= len(command):
        group, elem, length = struct.unpack("<HHI", command[offset : offset + 8])
        if (group, elem) == (0, 0x0900):
            return struct.unpack("<H", command[offset + 8 : offset + 10])[0]
        offset += 8 + length
    raise WireError("no Status element in the response command set")


class RawAssociation:
    """An association driven byte by byte over a plain socket."""

    def __init__(self, port: int, contexts: list[tuple[int, str, list[str]]], timeout: float = 30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.sendall(associate_rq(contexts))
        self.kind, self.body = read_pdu(self.sock)
        self.accepted = parse_accept(self.body) if self.kind == A_ASSOCIATE_AC else Accepted()

    @property
    def rejection(self) -> tuple[int, int, int] | None:
        """(result, source, reason) of an A-ASSOCIATE-RJ, or None if not rejected."""
        if self.kind != A_ASSOCIATE_RJ:
            return None
        return self.body[1], self.body[2], self.body[3]

    def store(self, context_id: int, sop_class: str, sop_instance: str, dataset: bytes) -> int:
        """Send one C-STORE and return the status of its response."""
        for raw in store_pdus(
            context_id, sop_class, sop_instance, dataset, self.accepted.max_pdu, 1
        ):
            self.sock.sendall(raw)
        kind, body = read_pdu(self.sock)
        if kind != P_DATA_TF:
            raise WireError(f"expected a C-STORE-RSP, got PDU type {kind:#04x}")
        return status_of(body)

    def release(self) -> None:
        self.sock.sendall(pdu(A_RELEASE_RQ, b"\0" * 4))
        kind, _ = read_pdu(self.sock)
        self.sock.close()
        if kind != A_RELEASE_RP:
            raise WireError(f"expected A-RELEASE-RP, got PDU type {kind:#04x}")

    def close(self) -> None:
        self.sock.close()


def command_announcing_a_dataset(command_field: int, sop_class: str) -> bytes:
    """A command set (a C-ECHO-RQ, a C-FIND-RQ...) that announces a dataset (0000,0800 = 0)."""
    return command_set(
        [
            (0x0002, uid_value(sop_class)),
            (0x0100, struct.pack("<H", command_field)),
            (0x0110, struct.pack("<H", 1)),
            (0x0800, struct.pack("<H", 0x0000)),
        ]
    )
