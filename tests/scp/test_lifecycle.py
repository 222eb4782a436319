"""SIGTERM drain, health, PHI-free logs and bounded memory, with the SCP as a real process."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage

from tests.scp.conftest import manifests, stored_files
from tests.scp.test_transfer import storescu
from tests.support.dicom_files import dataset_bytes, make_dataset, uid, write_part10
from tests.support.memory import RssSampler
from tests.support.waiting import wait_until

SENTINEL = "ZZSENTINEL^PHI7F3A"


def series_files(tmp_path: Path, n: int, tag: str, **kw: object) -> list[Path]:
    return [
        write_part10(
            make_dataset(study=uid(tag), series=uid(tag, "s"), sop=uid(tag, i), seed=i, **kw),
            tmp_path / tag / f"{i}.dcm",
        )
        for i in range(n)
    ]


def accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def sender(port: int):
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage)
    return ae.associate("127.0.0.1", port, ae_title="STORESCP")


def test_sigterm_lets_the_association_finish_refuses_new_ones_and_closes_its_batch(
    start_scp, tmp_path, monkeypatch
):
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    files = series_files(tmp_path, 6, "drain")
    scp = start_scp(drain_timeout=60)
    assoc = sender(scp.port)
    statuses = [assoc.send_c_store(str(files[0])).Status]
    scp.proc.send_signal(15)  # SIGTERM mid-association
    assert wait_until(lambda: scp.health()[0] == 503), "health still OK while draining"
    assert wait_until(lambda: not accepts_connections(scp.port)), "still accepting connections"
    for f in files[1:]:
        statuses.append(assoc.send_c_store(str(f)).Status)
        time.sleep(0.1)
    assoc.release()
    assert statuses == [0] * 6
    assert scp.proc.wait(30) == 0
    (doc,) = manifests(tmp_path / "store")
    assert (doc["instanceCount"], doc["closeReason"]) == (6, "released")
    emf = [line for line in scp.log_lines() if "_aws" in line]
    assert sum(line.get("InstancesStored", 0) for line in emf) == 6
    assert sum(line.get("BytesStored", 0) for line in emf) == doc["totalBytes"]
    declared = {m["Name"] for line in emf for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"InstancesStored", "BytesStored", "StoreLatency", "ActiveAssociations"} <= declared


def test_drain_deadline_aborts_what_is_left_and_closes_its_batch(start_scp, tmp_path, monkeypatch):
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    files = series_files(tmp_path, 2, "deadline")
    scp = start_scp(drain_timeout=1)
    assoc = sender(scp.port)
    assert [assoc.send_c_store(str(f)).Status for f in files] == [0, 0]
    assert scp.terminate(timeout=30) == 0  # the association stays open past the deadline
    (doc,) = manifests(tmp_path / "store")
    assert (doc["instanceCount"], doc["closeReason"]) == (2, "shutdown")


def test_patient_data_never_reaches_the_logs(start_scp, tmp_path, monkeypatch):
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    good = series_files(tmp_path, 2, "phi", patient_name=SENTINEL)
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(good[0].read_bytes()[:-100])
    scp = start_scp(log_level="DEBUG", require_calling_ae_title="MODALITY")
    assoc = sender(scp.port)
    statuses = [assoc.send_c_store(str(p)).Status for p in (*good, truncated)]
    assoc.release()
    assert statuses[:2] == [0, 0] and statuses[2] == 0xC210
    assert storescu(scp.port, str(good[0]), aet="INTRUDER").returncode != 0
    scp.terminate()
    stored = list(stored_files(tmp_path / "store").values())
    assert len(stored) == 2 and SENTINEL.encode() in stored[0].read_bytes()
    log = scp.output()
    assert '"store-failed"' in log and '"association-rejected"' in log
    for needle in (SENTINEL, "ZZSENTINEL", "TEST-0001", "20260101"):
        assert needle not in log, f"{needle} leaked into the log"


def test_a_large_instance_is_not_held_in_memory(start_scp, tmp_path):
    (big,) = series_files(tmp_path, 1, "huge", rows=8192, columns=16384)  # 256 MiB of pixels
    scp = start_scp()
    baseline = scp.rss()  # the supervisor and its worker processes
    sampler = RssSampler(scp.proc.pid, interval=0.01)
    sampler.start()
    try:
        assert storescu(scp.port, str(big)).returncode == 0
    finally:
        peak = max(baseline, sampler.stop())
    grew = (peak - baseline) / 2**20
    assert grew < 64, f"the SCP grew by {grew:.0f} MiB receiving a 256 MiB instance"
    scp.terminate()
    stored = stored_files(tmp_path / "store")[uid("huge", 0)]
    assert dataset_bytes(stored) == dataset_bytes(big)
