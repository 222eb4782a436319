"""Contract tests for scp/association.py: each change to pynetdicom is in effect for our server's
associations only, and the pynetdicom code each relies on still reads as it did in the release
the changes were written for. When pynetdicom moves, these fail first: re-read the method named
in the failure, adapt scp/association.py, then update its pin here."""

from __future__ import annotations

import hashlib
import inspect
import logging
import socket
import struct
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pynetdicom
import pytest
from pydicom import dcmread
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_messages import C_ECHO_RQ, C_STORE_RQ, C_STORE_RSP, DIMSEMessage
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.dsutils import create_file_meta, decode, encode
from pynetdicom.dul import DULServiceProvider
from pynetdicom.fsm import DT_1
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.presentation import (
    negotiate_as_acceptor,
    negotiate_as_requestor,
    negotiate_unrestricted,
)
from pynetdicom.service_class import ServiceClass, StorageServiceClass
from pynetdicom.service_class_n import StorageCommitmentServiceClass
from pynetdicom.sop_class import CTImageStorage
from pynetdicom.transport import AssociationSocket, RequestHandler

from scp import association
from scp.association import (
    WRITTEN_FOR,
    ScpAssociation,
    encode_file_meta,
    encode_store_rsp,
    pynetdicom_supported,
)
from scp.commitment.reporter import Reporter
from scp.commitment.service import CommitmentService
from scp.commitment.transactions import FolderTransactions
from scp.server import ScpServer, build_ae, start_dicom_server
from scp.service import StoreService
from scp.services import build_services
from scp.settings import Settings, load_settings
from scp.storage import open_store
from scp.telemetry import Metrics
from tests.support import wire
from tests.support.commitment import Modality, references
from tests.support.dicom_files import make_dataset, uid, write_part10
from tests.support.net import free_port

# What scp/association.py relies on in pynetdicom 3.0.4, and a digest of its source there.
PINNED = {
    # ScpRequestHandler: builds the stock association, then gives it our DUL, DIMSE and socket
    # before it starts, and re-applies the timeouts (their setters configure the DUL's timers).
    RequestHandler._create_association: "05c8d12b79863cdb",
    Association.__init__: "eb07516b8009ad8f",
    Association.acse_timeout.fset: "f357778b5c4db7b2",
    Association.network_timeout.fset: "d1e01042128ea4a2",
    AssociationSocket.__init__: "1f0325fdef2cc353",
    DULServiceProvider.__init__: "c82dafa9438ddf70",
    # Early end: the acceptor's wait for A-ASSOCIATE-RQ returns None on timeout, then kills.
    Association.run_reactor: "ed8bbbe3b3d6ddae",
    Association.kill: "8f9713666a7f4cff",
    # Event-driven waits: ScpAssociation._run_reactor is this loop without its time.sleep;
    # the DUL loop sleeps _run_loop_delay, then asks socket.ready (ours waits there).
    Association._run_reactor: "f28838c5559e462a",
    DULServiceProvider.run_reactor: "e3a10eb3a0931e48",
    DULServiceProvider._is_transport_event: "8725ed03bb8fbdef",
    DULServiceProvider.stop_dul: "28a7e0be126e7b30",
    AssociationSocket.ready.fget: "3eb58e3d39dc076d",
    DIMSEServiceProvider.get_msg: "890e3e04283f5aeb",
    # Bounded PDUs: the DUL reads recv(6), then recv(length).
    DULServiceProvider._read_pdu_data: "19f2d4e38c13c835",
    AssociationSocket.recv: "6bc20a33b1b7cfe7",
    # Owned temporary files: a new message is DIMSEMessage() when self.message is None; the
    # class switch and the file attributes; the service closes and unlinks _dataset_file.name.
    DIMSEServiceProvider.receive_primitive: "5f99c86b14a15cef",
    DIMSEMessage.__init__: "b9c44307ebf25f19",
    DIMSEMessage.decode_msg: "f51c777e841a76be",
    DIMSEMessage.message_to_primitive: "f8f43d34e43450ef",
    StorageServiceClass.SCP: "63afca7fc6c6e7ee",
    # SharedContexts: each association deep-copies the server's contexts; negotiation as
    # acceptor only reads them, so ours share them.
    negotiate_as_acceptor: "d5413f08f0ac7b32",
    negotiate_unrestricted: "344f31fc8c738793",
    # Hand-encoded C-STORE-RSP: send_msg fires EVT_DIMSE_SENT, then encodes; sent from the
    # association's thread because DT-1 (Sta6 + P-DATA) only sends it (_send fires PDU_SENT).
    DIMSEServiceProvider.send_msg: "a839cf2fb46976d9",
    DT_1: "82e5c5d4114534fa",
    DULServiceProvider._send: "a850a7919e68484e",
    # Storage commitment (scp/commitment/): the N-ACTION handler's (status, reply) is sent by
    # _n_action_scp; the reporter sends N-EVENT-REPORT from its own thread on our acceptor
    # association (send_n_event_report pauses the reactor at its checkpoint, finds the context
    # with no role check, waits for the response on the DIMSE queue), or on an association it
    # opens proposing the SCP role (negotiate_as_requestor applies the role selection reply).
    ServiceClass._n_action_scp: "d398e1bcfe4d9db5",
    StorageCommitmentServiceClass.SCP: "be6e758c67d99a09",
    Association.send_n_event_report: "e3d427e77369680c",
    Association._get_valid_context: "117a52c2ae6720e0",
    negotiate_as_requestor: "4a0668500d9c3a2d",
}


def test_pynetdicom_is_the_release_the_changes_were_written_for() -> None:
    assert pynetdicom.__version__ == WRITTEN_FOR, (
        f"pynetdicom {pynetdicom.__version__}: re-check every pin below, then WRITTEN_FOR"
    )
    assert pynetdicom_supported()


def test_another_pynetdicom_runs_stock_associations_and_says_so(monkeypatch, caplog) -> None:
    monkeypatch.setattr(pynetdicom, "__version__", "9.9.9")
    with caplog.at_level(logging.WARNING, "scp"):
        assert not pynetdicom_supported()
    assert "running stock pynetdicom associations" in caplog.text


@pytest.mark.parametrize("function", list(PINNED), ids=lambda f: f.__qualname__)
def test_the_pynetdicom_code_we_rely_on_is_unchanged(function) -> None:
    digest = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]
    assert digest == PINNED[function], (
        f"pynetdicom's {function.__qualname__} changed: re-read it against scp/association.py"
    )


def _server(tmp_path: Path) -> tuple[ScpServer, StoreService]:
    settings = Settings(storage=str(tmp_path / "store"), port=free_port(), bind="127.0.0.1",
                        acse_timeout=30, max_pdu_size=16384, min_free_disk=0)  # fmt: skip
    store = open_store(settings.storage)
    store.prepare()
    service = StoreService(settings, store, Metrics("Test")).start()
    ae = build_ae(settings)
    return start_dicom_server(ae, settings, service, store.temp_dir), service


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ScpServer]:
    """Our DICOM server in this process (folder store), as serve() builds it."""
    srv, service = _server(tmp_path)
    yield srv
    srv.shutdown()
    service.finish_all(5)


def test_on_another_pynetdicom_the_server_stores_with_stock_associations(tmp_path, monkeypatch):
    monkeypatch.setattr(pynetdicom, "__version__", "9.9.9")
    srv, service = _server(tmp_path)
    seen: list[Association] = []
    srv.bind(evt.EVT_C_STORE, lambda e: seen.append(e.assoc) or service.on_store(e))
    try:
        assoc = _sender().associate("127.0.0.1", srv.server_address[1])
        assert assoc.send_c_store(str(_instance(tmp_path, "stock"))).Status == 0
        assoc.release()
    finally:
        srv.shutdown()
        service.finish_all(5)
    assert [type(a) for a in seen] == [Association]
    assert type(srv.contexts) is list
    assert len(list((tmp_path / "store" / "incoming").rglob("*.dcm"))) == 1


def _instance(tmp_path: Path, name: str) -> Path:
    ds = make_dataset(study=uid(name), series=uid(name, 1), sop=uid(name, "sop"))
    return write_part10(ds, tmp_path / f"{name}.dcm")


def _sender() -> AE:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage)
    ae.dimse_timeout = 5
    return ae


def test_our_associations_get_our_classes_and_others_stay_stock(server, tmp_path) -> None:
    seen: list[Association] = []
    server.bind(evt.EVT_C_ECHO, lambda e: seen.append(e.assoc) or 0)
    ae = _sender()
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", server.server_address[1])
    assert assoc.send_c_echo().Status == 0
    assert type(assoc) is Association and type(assoc.dul) is DULServiceProvider  # the SCU's
    assoc.release()
    (ours,) = seen
    assert isinstance(ours, ScpAssociation)
    assert isinstance(ours.dul, association.ScpDUL)
    assert isinstance(ours.dimse, association.ScpDIMSE)
    assert isinstance(ours.dul.socket, association.ScpSocket)
    assert (
        ours.dul.artim_timer.timeout == 30 and ours.dul._idle_timer.timeout == ours.network_timeout
    )


def test_a_pdu_longer_than_negotiated_closes_the_connection_unread(server) -> None:
    raw = wire.RawAssociation(server.server_address[1], [(1, CTImageStorage, [wire.EXPLICIT_LE])])
    raw.sock.sendall(struct.pack(">BBL", wire.P_DATA_TF, 0, 2**31))  # announces 2 GiB
    raw.sock.settimeout(5)
    assert raw.sock.recv(65536) in (b"", b"\x07\x00\x00\x00\x00\x04\x00\x00\x02\x00")


def test_a_connection_that_closes_before_associating_ends_at_once(server) -> None:
    before = len(server.active_associations)
    socket.create_connection(server.server_address).close()
    deadline = time.monotonic() + 2  # the ACSE timeout is 30 s
    while len(server.active_associations) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(server.active_associations) == before


def test_every_wake_up_reaches_an_idle_reactor(server, tmp_path, monkeypatch) -> None:
    """With idle waits of 60 s, an echo, two C-STOREs and a release still complete within the
    SCU's 5 s DIMSE timeout: socket data, outgoing PDUs, queued DIMSE messages and the release
    indication each wake the thread that waits for them."""
    monkeypatch.setattr(association, "IDLE_WAIT", 60.0)
    files = [_instance(tmp_path, f"w{i}") for i in range(2)]
    ae = _sender()
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", server.server_address[1])
    started = time.monotonic()
    assert assoc.send_c_echo().Status == 0
    assert [assoc.send_c_store(str(f)).Status for f in files] == [0, 0]
    assoc.release()
    assert assoc.is_released and time.monotonic() - started < 5


@pytest.mark.parametrize("event", [evt.EVT_DIMSE_SENT, evt.EVT_PDU_SENT])
def test_store_responses_go_straight_to_the_socket_unless_a_sent_event_is_bound(
    server, tmp_path, event
) -> None:
    """Unbound: hand-encoded and sent from the association thread (the DUL's queue unused).
    Bound: the stock path, and the event fires."""
    encoded: list[int] = []
    queued: list[object] = []
    original_encode, original_send_pdu = association.encode_store_rsp, association.ScpDUL.send_pdu

    def spy_encode(*args):
        encoded.append(args[1])
        return original_encode(*args)

    def spy_send_pdu(dul, primitive):
        queued.append(type(primitive).__name__)
        original_send_pdu(dul, primitive)

    path = _instance(tmp_path, "e")
    fired: list[object] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(association, "encode_store_rsp", spy_encode)
        mp.setattr(association.ScpDUL, "send_pdu", spy_send_pdu)
        for bound in (False, True):
            if bound:
                server.bind(event, lambda e: fired.append(e))
            assoc = _sender().associate("127.0.0.1", server.server_address[1])
            assert assoc.send_c_store(str(path)).Status == 0
            assoc.release()
            if not bound:
                assert encoded == [0x0000], "the fast path did not answer the C-STORE"
                assert "P_DATA" not in queued, "the response went through the DUL's queue"
    assert fired, f"{event.name} did not fire"
    assert "P_DATA" in queued


def test_received_files_carry_the_hand_encoded_file_meta(server, tmp_path) -> None:
    path = _instance(tmp_path, "m")
    sop = uid("m", "sop")
    assoc = _sender().associate("127.0.0.1", server.server_address[1])
    assert assoc.send_c_store(str(path)).Status == 0
    assoc.release()
    (stored,) = (tmp_path / "store" / "incoming").rglob("*.dcm")
    meta = encode_file_meta(CTImageStorage, sop, assoc.accepted_contexts[0].transfer_syntax[0])
    assert stored.read_bytes()[128 : 132 + len(meta)] == b"DICM" + meta


CT = "1.2.840.10008.5.1.4.1.1.2"
SOPS = ["1.2.3", "1.2.826.0.1.3680043.10.1234.1", "1." + "2" * 62]  # odd, even, 64 long


@pytest.mark.parametrize("sop", SOPS)
@pytest.mark.parametrize("ts", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.4.50"])
def test_file_meta_is_pynetdicoms_byte_for_byte(sop: str, ts: str) -> None:
    theirs = DicomBytesIO()
    write_file_meta_info(
        theirs, create_file_meta(sop_class_uid=CT, sop_instance_uid=sop, transfer_syntax=ts)
    )
    ours = encode_file_meta(CT, sop, ts)
    assert ours == theirs.getvalue()
    meta = dcmread(BytesIO(b"\0" * 128 + b"DICM" + ours)).file_meta
    assert (meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID) == (sop, ts)


@pytest.mark.parametrize("context_id", [1, 255])
def test_p_data_tf_is_pynetdicoms_byte_for_byte(context_id: int) -> None:
    pdv = b"\x03" + encode_store_rsp(7, 0, CT, SOPS[0])
    primitive = P_DATA()
    primitive.presentation_data_value_list.append((context_id, pdv))
    assert association.p_data_tf(context_id, pdv) == P_DATA_TF(primitive).encode()


@pytest.mark.parametrize("sop", SOPS)
@pytest.mark.parametrize(("message_id", "status"), [(1, 0x0000), (65535, 0xA700), (7, 0xC210)])
def test_store_response_is_pynetdicoms_byte_for_byte(
    sop: str, message_id: int, status: int
) -> None:
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = message_id
    rsp.AffectedSOPClassUID = CT
    rsp.AffectedSOPInstanceUID = sop
    rsp.Status = status
    message = C_STORE_RSP()
    message.primitive_to_message(rsp)
    theirs = encode(message.command_set, True, True)
    ours = encode_store_rsp(message_id, status, CT, sop)
    assert ours == theirs
    decoded = decode(BytesIO(ours), True, True)
    assert (decoded.Status, decoded.MessageIDBeingRespondedTo, decoded.CommandField) == (
        status,
        message_id,
        0x8001,
    )


def _store_rq_command(**fields: object) -> bytes:
    rq = C_STORE()
    rq.MessageID, rq.AffectedSOPClassUID, rq.AffectedSOPInstanceUID = 7, CT, SOPS[0]
    rq.Priority = 2
    rq.DataSet = BytesIO(b"\0")
    for name, value in fields.items():
        setattr(rq, name, value)
    message = C_STORE_RQ()
    message.primitive_to_message(rq)
    return encode(message.command_set, True, True)


@pytest.mark.parametrize(
    "fields",
    [{}, {"MoveOriginatorApplicationEntityTitle": "MOVER", "MoveOriginatorMessageID": 3},
     {"AffectedSOPInstanceUID": SOPS[2], "MessageID": 65535, "Priority": 1}],
)  # fmt: skip
def test_hand_read_store_requests_equal_pynetdicoms(fields) -> None:
    raw = _store_rq_command(**fields)
    parsed = association.store_rq_fields(raw)
    assert parsed is not None
    ours = association.C_STORE_RQ.__new__(association.C_STORE_RQ)
    association.ScpMessage.__init__(ours)
    ours.context_id, ours._scp_fields = 1, parsed
    theirs = C_STORE_RQ()
    theirs.command_set, theirs.data_set, theirs.context_id = (
        decode(BytesIO(raw), True, True),
        None,
        1,
    )
    a, b = ours.message_to_primitive(), theirs.message_to_primitive()
    for name in ("MessageID", "AffectedSOPClassUID", "AffectedSOPInstanceUID", "Priority",
                 "MoveOriginatorApplicationEntityTitle", "MoveOriginatorMessageID"):  # fmt: skip
        assert getattr(a, name) == getattr(b, name), name


def test_anything_but_a_plain_store_request_is_left_to_pynetdicom() -> None:
    echo = C_ECHO()
    echo.MessageID, echo.AffectedSOPClassUID = 1, "1.2.840.10008.1.1"
    message = C_ECHO_RQ()
    message.primitive_to_message(echo)
    echo = encode(message.command_set, True, True)
    assert association.store_rq_fields(echo) is None
    raw = _store_rq_command()
    assert association.store_rq_fields(raw[:-1]) is None  # truncated
    assert association.store_rq_fields(raw + b"\x00\x00\x00\x09\x02\x00\x00\x00\x00\x00") is None


def _commitment_server(tmp_path: Path, modality: Modality) -> tuple[ScpServer, Reporter]:
    """Our server with every service (storage commitment included); its reporter is not
    started: the tests run its passes."""
    remote = f"{modality.ae_title}=127.0.0.1:{modality.port}:store+commitment"
    settings = Settings(storage=str(tmp_path / "store"), port=free_port(), bind="127.0.0.1",
                        min_free_disk=0, remote_aes=load_settings(["--remote-aes", remote],
                        {}).remote_aes)  # fmt: skip
    store = open_store(settings.storage)
    store.prepare()
    service = StoreService(settings, store, Metrics("Test")).start()
    services = build_services(settings, service.on_store, Metrics("Test"))
    ae = build_ae(settings)
    server = start_dicom_server(ae, settings, service, store.temp_dir, services=services)
    (commitment,) = [s for s in services.services if isinstance(s, CommitmentService)]
    return server, commitment.reporter


def test_reports_on_our_open_association_pause_its_reactor_and_leave_it_usable(tmp_path):
    modality = Modality()
    server, reporter = _commitment_server(tmp_path, modality)
    files = [_instance(tmp_path, f"cm{i}") for i in range(3)]
    try:
        assoc = modality.associate(server.server_address[1])
        assert assoc.send_c_store(str(files[0])).Status == 0
        assert [type(a) for a in server.active_associations] == [ScpAssociation]
        for round_ in range(5):  # N-ACTION, then the report sent from another thread
            status, transaction = modality.request(assoc, references(files[:1]), uid("tx", round_))
            assert status == 0x0000
            reporter.poll()  # returns once the modality confirmed the report
            report = modality.next_report(timeout=5)
            assert report.same_association and str(report.info.TransactionUID) == transaction
        # The reactor runs again: the association still stores.
        assert assoc.send_c_store(str(files[1])).Status == 0
        assoc.release()
    finally:
        server.shutdown()
        reporter.stop(5)
    recorded = FolderTransactions(str(tmp_path / "store")).all()
    assert sorted((tx.state, tx.attempts) for tx in recorded) == [("REPORTED", 1)] * 5


def test_reports_on_a_new_association_propose_the_scp_role(tmp_path):
    modality = Modality().listen()
    server, reporter = _commitment_server(tmp_path, modality)
    path = _instance(tmp_path, "role")
    try:
        assoc = modality.associate(server.server_address[1])
        assert assoc.send_c_store(str(path)).Status == 0
        assert modality.request(assoc, references([path]))[0] == 0x0000
        assoc.release()
        reporter.poll()
        report = modality.next_report(timeout=5)
    finally:
        server.shutdown()
        reporter.stop(5)
        modality.stop()
    assert not report.same_association and report.calling_ae == "STORESCP"
    # The modality accepted our proposal: we are SCP, it is SCU of Storage Commitment.
    assert report.modality_is_scu
