"""Contract tests for the pynetdicom behaviour scp/qr/service.py and the permission gate of
scp/services.py rely on, run with pynetdicom alone on loopback: a C-MOVE handler's
(host, port, kwargs) reaches AE.associate (our contexts and TLS), a Pending data set without a
SOP Class UID is a failed sub-operation listed at the end, a C-MOVE handler failing before its
destination is answered 0xC514, C-CANCEL is seen by a C-FIND generator, and a C-GET requestor
may be SCP of a storage class we accept with scp_role. For the transfer syntaxes of
sub-operations (scp/qr/syntaxes.py): EVT_ACCEPTED bound in the kwargs captures the
sub-association and what it accepted, a compressed data set goes on its own syntax's context
and an uncompressed one is converted, a C-STORE the destination aborted on is seen unanswered
(EVT_DIMSE_SENT/RECV), a C-GET requestor's SCP-role contexts are ours to send on (and
Association.bind counts its C-STOREs), and C-CANCEL mid-move ends with Cancel and counts.
Our outgoing connections get TCP_NODELAY through EVT_CONN_OPEN (scp/outgoing.py).
When pynetdicom moves, these fail first."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pynetdicom
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLosslessSV1,
    RLELossless,
)
from pynetdicom import AE, build_context, build_role, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from scp.outgoing import OUTGOING_HANDLERS
from scp.qr.peer import StorePeer
from scp.qr.service import REFUSED_MOVE
from scp.qr.syntaxes import EXPLICIT_LE, IMPLICIT_LE, accepted_syntaxes
from tests.support.dicom_files import make_dataset, uid, write_encapsulated
from tests.support.net import free_port

WRITTEN_FOR = "3.0.4"
IDENTIFIER = Dataset()
IDENTIFIER.QueryRetrieveLevel = "STUDY"
IDENTIFIER.StudyInstanceUID = "1.2.3"


def test_written_for_this_pynetdicom() -> None:
    assert pynetdicom.__version__ == WRITTEN_FOR, "re-check every contract below, then the pin"


def _instance(n: int) -> Dataset:
    ds = make_dataset(study="1.2.3", series="1.2.3.4", sop=uid("contract", n), rows=4, columns=4)
    ds.file_meta = Dataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


@pytest.fixture
def servers() -> Iterator[dict[str, Any]]:
    """Our side (Q/R SCP) and a storage SCP as the Move Destination; what each saw."""
    seen: dict[str, Any] = {"stored": [], "cancelled": None}
    dest_port, our_port = free_port(), free_port()

    def on_store(event: evt.Event) -> int:
        seen["stored"].append(event.dataset.SOPInstanceUID)
        seen["dest_contexts"] = [
            (cx.abstract_syntax, cx.transfer_syntax[0]) for cx in event.assoc.accepted_contexts
        ]
        return 0x0000

    dest = AE(ae_title="DEST")
    dest.add_supported_context(CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    dest_server = dest.start_server(
        ("127.0.0.1", dest_port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )

    def on_move(event: evt.Event) -> Iterator[Any]:
        if str(event.move_destination).strip() == "REFUSE":
            raise PermissionError("not authorised")
        contexts = [build_context(CTImageStorage, [EXPLICIT_LE, IMPLICIT_LE])]
        yield "127.0.0.1", dest_port, {"contexts": contexts, "tls_args": None}
        yield 2
        yield 0xFF00, _instance(1)
        failed = Dataset()
        failed.SOPInstanceUID = uid("contract", "gone")
        yield 0xFF00, failed

    def on_find(event: evt.Event) -> Iterator[Any]:
        for n in range(50):
            if event.is_cancelled:
                seen["cancelled"] = n
                yield 0xFE00, None
                return
            time.sleep(0.02)  # a search's pace, so the cancel arrives mid-way
            yield 0xFF00, IDENTIFIER

    def on_get(event: evt.Event) -> Iterator[Any]:
        yield 1
        yield 0xFF00, _instance(2)

    ours = AE(ae_title="OURS")
    for model in (StudyRootQueryRetrieveInformationModelFind,
                  StudyRootQueryRetrieveInformationModelMove,
                  StudyRootQueryRetrieveInformationModelGet):  # fmt: skip
        ours.add_supported_context(model)
    ours.add_supported_context(CTImageStorage, scu_role=True, scp_role=True)
    handlers = [(evt.EVT_C_MOVE, on_move), (evt.EVT_C_FIND, on_find), (evt.EVT_C_GET, on_get)]
    our_server = ours.start_server(("127.0.0.1", our_port), block=False, evt_handlers=handlers)
    seen["port"], seen["dest_port"] = our_port, dest_port
    yield seen
    our_server.shutdown()
    dest_server.shutdown()


def _scu() -> AE:
    scu = AE(ae_title="WS1")
    for model in (StudyRootQueryRetrieveInformationModelFind,
                  StudyRootQueryRetrieveInformationModelMove,
                  StudyRootQueryRetrieveInformationModelGet):  # fmt: skip
        scu.add_requested_context(model)
    scu.add_requested_context(CTImageStorage)
    return scu


def test_move_kwargs_reach_associate_and_a_data_set_without_sop_class_fails(servers) -> None:
    assoc = _scu().associate("127.0.0.1", servers["port"], ae_title="OURS")
    responses = list(
        assoc.send_c_move(IDENTIFIER, "DEST", StudyRootQueryRetrieveInformationModelMove)
    )
    assoc.release()
    final, identifier = responses[-1]
    assert final.Status == 0xB000
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (1, 1)
    assert identifier.FailedSOPInstanceUIDList == uid("contract", "gone")
    assert servers["stored"] == [uid("contract", 1)]
    assert servers["dest_contexts"] == [(CTImageStorage, EXPLICIT_LE)]  # our contexts, not the AE's


def test_a_move_handler_failing_before_its_destination_is_0xC514(servers) -> None:
    assoc = _scu().associate("127.0.0.1", servers["port"], ae_title="OURS")
    responses = list(
        assoc.send_c_move(IDENTIFIER, "REFUSE", StudyRootQueryRetrieveInformationModelMove)
    )
    assoc.release()
    assert [r[0].Status for r in responses] == [REFUSED_MOVE]


def test_cancel_is_seen_by_a_find_generator(servers) -> None:
    assoc = _scu().associate("127.0.0.1", servers["port"], ae_title="OURS")
    statuses = []
    for status, _ in assoc.send_c_find(
        IDENTIFIER, StudyRootQueryRetrieveInformationModelFind, msg_id=7
    ):
        statuses.append(status.Status)
        if len(statuses) == 2:
            assoc.send_c_cancel(7, query_model=StudyRootQueryRetrieveInformationModelFind)
    assoc.release()
    assert statuses[-1] == 0xFE00 and servers["cancelled"] is not None
    assert len(statuses) < 50


def test_a_get_requestor_may_be_scp_of_a_storage_class_we_accept_with_scp_role(servers) -> None:
    got = []

    def on_store(event: evt.Event) -> int:
        got.append(event.dataset.SOPInstanceUID)
        return 0x0000

    scu = _scu()
    role = build_role(CTImageStorage, scp_role=True)
    assoc = scu.associate(
        "127.0.0.1", servers["port"], ae_title="OURS", ext_neg=[role],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )  # fmt: skip
    responses = list(assoc.send_c_get(IDENTIFIER, StudyRootQueryRetrieveInformationModelGet))
    assoc.release()
    assert responses[-1][0].Status == 0x0000
    assert got == [uid("contract", 2)]


def _rle_instance(n: int, tmp: Path) -> Dataset:
    ds = make_dataset(study="1.2.3", series="1.2.3.5", sop=uid("rle", n), rows=4, columns=4)
    return dcmread(write_encapsulated(ds, tmp / f"rle-{n}.dcm", RLELossless))


@pytest.fixture
def destination() -> Iterator[dict[str, Any]]:
    """A Move Destination accepting CT in RLE Lossless or Implicit VR Little Endian only, which
    aborts the association on receiving the SOP Instance UID named `abort_on`."""
    seen: dict[str, Any] = {"stored": [], "abort_on": None, "port": free_port()}

    def on_store(event: evt.Event) -> int:
        sop = event.dataset.SOPInstanceUID
        if sop == seen["abort_on"]:
            event.assoc.abort()
            return 0x0000
        seen["stored"].append((sop, event.context.transfer_syntax, event.dataset.PixelData))
        return 0x0000

    dest = AE(ae_title="DEST")
    dest.add_supported_context(CTImageStorage, [RLELossless, ImplicitVRLittleEndian])
    server = dest.start_server(
        ("127.0.0.1", seen["port"]), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    yield seen
    server.shutdown()


@contextmanager
def _moving_to(handler: Any) -> Iterator[Any]:
    """A pynetdicom SCU's association to a server whose EVT_C_MOVE is `handler`; released and
    the server shut down at the end."""
    port = free_port()
    ours = AE(ae_title="OURS")
    ours.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
    server = ours.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_MOVE, handler)]
    )
    try:
        assoc = _scu().associate("127.0.0.1", port, ae_title="OURS")
        yield assoc
        assoc.release()
    finally:
        server.shutdown()


def _move_with(handler: Any) -> list[tuple[Dataset, Dataset | None]]:
    """A C-MOVE to DEST answered by `handler`, from a pynetdicom SCU."""
    with _moving_to(handler) as assoc:
        return list(
            assoc.send_c_move(IDENTIFIER, "DEST", StudyRootQueryRetrieveInformationModelMove)
        )


def test_evt_handlers_in_move_kwargs_see_the_accepted_sub_association(destination, tmp_path):
    """EVT_ACCEPTED bound through the kwargs fires on the sub-operations' association before
    the generator is resumed after the count; its accepted contexts say which syntax each
    context got (our SCU role); a compressed data set goes on the context of its own syntax
    and an Explicit VR one is sent on the Implicit VR context (allow_conversion)."""
    seen: dict[str, Any] = {}
    rle = _rle_instance(1, tmp_path)

    def on_move(event: evt.Event) -> Iterator[Any]:
        opened: list[Any] = []
        contexts = [
            build_context(CTImageStorage, [EXPLICIT_LE, IMPLICIT_LE]),
            build_context(CTImageStorage, [RLELossless]),
            build_context(CTImageStorage, [JPEGLosslessSV1]),
        ]
        handlers = [(evt.EVT_ACCEPTED, lambda e: opened.append(e.assoc))]
        yield "127.0.0.1", destination["port"], {"contexts": contexts, "evt_handlers": handlers}
        yield 2
        seen["established"] = [a.is_established for a in opened]
        seen["accepted"] = accepted_syntaxes(opened[0].accepted_contexts)
        yield 0xFF00, rle
        yield 0xFF00, _instance(3)

    final, _ = _move_with(on_move)[-1]
    assert final.Status == 0x0000
    assert seen["established"] == [True]
    assert seen["accepted"] == {CTImageStorage: frozenset({IMPLICIT_LE, RLELossless})}
    stored = {sop: (syntax, pixels) for sop, syntax, pixels in destination["stored"]}
    assert stored[uid("rle", 1)] == (RLELossless, rle.PixelData)  # byte for byte
    assert stored[uid("contract", 3)][0] == ImplicitVRLittleEndian


def test_a_c_store_the_destination_aborted_on_is_seen_unanswered_at_once(destination):
    """The destination aborts on the second instance: that C-STORE fails, and when the
    generator resumes, EVT_DIMSE_SENT/RECV (bound in the kwargs, StorePeer) already show a
    request without response, while is_established may still say True (pynetdicom's reactor
    catches up moments later; another C-STORE then would wait DIMSE_TIMEOUT). The data sets
    without SOP Class yielded for the rest are failed sub-operations: final 0xB000, counts and
    the Failed SOP Instance UID List."""
    destination["abort_on"] = uid("contract", 2)
    seen: dict[str, Any] = {}

    def on_move(event: evt.Event) -> Iterator[Any]:
        peer = StorePeer()
        contexts = [build_context(CTImageStorage, [EXPLICIT_LE, IMPLICIT_LE])]
        kwargs = {"contexts": contexts, "evt_handlers": peer.handlers()}
        yield "127.0.0.1", destination["port"], kwargs
        yield 4
        yield 0xFF00, _instance(1)
        seen["after_one"] = (peer.requests, peer.responses, peer.gone)
        yield 0xFF00, _instance(2)
        seen["after_two"] = (peer.requests, peer.responses, peer.gone)
        for n in (3, 4):
            unsent = Dataset()
            unsent.SOPInstanceUID = uid("contract", n)
            yield 0xFF00, unsent

    final, identifier = _move_with(on_move)[-1]
    assert seen["after_one"] == (1, 1, False)
    assert seen["after_two"] == (2, 1, True)
    assert final.Status == 0xB000
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (1, 3)
    assert list(identifier.FailedSOPInstanceUIDList) == [uid("contract", n) for n in (2, 3, 4)]


def test_a_get_requestors_compressed_scp_role_context_is_ours_to_send_on(tmp_path) -> None:
    """C-GET: the calling association's accepted storage contexts with the requestor as SCP
    are ours as SCU (as_scu), per transfer syntax, and an RLE data set goes on the RLE one."""
    port, seen, got = free_port(), {}, []
    rle = _rle_instance(2, tmp_path)

    def on_get(event: evt.Event) -> Iterator[Any]:
        seen["accepted"] = accepted_syntaxes(event.assoc.accepted_contexts)
        with StorePeer(event.assoc).watching() as peer:  # Association.bind on the calling one
            yield 1
            yield 0xFF00, rle
            seen["counted"] = (peer.requests, peer.responses, peer.gone)

    ours = AE(ae_title="OURS")
    ours.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
    ours.add_supported_context(
        CTImageStorage, [ExplicitVRLittleEndian, RLELossless], scu_role=True, scp_role=True
    )
    server = ours.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_GET, on_get)]
    )

    def on_store(event: evt.Event) -> int:
        got.append((event.context.transfer_syntax, event.dataset.PixelData))
        return 0x0000

    scu = AE(ae_title="WS1")
    scu.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    scu.add_requested_context(CTImageStorage, [RLELossless])
    scu.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian])
    try:
        assoc = scu.associate(
            "127.0.0.1", port, ae_title="OURS",
            ext_neg=[build_role(CTImageStorage, scp_role=True)],
            evt_handlers=[(evt.EVT_C_STORE, on_store)],
        )  # fmt: skip
        responses = list(assoc.send_c_get(IDENTIFIER, StudyRootQueryRetrieveInformationModelGet))
        assoc.release()
    finally:
        server.shutdown()
    assert responses[-1][0].Status == 0x0000
    assert seen["accepted"] == {CTImageStorage: frozenset({ExplicitVRLittleEndian, RLELossless})}
    assert got == [(RLELossless, rle.PixelData)]
    assert seen["counted"] == (1, 1, False)


def test_cancel_mid_move_ends_with_cancel_and_the_remaining_count(servers) -> None:
    """A C-MOVE generator sees C-CANCEL (is_cancelled) between sub-operations; yielding Cancel
    ends the move with 0xFE00 and the remaining, completed and failed counts."""
    seen = {}

    def on_move(event: evt.Event) -> Iterator[Any]:
        contexts = [build_context(CTImageStorage, [EXPLICIT_LE, IMPLICIT_LE])]
        yield "127.0.0.1", servers["dest_port"], {"contexts": contexts}
        yield 40
        for n in range(40):
            if event.is_cancelled:
                seen["cancelled_at"] = n
                yield 0xFE00, None
                return
            time.sleep(0.02)
            yield 0xFF00, _instance(100 + n)

    responses = []
    with _moving_to(on_move) as assoc:
        for status, identifier in assoc.send_c_move(
            IDENTIFIER, "DEST", StudyRootQueryRetrieveInformationModelMove, msg_id=9
        ):
            responses.append((status, identifier))
            if len(responses) == 3:
                assoc.send_c_cancel(9, query_model=StudyRootQueryRetrieveInformationModelMove)
    final, _ = responses[-1]
    assert final.Status == 0xFE00
    done = final.NumberOfCompletedSuboperations
    assert done == seen["cancelled_at"] and 3 <= done < 40
    assert final.NumberOfRemainingSuboperations == 40 - done


def test_our_outgoing_connections_do_without_nagle(servers) -> None:
    """EVT_CONN_OPEN in AE.associate's evt_handlers (scp/outgoing.OUTGOING_HANDLERS, passed for
    C-MOVE sub-operations and storage-commitment reports) fires on a requestor's connection,
    whose socket then has TCP_NODELAY (pynetdicom leaves it off)."""

    def no_delay(assoc: Any) -> int:
        return assoc.dul.socket.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    ae = AE(ae_title="REQ")
    ae.add_requested_context(CTImageStorage)
    plain = ae.associate("127.0.0.1", servers["dest_port"], ae_title="DEST")
    ours = ae.associate(
        "127.0.0.1", servers["dest_port"], ae_title="DEST", evt_handlers=OUTGOING_HANDLERS
    )
    try:
        assert plain.is_established and ours.is_established
        assert (no_delay(plain), bool(no_delay(ours))) == (0, True)
    finally:
        plain.release()
        ours.release()
