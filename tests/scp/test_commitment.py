"""Storage Commitment against our SCP as a real process (folder store), with pynetdicom as the
modality: the same-association report, a new association when the modality released at once,
the failure reasons, refused requests, a SIGKILL between N-ACTION and report, a modality that
is away for a while, and two SCP processes sharing one store."""

from __future__ import annotations

import json
import queue
from pathlib import Path

import pytest
from pydicom.uid import MRImageStorage

from tests.scp.test_lifecycle import series_files, wait_until
from tests.support.commitment import Modality, action_information, references
from tests.support.dicom_files import uid
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
    return [
        json.loads(p.read_text()) for p in sorted((tmp_path / "store/commitment").glob("*.json"))
    ]


def store(modality: Modality, port: int, files: list[Path]) -> None:
    assoc = modality.associate(port)
    for path in files:
        assert assoc.send_c_store(str(path)).Status == 0
    assoc.release()


def test_the_report_comes_on_the_association_that_asked_while_it_is_open(tmp_path, modality):
    files = series_files(tmp_path, 3, "same")
    with scp(tmp_path, modality) as server:
        assoc = modality.associate(server.port)
        for path in files:
            assert assoc.send_c_store(str(path)).Status == 0
        status, transaction = modality.request(assoc, references(files))
        assert status == 0x0000
        report = modality.next_report(timeout=10)
        assoc.release()
    assert report.same_association
    assert report.event_type == 1
    assert str(report.info.TransactionUID) == transaction
    assert sorted(report.committed()) == sorted(ref[1] for ref in references(files))
    assert "FailedSOPSequence" not in report.info
    (record,) = records(tmp_path)
    assert record["state"] == "REPORTED" and record["eventType"] == 1


def test_a_modality_that_releases_at_once_gets_the_report_on_a_new_association(tmp_path, modality):
    files = series_files(tmp_path, 2, "new")
    wrong_class = [(MRImageStorage, references(files[:1])[0][1])]  # stored as CT
    never_sent = [(references(files)[0][0], uid("never", "sent"))]
    modality.listen()
    with scp(tmp_path, modality, commitment_timeout=2) as server:
        assoc = modality.associate(server.port)
        for path in files:
            assert assoc.send_c_store(str(path)).Status == 0
        refs = references(files[1:]) + wrong_class + never_sent
        status, _ = modality.request(assoc, refs)
        assoc.release()
        assert status == 0x0000
        report = modality.next_report(timeout=15)
    assert not report.same_association
    assert report.calling_ae == "STORESCP"
    assert report.event_type == 2
    assert report.committed() == [references(files)[1][1]]
    assert report.failed() == {wrong_class[0][1]: 0x0119, never_sent[0][1]: 0x0112}


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


def test_a_modality_away_for_a_while_gets_the_report_when_it_returns(tmp_path, modality):
    files = series_files(tmp_path, 1, "away")
    with scp(tmp_path, modality) as server:
        assoc = modality.associate(server.port)
        assert assoc.send_c_store(str(files[0])).Status == 0
        _, transaction = modality.request(assoc, references(files))
        assoc.release()
        assert wait_until(lambda: records(tmp_path)[0]["attempts"] >= 1, timeout=10)
        assert records(tmp_path)[0]["state"] == "PENDING"
        assert "no association with MODALITY" in records(tmp_path)[0]["lastError"]
        modality.listen()
        report = modality.next_report(timeout=15)
    assert str(report.info.TransactionUID) == transaction and report.event_type == 1
    assert records(tmp_path)[0]["state"] == "REPORTED"


def test_a_report_nobody_takes_becomes_undeliverable(tmp_path, modality):
    files = series_files(tmp_path, 1, "never")
    with scp(tmp_path, modality, commitment_delivery_window=1, commitment_timeout=1) as server:
        store(modality, server.port, files)
        assoc = modality.associate(server.port)
        modality.request(assoc, references(files))
        assoc.release()
        assert wait_until(lambda: records(tmp_path)[0]["state"] == "UNDELIVERABLE", timeout=15)
        lines = [x for x in server.log_lines() if x.get("event") == "commitment-undeliverable"]
    assert lines and lines[0]["level"] == "ERROR"


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
