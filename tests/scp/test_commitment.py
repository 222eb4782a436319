"""Storage Commitment against our SCP as a real process (folder store), with pynetdicom as the
modality: the same-association report, a new association when the modality released at once,
the failure reasons, refused requests, a SIGKILL between N-ACTION and report, and two SCP
processes sharing one store. The retry rules (a modality away for a while, a report nobody
takes) run the reporter's passes in this process, at chosen times."""

from __future__ import annotations

import json
import logging
import queue
from pathlib import Path

import pytest
from pydicom.uid import MRImageStorage

from tests.scp.test_lifecycle import series_files
from tests.support.commitment import Modality, action_information, folder_reporter, references
from tests.support.dicom_files import uid
from tests.support.net import free_port
from tests.support.scp import ScpProcess

STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"


@pytest.fixture
def modality() -> Modality:
    mod = Modality("MODALITY")
    yield mod
    mod.stop()


def scp(tmp_path: Path, modality: Modality, **settings: object) -> ScpProcess:
    """Our SCP, one process, with the modality registered for store and commitment."""
    settings.setdefault("workers", 1)
    settings.setdefault(
        "remote_aes", f"{modality.ae_title}=127.0.0.1:{modality.port}:store+commitment"
    )
    return ScpProcess(log_dir=tmp_path, storage=str(tmp_path / "store"), **settings)


def records(tmp_path: Path) -> list[dict]:
    """The transaction records on disk: pending ones, then final ones (in done/)."""
    folder = tmp_path / "store/commitment"
    return [
        json.loads(p.read_text())
        for p in [*sorted(folder.glob("*.json")), *sorted(folder.glob("done/*.json"))]
    ]


def store(modality: Modality, port: int, files: list[Path]) -> None:
    assoc = modality.associate(port)
    for path in files:
        assert assoc.send_c_store(str(path)).Status == 0
    assoc.release()


def test_reports_go_on_the_open_association_else_on_a_new_one(tmp_path, modality):
    files = series_files(tmp_path, 3, "assoc")
    wrong_class = (MRImageStorage, references(files[:1])[0][1])  # stored as CT
    never_sent = (references(files)[0][0], uid("never", "sent"))
    modality.listen()
    with scp(tmp_path, modality, commitment_timeout=2) as server:
        assoc = modality.associate(server.port)
        for path in files:
            assert assoc.send_c_store(str(path)).Status == 0
        # Kept open: the report comes on this association.
        status, transaction = modality.request(assoc, references(files))
        assert status == 0x0000
        same = modality.next_report(timeout=10)
        # Released at once: the SCP opens an association to the registered address.
        refs = [*references(files[1:]), wrong_class, never_sent]
        status, other = modality.request(assoc, refs, uid(transaction, "other"))
        assoc.release()
        assert status == 0x0000
        new = modality.next_report(timeout=15)
    assert same.same_association and same.event_type == 1
    assert str(same.info.TransactionUID) == transaction
    assert sorted(same.committed()) == sorted(ref[1] for ref in references(files))
    assert "FailedSOPSequence" not in same.info
    assert not new.same_association and new.calling_ae == "STORESCP"
    assert str(new.info.TransactionUID) == other and new.event_type == 2
    assert sorted(new.committed()) == sorted(ref[1] for ref in references(files[1:]))
    assert new.failed() == {wrong_class[1]: 0x0119, never_sent[1]: 0x0112}
    assert sorted((r["state"], r["eventType"]) for r in records(tmp_path)) == [
        ("REPORTED", 1),
        ("REPORTED", 2),
    ]


INVALID = [  # (what is wrong, status of the N-ACTION response)
    ("instance", 0x0112),  # not the well-known instance
    ("action", 0x0123),  # action type 2
    ("empty", 0x0115),  # empty Referenced SOP Sequence
    ("bad-uid", 0x0115),  # a referenced UID with letters in it
    ("no-transaction", 0x0115),
]


def test_invalid_requests_are_refused_and_recorded_nowhere(tmp_path, modality):
    statuses = []
    with scp(tmp_path, modality) as server:
        assoc = modality.associate(server.port)
        for change, _ in INVALID:
            info = action_information(uid("tx", change), [(STORAGE_COMMITMENT, "1.2.3")])
            instance, action = "1.2.840.10008.1.20.1.1", 1
            if change == "instance":
                instance = "1.2.3.4"
            elif change == "action":
                action = 2
            elif change == "empty":
                info.ReferencedSOPSequence = []
            elif change == "bad-uid":
                info.ReferencedSOPSequence[0].ReferencedSOPInstanceUID = "1.2.A"
            else:
                del info.TransactionUID
            rsp, _ = assoc.send_n_action(info, action, STORAGE_COMMITMENT, instance)
            statuses.append((change, rsp.Status))
        assoc.release()
        # An AE not registered with the commitment permission may store, not ask this.
        intruder = Modality("INTRUDER")
        assoc = intruder.associate(server.port)
        status, _ = intruder.request(assoc, [(STORAGE_COMMITMENT, "1.2.3")])
        assoc.release()
    assert statuses == INVALID
    assert status == 0x0124  # Refused: Not Authorised
    assert records(tmp_path) == []


def test_a_request_survives_sigkill_and_is_reported_after_restart(tmp_path, modality):
    files = series_files(tmp_path, 2, "kill")
    modality.listen()
    server = scp(tmp_path, modality).start()
    try:
        store(modality, server.port, files[:1])
        assoc = modality.associate(server.port)
        status, transaction = modality.request(assoc, references(files))
        assert status == 0x0000  # recorded durably before this answer
        server.kill()  # before the second instance arrives: nothing reported yet
        with pytest.raises(queue.Empty):
            modality.next_report(timeout=0.5)
        server.start()
        store(modality, server.port, files[1:])
        report = modality.next_report(timeout=15)
    finally:
        server.stop()
    assert str(report.info.TransactionUID) == transaction
    assert report.event_type == 1 and len(report.committed()) == 2


def test_a_modality_away_for_a_while_gets_the_report_when_it_returns(tmp_path):
    modality = Modality("CT1")  # not listening yet
    reporter, transactions, _ = folder_reporter(
        tmp_path, f"CT1=127.0.0.1:{modality.port}:commitment"
    )
    (tx,) = transactions.all()
    reporter.poll(now=tx.received_at + 1)
    (tx,) = transactions.all()
    assert (tx.state, tx.attempts) == ("PENDING", 1)
    assert tx.last_error.startswith("no association with CT1")
    reporter.poll(now=tx.next_attempt - 0.5)  # backing off: no attempt
    assert transactions.all()[0].attempts == 1
    modality.listen()
    try:
        reporter.poll(now=tx.next_attempt)
        report = modality.next_report(timeout=5)
    finally:
        modality.stop()
    assert str(report.info.TransactionUID) == tx.transaction_uid and report.event_type == 1
    assert [(t.state, t.attempts) for t in transactions.all()] == [("REPORTED", 2)]


def test_a_report_nobody_takes_becomes_undeliverable_and_alarms(tmp_path, caplog):
    reporter, transactions, metrics = folder_reporter(
        tmp_path, f"CT1=127.0.0.1:{free_port()}:commitment", timeout=60, window=60
    )
    (tx,) = transactions.all()
    reporter.poll(now=tx.received_at + 1)
    assert transactions.all()[0].state == "PENDING"
    with caplog.at_level(logging.ERROR, "scp"):
        reporter.poll(now=tx.give_up_at)
    (tx,) = transactions.all()
    assert tx.state == "UNDELIVERABLE" and tx.attempts == 2
    (line,) = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "scp"]
    assert line.fields["event"] == "commitment-undeliverable"
    assert line.fields["transactionUID"] == tx.transaction_uid
    metrics.flush(None)
    emitted = json.loads(metrics.stream.getvalue().splitlines()[-1])
    assert emitted["CommitmentsUndeliverable"] == 1 and emitted["CommitmentsPending"] == 1
    reporter.poll(now=tx.give_up_at + 3600)
    assert transactions.all()[0].attempts == 2  # nothing is tried any more


def test_two_scp_processes_sharing_the_store_send_one_report(tmp_path, modality):
    files = series_files(tmp_path, 4, "two")
    modality.listen()
    first, second = scp(tmp_path, modality), scp(tmp_path, modality)
    with first, second:
        assoc = modality.associate(first.port)
        _, transaction = modality.request(assoc, references(files))
        assoc.release()
        # Both processes see the request pending; the instances arrive through the other one.
        store(modality, second.port, files)
        report = modality.next_report(timeout=15)
        with pytest.raises(queue.Empty):
            modality.next_report(timeout=2)
        sent = [
            line
            for server in (first, second)
            for line in server.log_lines()
            if line.get("event") == "commitment-reported"
        ]
    assert str(report.info.TransactionUID) == transaction and report.event_type == 1
    assert len(sent) == 1
