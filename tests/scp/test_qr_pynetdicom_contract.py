"""Contract tests for the pynetdicom behaviour scp/qr/service.py and the permission gate of
scp/services.py rely on, run with pynetdicom alone on loopback: a C-MOVE handler's
(host, port, kwargs) reaches AE.associate (our contexts and TLS), a Pending data set without a
SOP Class UID is a failed sub-operation listed at the end, a C-MOVE handler failing before its
destination is answered 0xC514, C-CANCEL is seen by a C-FIND generator, and a C-GET requestor
may be SCP of a storage class we accept with scp_role. When pynetdicom moves, these fail first."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pynetdicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_context, build_role, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from scp.qr.service import EXPLICIT_LE, IMPLICIT_LE, REFUSED_MOVE
from tests.support.dicom_files import make_dataset, uid
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
    seen["port"] = our_port
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
