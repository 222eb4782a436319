"""Malformed inputs for a Store SCP, generated from a seed so a failure can be replayed.

Each case is the bytes one connection sends, in two parts when it associates first: the rest
goes once the association is accepted, so its messages reach the SCP's decoder. Cases that must
end in a C-STORE response (a dataset that does not parse, a SOP class that contradicts its
context) end with an A-RELEASE-RQ so the test can read that response; none of the cases carries
an instance that should be stored.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from tests.reliability.instances import Instance
from tests.support import wire

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
VERIFICATION = "1.2.840.10008.1.1"
ROWS_TAG = b"\x28\x00\x10\x00"


@dataclass(frozen=True)
class Case:
    kind: str
    payload: bytes
    expects_refusal: bool = False  # a C-STORE-RSP, if one comes, must not be success
    # Sent once the A-ASSOCIATE-AC came back: messages sent before it would be a protocol
    # error the SCP aborts on (P-DATA in Sta3), so they would never reach its decoder.
    after_accept: bytes = b""


def _associate(instance: Instance) -> bytes:
    return wire.associate_rq([(1, instance.sop_class, [wire.EXPLICIT_LE])])


def _command(instance: Instance, sop_class: str | None = None) -> bytes:
    rq = wire.c_store_rq(1, sop_class or instance.sop_class, instance.sop_uid)
    return wire.p_data(wire.pdv(1, rq, True, True))


def _release() -> bytes:
    return wire.pdu(wire.A_RELEASE_RQ, b"\0" * 4)


def random_bytes(rng: random.Random, instance: Instance) -> Case:
    return Case("random bytes", rng.randbytes(rng.randint(1, 4096)))


def huge_length(rng: random.Random, instance: Instance) -> Case:
    length = rng.choice([0xFFFFFFFF, 0xFFFFFFFA, 1 << 31, rng.randint(1 << 20, 0xFFFFFFFF)])
    kind = rng.choice([1, 2, 3, 4, 5, 6, 7, rng.randint(8, 255)])
    prefix = _associate(instance) if kind == wire.P_DATA_TF and rng.random() < 0.5 else b""
    return Case("PDU length up to 4 GiB", prefix + wire.pdu(kind, rng.randbytes(64), length))


def mutated_associate(rng: random.Random, instance: Instance) -> Case:
    rq = bytearray(_associate(instance))
    for _ in range(rng.randint(1, 8)):
        rq[rng.randrange(len(rq))] = rng.randrange(256)
    if rng.random() < 0.3:
        rq = rq[: rng.randrange(1, len(rq))]
    return Case("mutated A-ASSOCIATE-RQ", bytes(rq))


def truncated_p_data(rng: random.Random, instance: Instance) -> Case:
    data = wire.p_data(wire.pdv(1, instance.dataset, False, True))
    cut = rng.randrange(1, len(data))
    messages = _command(instance) + data[:cut]
    return Case("truncated P-DATA", _associate(instance), after_accept=messages)


def out_of_order(rng: random.Random, instance: Instance) -> Case:
    half = len(instance.dataset) // 2
    first = wire.p_data(wire.pdv(1, instance.dataset[:half], False, False))
    last = wire.p_data(wire.pdv(1, instance.dataset[half:], False, True))
    command = _command(instance)
    rq = wire.c_store_rq(1, instance.sop_class, instance.sop_uid)
    unfinished = wire.p_data(wire.pdv(1, rq, True, False))  # command without its last fragment
    stock_rq = wire.c_store_rq(1, instance.sop_class, instance.sop_uid, b"FUZZ")
    stock = wire.p_data(wire.pdv(1, stock_rq, True, True))  # for pynetdicom's stock decoder
    echo_rq = wire.command_announcing_a_dataset(0x0030, VERIFICATION)
    echo = wire.p_data(wire.pdv(1, echo_rq, True, True))
    find_rq = wire.command_announcing_a_dataset(0x0020, instance.sop_class)
    find = wire.p_data(wire.pdv(1, find_rq, True, True))
    orders = [
        [last, command, first],  # dataset before its command, fragments reversed
        [first, last, command],  # dataset before its command
        [command, last, first],  # last fragment first
        [unfinished, last],  # dataset while the command is unfinished
        [command, wire.p_data(wire.pdv(3, instance.dataset, False, True))],  # unknown context
        [command, command, first],  # a second command while the first's dataset is unfinished
        [command, command, first, last],
        [stock, first],  # the stock decoder's C-STORE-RQ, dataset unfinished
        [echo, command, first],  # a C-ECHO announcing a dataset, then a C-STORE-RQ
        [echo, stock, first, last],
        [find, command, last],  # a C-FIND announcing a dataset, then a C-STORE-RQ
    ]
    order = b"".join(rng.choice(orders))
    return Case("fragments out of order", _associate(instance), after_accept=order)


LONG_VRS = {vr.encode() for vr in EXPLICIT_VR_LENGTH_32}  # VRs with a 4-byte length


def element_bounds(dataset: bytes) -> list[tuple[int, int]]:
    """(start, end) of each top-level element of an Explicit VR Little Endian dataset."""
    bounds, offset = [], 0
    while offset < len(dataset):
        vr = dataset[offset + 4 : offset + 6]
        if vr in LONG_VRS:
            end = offset + 12 + struct.unpack("<I", dataset[offset + 8 : offset + 12])[0]
        else:
            end = offset + 8 + struct.unpack("<H", dataset[offset + 6 : offset + 8])[0]
        bounds.append((offset, end))
        offset = end
    return bounds


def _broken_dataset(rng: random.Random, dataset: bytes) -> bytes:
    choice = rng.randrange(3)
    if choice == 0:  # cut strictly inside an element: a header or a length that lies
        start, end = rng.choice(element_bounds(dataset))
        return dataset[: rng.randrange(start + 1, end)]
    if choice == 1:  # Rows claims more pixels than the pixel data holds
        rows = dataset.index(ROWS_TAG) + 8
        return dataset[:rows] + struct.pack("<H", 4096) + dataset[rows + 2 :]
    return rng.randbytes(rng.randint(9, 512))  # not a dataset at all


def unparsable_dataset(rng: random.Random, instance: Instance) -> Case:
    data = wire.p_data(wire.pdv(1, _broken_dataset(rng, instance.dataset), False, True))
    messages = _command(instance) + data + _release()
    return Case("dataset that does not parse", _associate(instance), True, messages)


def contradicting_sop_class(rng: random.Random, instance: Instance) -> Case:
    data = wire.p_data(wire.pdv(1, instance.dataset, False, True))
    messages = _command(instance, CT_IMAGE) + data + _release()
    return Case("SOP class contradicts its context", _associate(instance), True, messages)


def junk_after_associate(rng: random.Random, instance: Instance) -> Case:
    junk = wire.pdu(rng.choice([0, 8, 9, 0x7F, 0xFF, 2, 3]), rng.randbytes(rng.randint(0, 64)))
    return Case("unexpected PDU type", _associate(instance), after_accept=junk)


GENERATORS: list[Callable[[random.Random, Instance], Case]] = [
    random_bytes,
    huge_length,
    mutated_associate,
    truncated_p_data,
    out_of_order,
    unparsable_dataset,
    contradicting_sop_class,
    junk_after_associate,
]


def cases(seed: int, count: int, make: Callable[[int], Instance]) -> Iterator[Case]:
    """`count` cases, cycling through every kind; `make(i)` gives case i an instance to bend."""
    rng = random.Random(seed)
    for i in range(count):
        yield GENERATORS[i % len(GENERATORS)](rng, make(i))
