"""The SCP's responsibilities in-process, over a store that fails on demand: storing one
instance, closing batches (byte limit, manifest retry, marker heartbeat), admission, and the
registry that health reads."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
from pydicom.uid import CTImageStorage, MRImageStorage

from scp.admission import Admission
from scp.batches import (
    MARKER_REFRESH_SECONDS,
    AssociationBatches,
    Limits,
    StoredInstance,
    new_batch_id,
)
from scp.closing import BatchCloser
from scp.registry import AssociationRegistry, AssociationState
from scp.settings import Settings
from scp.storing import InstanceStorer
from scp.telemetry import Metrics
from tests.scp.conftest import MANIFEST_SCHEMA
from tests.support.dicom_files import make_dataset, uid, write_part10
from tests.support.memory_store import MemoryStore

STUDY = uid("svc")


def instance(key: str, size: int) -> StoredInstance:
    return StoredInstance(key, key, uid("svc", 1), CTImageStorage, "1.2.840.10008.1.2.1", size)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def batches(store: MemoryStore, clock: Clock, **limits: int) -> AssociationBatches:
    return AssociationBatches(
        store, "MODALITY", "STORESCP", Limits(**limits), clock=clock, sleep=clock.sleep
    )


def test_a_batch_closes_at_its_byte_limit_before_the_instance_that_would_exceed_it(tmp_path):
    store, clock = MemoryStore(tmp_path), Clock()
    b = batches(store, clock, max_bytes=250)
    ids = []
    for i in range(3):
        batch = b.batch_for(STUDY, "", 100)
        b.record(batch, instance(batch.key_for(uid("svc", 1), uid("svc", i)), 100))
        ids.append(batch.batch_id)
    assert ids[0] == ids[1] != ids[2]
    doc = store.document(f"batches/{ids[0]}.json")
    assert (doc["closeReason"], doc["instanceCount"], doc["totalBytes"]) == ("byte-limit", 2, 200)
    assert f"open/{ids[0]}.json" not in store.objects
    assert f"open/{ids[2]}.json" in store.objects


def test_a_manifest_write_is_retried_with_backoff(tmp_path):
    store, clock = MemoryStore(tmp_path), Clock()
    b = batches(store, clock)
    batch = b.batch_for(STUDY, "", 10)
    b.record(batch, instance(batch.key_for("1.2", "1.3"), 10))
    store.fail("put_json", "batches/", times=2)
    assert b.close_all("released") == [batch.batch_id]
    assert clock.slept == [1.0, 2.0]
    assert store.document(f"batches/{batch.batch_id}.json")["instanceCount"] == 1
    assert f"open/{batch.batch_id}.json" not in store.objects


def test_a_manifest_that_cannot_be_written_leaves_its_marker_for_the_sweeper(tmp_path, caplog):
    store, clock = MemoryStore(tmp_path), Clock()
    b = batches(store, clock)
    batch = b.batch_for(STUDY, "", 10)
    b.record(batch, instance(batch.key_for("1.2", "1.3"), 10))
    store.fail("put_json", "batches/", times=3)
    with caplog.at_level(logging.ERROR):
        assert b.close_all("released") == []
    assert f"batches/{batch.batch_id}.json" not in store.objects
    assert f"open/{batch.batch_id}.json" in store.objects, "the sweeper needs the marker"
    assert caplog.text.count("batch manifest not written") == 3


def test_an_open_batch_refreshes_its_marker_so_the_sweeper_leaves_it_alone(tmp_path):
    store, clock = MemoryStore(tmp_path), Clock()
    b = batches(store, clock)
    batch = b.batch_for(STUDY, "", 10)
    marker = ("put_json", f"open/{batch.batch_id}.json")
    clock.now += MARKER_REFRESH_SECONDS / 2
    b.batch_for(STUDY, "", 10)
    assert store.calls.count(marker) == 1
    clock.now += MARKER_REFRESH_SECONDS
    assert b.batch_for(STUDY, "", 10) is batch
    assert store.calls.count(marker) == 2


def test_a_batch_fills_to_exactly_its_byte_limit_and_a_resent_instance_counts_once(tmp_path):
    store, clock = MemoryStore(tmp_path), Clock()
    b = batches(store, clock, max_bytes=200)
    first = b.batch_for(STUDY, "", 100)
    b.record(first, instance(first.key_for("1.2", "1.3"), 100))
    b.record(first, instance(first.key_for("1.2", "1.3"), 100))  # the same instance again
    assert first.total_bytes == 100
    assert b.batch_for(STUDY, "", 100) is first  # 200 bytes: full, not over
    b.record(first, instance(first.key_for("1.2", "1.4"), 100))
    assert b.batch_for(STUDY, "", 1) is not first
    doc = store.document(f"batches/{first.batch_id}.json")
    assert (doc["closeReason"], doc["instanceCount"], doc["totalBytes"]) == ("byte-limit", 2, 200)


def test_a_batch_closes_when_it_holds_max_files_and_writes_its_manifest_once(tmp_path):
    store, clock = MemoryStore(tmp_path), Clock()
    b = batches(store, clock, max_files=2)
    batch = b.batch_for(STUDY, "", 10)
    b.record(batch, instance(batch.key_for("1.2", "1.3"), 10))
    assert batch.batch_id not in b.closed
    b.record(batch, instance(batch.key_for("1.2", "1.4"), 10))
    assert b.closed == [batch.batch_id]
    assert store.document(f"batches/{batch.batch_id}.json")["closeReason"] == "file-limit"
    assert store.calls.count(("put_json", f"batches/{batch.batch_id}.json")) == 1


def test_the_open_marker_is_rewritten_once_a_minute(tmp_path):
    store, clock = MemoryStore(tmp_path), Clock()
    b = batches(store, clock)
    batch = b.batch_for(STUDY, "", 10)
    marker = ("put_json", f"open/{batch.batch_id}.json")
    clock.now += 60.0
    b.batch_for(STUDY, "", 10)
    assert store.calls.count(marker) == 1, "rewritten before a minute passed"
    clock.now += 0.01
    b.batch_for(STUDY, "", 10)
    assert store.calls.count(marker) == 2, "not rewritten after a minute"


@pytest.mark.parametrize("study_date", ["20260102", ""])
def test_marker_and_manifest_follow_the_schema_with_the_study_date_when_known(tmp_path, study_date):
    store, clock = MemoryStore(tmp_path), Clock()
    b = batches(store, clock)
    batch = b.batch_for(STUDY, study_date, 10)
    marker = store.document(f"open/{batch.batch_id}.json")
    explicit_le = "1.2.840.10008.1.2.1"
    b.record(
        batch,
        StoredInstance(batch.key_for("1.2", "1.3"), "1.3", "1.2", CTImageStorage, explicit_le, 10),
    )
    b.close_all("released")
    manifest = store.document(f"batches/{batch.batch_id}.json")
    jsonschema.validate(manifest, MANIFEST_SCHEMA)
    for doc in (marker, manifest):
        assert doc.get("studyDate") == (study_date or None)
        assert doc["schemaVersion"] == 1


def test_a_marker_that_cannot_be_removed_is_left_for_the_sweeper(tmp_path, caplog):
    store, clock = MemoryStore(tmp_path), Clock()
    b = batches(store, clock)
    batch = b.batch_for(STUDY, "", 10)
    b.record(batch, instance(batch.key_for("1.2", "1.3"), 10))
    store.fail("delete", "open/")
    with caplog.at_level(logging.WARNING):
        assert b.close_all("released") == [batch.batch_id]
    assert f"batches/{batch.batch_id}.json" in store.objects
    assert f"open/{batch.batch_id}.json" in store.objects
    assert "open marker not removed; the sweeper removes it" in caplog.text


def test_a_batch_id_is_a_utc_time_and_48_random_bits():
    ids = {new_batch_id() for _ in range(100)}
    assert len(ids) == 100
    for batch_id in ids:
        assert re.fullmatch(r"[0-9]{8}T[0-9]{12}Z-[0-9a-f]{12}", batch_id), batch_id


def _event(
    path: Path, sop: str, sop_class: str = CTImageStorage, context: str = CTImageStorage
) -> SimpleNamespace:
    request = SimpleNamespace(AffectedSOPInstanceUID=sop, AffectedSOPClassUID=sop_class)
    return SimpleNamespace(
        request=request, context=SimpleNamespace(abstract_syntax=context), dataset_path=path
    )


def _state(store: MemoryStore) -> AssociationState:
    return AssociationState("MODALITY", "STORESCP", "127.0.0.1", batches(store, Clock()))


def test_a_storage_failure_answers_out_of_resources_and_records_nothing(tmp_path):
    """The failed and the stored instance have their own SOP Instance UIDs, so an entry recorded
    for the failed one cannot hide behind the stored one's; the manifest names only objects
    that exist, or its import job would fail."""
    store = MemoryStore(tmp_path)
    storer, state = InstanceStorer(store, Metrics("Test")), _state(store)
    series = uid("svc", 1)
    failed, stored = uid("svc", "fail"), uid("svc", "ok")
    paths = {
        sop: write_part10(make_dataset(study=STUDY, series=series, sop=sop), tmp_path / sop)
        for sop in (failed, stored)
    }
    store.fail("put_file")
    assert storer.store_instance(state, _event(paths[failed], failed)) == 0xA700
    assert storer.store_instance(state, _event(paths[stored], stored)) == 0x0000
    (open_batch,) = state.batches.open.values()
    assert list(open_batch.instances) == [open_batch.key_for(series, stored)]
    assert (state.instances, state.failures) == (1, 1)

    (closed,) = state.batches.close_all("released")
    manifest = store.document(f"batches/{closed}.json")
    named = [i["key"] for i in manifest["instances"]]
    assert named == [open_batch.key_for(series, stored)]
    assert all(key in store.objects for key in named), "the manifest names an unstored object"
    assert (manifest["instanceCount"], manifest["totalBytes"]) == (
        1,
        len(store.objects[named[0]]),
    )


# Each way an instance is refused -> (what differs from a good C-STORE, the status it answers).
REFUSALS = {
    "invalid SOP Instance UID": ({"sop": "1.2.abc"}, 0xC212),
    "invalid SOP Class UID": ({"sop_class": "1.2.x"}, 0xC212),
    "SOP Class not the context's": ({"sop_class": MRImageStorage}, 0xA900),
    "no disk space to receive it": ({"discarded": True}, 0xA701),
    "truncated dataset": ({"truncate": True}, 0xC210),
    "dataset's SOP Instance UID differs": ({"sop": uid("svc", "other")}, 0xA900),
    "dataset's SOP Class differs": (
        {"sop_class": MRImageStorage, "context": MRImageStorage},
        0xA900,
    ),
    "no Study Instance UID": ({"drop": "StudyInstanceUID"}, 0xC213),
    "no Series Instance UID": ({"drop": "SeriesInstanceUID"}, 0xC213),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_each_refusal_answers_its_own_status_and_stores_nothing(tmp_path, case):
    changes, status = REFUSALS[case]
    sop = uid("svc", "refused")
    ds = make_dataset(study=STUDY, series=uid("svc", 1), sop=sop)
    if "drop" in changes:
        delattr(ds, changes["drop"])
    path = write_part10(ds, tmp_path / "in")
    if changes.get("truncate"):
        path.write_bytes(path.read_bytes()[:-100])
    event = _event(
        path,
        changes.get("sop", sop),
        changes.get("sop_class", CTImageStorage),
        changes.get("context", CTImageStorage),
    )
    event.request._scp_discarded = changes.get("discarded", False)
    store = MemoryStore(tmp_path)
    storer, state = InstanceStorer(store, Metrics("Test")), _state(store)

    assert storer.store_instance(state, event) == status
    assert (store.objects, state.batches.open) == ({}, {})
    assert (state.instances, state.failures) == (0, 1)


class FailingStore(MemoryStore):
    """A store with a bug: put_file raises something that is not a StorageError."""

    def put_file(self, key: str, path: str, size: int) -> None:
        raise RuntimeError("a bug in the store")


def _refusal_logged(caplog) -> dict:
    (record,) = [r for r in caplog.records if r.getMessage() == "instance refused"]
    return record.fields


def test_an_unexpected_error_is_answered_not_raised_and_logged_without_phi(tmp_path, caplog):
    store = FailingStore(tmp_path)
    storer, state = InstanceStorer(store, Metrics("Test")), _state(store)
    sop = uid("svc", "bug")
    path = write_part10(make_dataset(study=STUDY, series=uid("svc", 1), sop=sop), tmp_path / "a")
    with caplog.at_level(logging.ERROR, logger="scp"):
        assert storer.store_instance(state, _event(path, sop)) == 0xC211
    assert _refusal_logged(caplog) == {
        "event": "store-failed",
        "status": "0xC211",
        "reason": "RuntimeError: a bug in the store",
        "sopInstanceUID": sop,
        "callingAETitle": "MODALITY",
    }
    assert state.failures == 1


def test_a_store_outside_an_accepted_association_is_refused(tmp_path, caplog):
    storer = InstanceStorer(MemoryStore(tmp_path), Metrics("Test"))
    with caplog.at_level(logging.ERROR, logger="scp"):
        assert storer.store_instance(None, _event(tmp_path / "none", "1.2.bad")) == 0xC211
    logged = _refusal_logged(caplog)
    assert (logged["sopInstanceUID"], logged["callingAETitle"]) == ("(invalid)", "")


def test_a_stored_instance_is_counted_with_its_bytes_and_latency(tmp_path, monkeypatch):
    ticks = iter([100.0, 100.25])  # received at 100 s, stored and recorded at 100.25 s
    monkeypatch.setattr("scp.storing.time", SimpleNamespace(monotonic=lambda: next(ticks)))
    stream = io.StringIO()
    store = MemoryStore(tmp_path)
    storer, state = InstanceStorer(store, Metrics("Test", stream)), _state(store)
    sop = uid("svc", "timed")
    path = write_part10(make_dataset(study=STUDY, series=uid("svc", 1), sop=sop), tmp_path / "a")

    assert storer.store_instance(state, _event(path, sop)) == 0x0000
    storer.metrics.flush(None)

    emitted = json.loads(stream.getvalue())
    size = path.stat().st_size
    assert (emitted["InstancesStored"], emitted["BytesStored"]) == (1, size)
    assert (emitted["StoreLatency"], emitted["StoreFailures"]) == ([250.0], 0)
    assert (state.instances, state.bytes) == (1, size)


def test_the_active_count_never_waits_on_a_batch_being_closed(tmp_path):
    """A closer stuck on storage (S3 down) holds no lock the health endpoint needs."""
    store = MemoryStore(tmp_path)
    registry = AssociationRegistry()
    closer = BatchCloser(registry, join_timeout=1)
    assoc = threading.Thread(target=lambda: None)  # an association whose thread has ended
    assoc.start()
    assoc.join()
    assoc.is_released = True  # type: ignore[attr-defined]
    state = _state(store)
    batch = state.batches.batch_for(STUDY, "", 10)
    state.batches.record(batch, instance(batch.key_for("1.2", "1.3"), 10))
    assert registry.admit(assoc, state, limit=5)  # type: ignore[arg-type]
    store.block()
    reaper = threading.Thread(target=closer.reap)
    reaper.start()
    time.sleep(0.1)
    started = time.monotonic()
    assert registry.active_count() == 1
    assert time.monotonic() - started < 0.5  # not behind the stuck closer (it never returns)
    store.unblock()
    reaper.join(5)
    assert registry.active_count() == 0
    assert f"batches/{batch.batch_id}.json" in store.objects


def test_admission_rejects_by_title_and_while_draining() -> None:
    admission = Admission(Settings(ae_title="SCP", require_called_ae_title=True,
                                   require_calling_ae_title=("CT1",)))  # fmt: skip
    assert admission.check("CT1", "SCP") is None
    assert admission.check("CT1", "OTHER").reason == "called AE title not recognised"
    assert admission.check("MR9", "SCP").reason == "calling AE title not allowed"
    admission.drain()
    assert admission.check("CT1", "SCP").reason == "draining"
