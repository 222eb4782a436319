"""Edge mode: acknowledged after an fsync on the local disk, forwarded to S3 (moto over HTTP,
through a relay that can refuse) with the keys the cloud SCP writes, the manifest last."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from scp.contracts import BATCHES_PREFIX, INCOMING_PREFIX
from scp.edge.forwarder import BACKOFF_CAP, Forwarder, backoff_delay
from scp.settings import SettingsError, load_settings
from scp.storage.local import LocalStore
from scp.storage.s3 import S3Store
from tests.reliability.instances import make_instances
from tests.scp.conftest import MANIFEST_SCHEMA
from tests.support.aws import MotoServer
from tests.support.edge import (
    bucket_objects,
    edge_settings,
    manifests_in,
    store_all,
    wait_for,
)
from tests.support.relay import Relay

BUCKET = "edge-site"
PREFIX = "site-a/"


@pytest.fixture(autouse=True, scope="module")
def bucket(moto: MotoServer) -> str:
    moto.client("s3").create_bucket(Bucket=BUCKET)
    return BUCKET


@pytest.fixture
def relay(moto: MotoServer) -> Iterator[Relay]:
    with Relay(moto.port) as r:
        yield r


def _prefix(tmp_path: Path) -> str:
    return f"{PREFIX}{tmp_path.name}/"  # each test its own part of the module's bucket


def test_edge_acknowledges_and_forwards_with_the_cloud_scps_keys(start_scp, moto, tmp_path):
    """GIVEN an edge SCP forwarding to s3://bucket/prefix, WHEN a study arrives, THEN every
    instance is in S3 under {prefix}incoming/{batch}/{study}/{series}/{sop}.dcm byte for byte,
    the manifest (schema-valid, keys with the prefix) is there, and the local copies are gone."""
    prefix, storage = _prefix(tmp_path), tmp_path / "edge"
    scp = start_scp(**edge_settings(storage, moto.endpoint, BUCKET, prefix))
    instances = make_instances(series=41, count=6, side=64)
    assert store_all(scp.port, instances) == [0] * 6
    s3 = moto.client("s3")
    objects = wait_for(
        lambda: (o := bucket_objects(s3, BUCKET, prefix)) and manifests_in(o) and o, 20, "manifest"
    )
    (manifest,) = manifests_in(objects)
    jsonschema.validate(manifest, MANIFEST_SCHEMA)
    batch = manifest["batchId"]
    assert manifest["inputPrefix"] == f"{prefix}{INCOMING_PREFIX}{batch}/"
    assert manifest["instanceCount"] == 6
    keys = {e["key"] for e in manifest["instances"]}
    assert keys | {f"{prefix}{BATCHES_PREFIX}{batch}.json"} == set(objects)
    by_sop = {k.rsplit("/", 1)[1][:-4]: objects[k] for k in keys}
    for instance in instances:
        assert by_sop[instance.sop_uid].endswith(instance.dataset)
    wait_for(lambda: not list((storage / "incoming").rglob("*.dcm")), 10, "local copies removed")
    code, health = scp.health()
    assert code == 200 and health["forwarding"]["backlogFiles"] == 0, health
    events = [x.get("event") for x in scp.log_lines()]
    assert "edge-started" in events and "edge-batch-forwarded" in events


def test_s3_outage_every_instance_acknowledged_then_the_backlog_drains(
    start_scp, moto, relay, tmp_path
):
    """GIVEN S3 unreachable (the relay refuses), WHEN a study arrives, THEN every instance is
    acknowledged, /health reports the backlog and turns 503 once it is older than
    EDGE_BACKLOG_MAX_AGE; WHEN S3 is back, THEN the backlog drains, each instance once, with a
    log line that forwarding resumed."""
    prefix, storage = _prefix(tmp_path), tmp_path / "edge"
    relay.refuse()
    settings = edge_settings(storage, f"http://127.0.0.1:{relay.port}", BUCKET, prefix)
    scp = start_scp(**settings, edge_backlog_max_age=1, workers=1)  # forwarder beside the AE
    instances = make_instances(series=42, count=5, side=64)
    assert store_all(scp.port, instances) == [0] * 5

    def behind() -> dict | None:
        code, body = scp.health()
        return body if code == 503 and body["forwarding"]["backlogFiles"] == 5 else None

    health = wait_for(behind, 15, "503 with a backlog of 5")
    assert health["status"] == "forwarding-behind"
    assert health["forwarding"]["failedAttempts"] >= 1
    s3 = moto.client("s3")
    assert bucket_objects(s3, BUCKET, prefix) == {}
    relay.refuse(False)
    objects = wait_for(
        lambda: (o := bucket_objects(s3, BUCKET, prefix)) and manifests_in(o) and o,
        BACKOFF_CAP + 15,
        "backlog drained",
    )
    assert len([k for k in objects if k.endswith(".dcm")]) == 5
    assert wait_for(lambda: scp.health()[0] == 200, 10, "healthy again")
    resumed = [x for x in scp.log_lines() if x.get("event") == "edge-forward-resumed"]
    assert len(resumed) == 1 and resumed[0]["failedAttempts"] >= 1


def test_a_batch_left_open_by_a_killed_scp_is_closed_and_forwarded_at_restart(
    start_scp, moto, relay, tmp_path
):
    """GIVEN an edge SCP SIGKILLed in the middle of an association (its batch open, S3
    unreachable), WHEN it starts again, THEN the acknowledged instances are closed into a
    'swept' manifest and forwarded."""
    prefix, storage = _prefix(tmp_path), tmp_path / "edge"
    relay.refuse()
    settings = edge_settings(storage, f"http://127.0.0.1:{relay.port}", BUCKET, prefix)
    scp = start_scp(**settings)
    instances = make_instances(series=43, count=3, side=64)
    from tests.support.wire import EXPLICIT_LE, RawAssociation

    assoc = RawAssociation(scp.port, [(1, instances[0].sop_class, [EXPLICIT_LE])])
    assert [assoc.store(1, i.sop_class, i.sop_uid, i.dataset) for i in instances] == [0] * 3
    scp.kill()
    assoc.close()
    assert list((storage / "open").glob("*.json")), "no batch was left open"
    relay.refuse(False)
    scp.start()
    s3 = moto.client("s3")
    objects = wait_for(
        lambda: (o := bucket_objects(s3, BUCKET, prefix)) and manifests_in(o) and o, 20, "sent"
    )
    (manifest,) = manifests_in(objects)
    assert manifest["closeReason"] == "swept"
    assert {e["sopInstanceUID"] for e in manifest["instances"]} == {i.sop_uid for i in instances}
    assert not list((storage / "open").glob("*.json"))


def test_at_the_disk_floor_instances_are_refused_and_the_backlog_is_untouched(
    start_scp, moto, relay, tmp_path
):
    """GIVEN a backlog (S3 unreachable) and then free space below MIN_FREE_DISK, WHEN more
    instances arrive, THEN they are refused with 0xA701 and the backlog is intact."""
    prefix, storage = _prefix(tmp_path), tmp_path / "edge"
    relay.refuse()
    settings = edge_settings(storage, f"http://127.0.0.1:{relay.port}", BUCKET, prefix)
    scp = start_scp(**settings)
    first = make_instances(series=44, count=3, side=64)
    assert store_all(scp.port, first) == [0] * 3
    scp.stop()
    before = {p: p.read_bytes() for p in (storage / "incoming").rglob("*.dcm")}
    assert len(before) == 3
    # Below the floor the SCP reports unhealthy (it cannot store) while it answers DICOM.
    scp = start_scp(healthy=False, **settings, min_free_disk=2**50)
    assert store_all(scp.port, make_instances(series=45, count=2, side=64)) == [0xA701] * 2
    after = {p: p.read_bytes() for p in (storage / "incoming").rglob("*.dcm")}
    assert after == before
    code, body = scp.health()
    assert code == 503 and body["forwarding"]["backlogFiles"] == 3


def _closed_batch(root: Path, count: int, series: int = 46) -> str:
    """A batch closed in a folder store, as an edge SCP leaves it: instances, then manifest."""
    from scp.batches import AssociationBatches, Limits, StoredInstance

    store = LocalStore(str(root), port=1000 + series)  # each call its own staging folder
    store.prepare()
    batches = AssociationBatches(store, "MODALITY", "STORESCP", Limits())
    instances = make_instances(series=series, count=count, side=32)
    for i in instances:
        part = root / f"{i.sop_uid}.part"
        part.write_bytes(i.part10)
        batch = batches.batch_for("1.2.3", "", len(i.part10))
        key = batch.key_for("1.2.3.4", i.sop_uid)
        store.put_file(key, str(part), len(i.part10))
        sop_class = i.sop_class
        batches.record(
            batch, StoredInstance(key, i.sop_uid, "1.2.3.4", sop_class, "", len(i.part10))
        )
    (batch_id,) = batches.close_all("released")
    return batch_id


def _forwarder(root: Path, moto: MotoServer, prefix: str, keep_days: float = 0) -> Forwarder:
    target = S3Store(BUCKET, prefix, endpoint_url=moto.endpoint)
    forwarder = Forwarder(
        str(root), target, uploads=4, keep_days=keep_days, max_age=60, min_free=0, namespace="T"
    )
    forwarder.claim()
    return forwarder


def test_a_half_uploaded_batch_is_finished_and_a_repeat_changes_nothing(moto, tmp_path):
    """GIVEN a closed batch of which half the instances reached S3 before the host died (one
    of them cut short), WHEN the forwarder runs, THEN every instance is in S3 whole and the
    manifest last; WHEN the host dies after the manifest's PUT but before the local record
    (the manifest back in batches/), THEN forwarding again writes identical objects."""
    prefix, root = _prefix(tmp_path), tmp_path / "edge"
    batch_id = _closed_batch(root, 6)
    s3 = moto.client("s3")
    local_keys = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.dcm"))
    for n, key in enumerate(local_keys[:3]):
        body = (root / key).read_bytes()
        s3.put_object(Bucket=BUCKET, Key=prefix + key, Body=body[: len(body) // 2] if n else body)
    forwarder = _forwarder(root, moto, prefix, keep_days=1)
    (done,) = forwarder.forward_pending()
    assert (done.batch_id, done.instances) == (batch_id, 6)
    first = bucket_objects(s3, BUCKET, prefix)
    for key in local_keys:
        assert first[prefix + key] == (root / key).read_bytes()
    assert json.loads(first[f"{prefix}batches/{batch_id}.json"])["instanceCount"] == 6
    (root / "forwarded" / f"{batch_id}.json").rename(root / "batches" / f"{batch_id}.json")
    forwarder.forward_pending()
    assert bucket_objects(s3, BUCKET, prefix) == first
    forwarder.prune()
    assert list((root / "incoming").rglob("*.dcm")), "kept for EDGE_KEEP_DAYS"
    forwarder.keep_seconds = 0
    forwarder.prune()
    assert not list((root / "incoming").rglob("*.dcm"))
    assert forwarder.status()["backlogFiles"] == 6  # figures as of the last scan
    forwarder.rescan()
    assert forwarder.status()["backlogFiles"] == 0


def test_an_unforwardable_batch_is_set_aside_and_the_rest_goes(moto, tmp_path):
    """GIVEN a closed batch whose instance file is gone (and one that is fine), THEN the broken
    one moves to unforwardable/ with a log line and the other is forwarded."""
    prefix, root = _prefix(tmp_path), tmp_path / "edge"
    broken = _closed_batch(root, 2)
    next(iter((root / "incoming" / broken).rglob("*.dcm"))).unlink()
    forwarder = _forwarder(root, moto, prefix)
    assert forwarder.forward_pending() == []
    assert (root / "unforwardable" / f"{broken}.json").exists()


def test_backoff_is_capped_exponential_with_full_jitter():
    rng = random.Random(7)
    for attempt in range(1, 40):
        ceiling = min(BACKOFF_CAP, 2.0**attempt)
        delays = [backoff_delay(attempt, rng) for _ in range(200)]
        assert min(delays) >= 0
        assert max(delays) <= ceiling
        assert max(delays) > ceiling * 0.8, "no jitter spread up to the ceiling"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--edge-forward-to", "s3:///x"], "EDGE_FORWARD_TO"),
        (["--edge-forward-to", "s3://site/p", "--storage", "s3://bucket/"], "STORAGE"),
        (["--edge-forward-to", "s3://b/p", "--temp-dir", "/tmp"], "TEMP_DIR"),
        (["--edge-keep-days", "-1"], "--edge-keep-days"),
    ],
)
def test_edge_settings_errors_name_the_setting(argv, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(argv, environ={})


def test_recovery_keeps_a_written_manifest_and_strays_do_not_block(moto, tmp_path):
    """GIVEN a batch whose manifest was written but whose open marker survived (the host died
    between the two) and a stray file in batches/, WHEN the edge SCP starts, THEN the marker
    goes, the manifest is not rewritten, and the batch is forwarded."""
    from scp.edge.recovery import close_left_open

    root = tmp_path / "edge"
    batch_id = _closed_batch(root, 2)
    manifest = (root / "batches" / f"{batch_id}.json").read_bytes()
    marker = json.loads(manifest)
    for name in ("instanceCount", "totalBytes", "seriesInstanceUIDs", "instances"):
        marker.pop(name)
    (root / "open" / f"{batch_id}.json").write_text(json.dumps(marker))
    (root / "batches" / "notes.txt").write_text("left by an operator")
    assert close_left_open(LocalStore(str(root))) == []
    assert not (root / "open" / f"{batch_id}.json").exists()
    assert (root / "batches" / f"{batch_id}.json").read_bytes() == manifest
    (done,) = _forwarder(root, moto, _prefix(tmp_path)).forward_pending()
    assert done.batch_id == batch_id


def test_forwarder_metrics_are_one_emf_line_with_the_backlog(moto, tmp_path, capsys):
    """GIVEN a backlog of 2 instances and one forwarded batch, THEN the EMF line carries the
    counters since the last flush and the backlog gauges, each with its unit."""
    root = tmp_path / "edge"
    _closed_batch(root, 3)
    forwarder = _forwarder(root, moto, _prefix(tmp_path))
    forwarder.forward_pending()
    _closed_batch(root, 2, series=47)
    forwarder.rescan()
    capsys.readouterr()
    forwarder.flush_metrics()
    (line,) = capsys.readouterr().out.splitlines()
    doc = json.loads(line)
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units["BacklogAgeSeconds"] == "Seconds" and units["BytesForwarded"] == "Bytes"
    assert (doc["InstancesForwarded"], doc["ForwardFailures"], doc["BacklogFiles"]) == (3, 0, 2)
    forwarder.flush_metrics()
    assert json.loads(capsys.readouterr().out)["InstancesForwarded"] == 0
