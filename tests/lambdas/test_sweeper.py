"""The sweeper against moto S3: stale open batches are closed from what is stored."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from lambdas import clients, sweeper
from lambdas.errors import WorkflowError
from lambdas.manifest import read_manifest
from lambdas.sweep import sweep
from tests.fakes.pipeline import environment, inline_handler
from tests.lambdas.batches import (
    OPENED_AT,
    batch_id,
    store_instances,
    write_batch,
    write_open_marker,
)

LATER = datetime.now(UTC) + timedelta(hours=1)
THRESHOLD = timedelta(minutes=15)


@pytest.fixture
def bucket(moto):
    name = f"sw-{uuid.uuid4().hex[:8]}"
    moto.client("s3").create_bucket(Bucket=name)
    with environment(
        {
            "AWS_ENDPOINT_URL": moto.endpoint,
            "DICOM_BUCKET": name,
            "STORE_PREFIX": "site/",
            "SWEEP_AFTER_SECONDS": "0",
        }
    ):
        yield name


def keys(bucket: str, prefix: str) -> list[str]:
    listed = clients.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_stale_open_batch_is_closed_with_a_valid_manifest(bucket):
    s3 = clients.client("s3")
    bid = batch_id()
    study, instances = store_instances(s3, bucket, bid, 3, series_count=2, prefix="site/")
    write_open_marker(s3, bucket, bid, study, prefix="site/")

    assert sweeper.handler({}) == {"closedBatchIds": [bid]}

    manifest = read_manifest(s3, bucket, f"site/batches/{bid}.json")
    assert manifest["closeReason"] == "swept"
    assert manifest["openedAt"] == OPENED_AT and manifest["callingAETitle"] == "MODALITY"
    assert manifest["studyInstanceUID"] == study and manifest["studyDate"] == "20260102"
    assert sorted(i["sopInstanceUID"] for i in manifest["instances"]) == sorted(
        i["sopInstanceUID"] for i in instances
    )
    assert manifest["totalBytes"] == sum(i["bytes"] for i in instances)
    assert keys(bucket, "site/open/") == []


def test_batch_still_receiving_is_left_alone(bucket):
    s3 = clients.client("s3")
    bid = batch_id()
    study, _ = store_instances(s3, bucket, bid, 1, prefix="site/")
    write_open_marker(s3, bucket, bid, study, prefix="site/")

    assert sweep(s3, bucket, "site/", THRESHOLD, datetime.now(UTC)) == []
    assert keys(bucket, "site/open/") == [f"site/open/{bid}.json"]
    assert sweep(s3, bucket, "site/", THRESHOLD, LATER) == [bid]


def test_stale_marker_beside_a_fresh_instance_is_left_alone(bucket):
    """The marker alone is not the batch's age: an instance stored after it means the SCP is
    still receiving (its heartbeat may lag), so the batch stays open until both are stale."""
    s3 = clients.client("s3")
    bid = batch_id()
    write_open_marker(s3, bucket, bid, "1.2.3", prefix="site/")
    (marker,) = s3.list_objects_v2(Bucket=bucket, Prefix="site/open/")["Contents"]
    while datetime.now(UTC) < marker["LastModified"] + timedelta(seconds=1.5):
        time.sleep(0.1)  # S3 times have whole seconds: the instance must be a second newer
    store_instances(s3, bucket, bid, 1, prefix="site/")
    (instance,) = s3.list_objects_v2(Bucket=bucket, Prefix="site/incoming/")["Contents"]
    age = (instance["LastModified"] - marker["LastModified"]) / 2
    assert age > timedelta(0)

    # Cut-off half-way between the two: the marker is stale, the instance is not.
    assert sweep(s3, bucket, "site/", age, instance["LastModified"]) == []
    assert keys(bucket, "site/open/") == [f"site/open/{bid}.json"]
    assert keys(bucket, "site/batches/") == []
    assert sweep(s3, bucket, "site/", THRESHOLD, LATER) == [bid]


def test_marker_whose_manifest_exists_is_only_deleted(bucket):
    s3 = clients.client("s3")
    manifest = write_batch(s3, bucket, prefix="site/")
    write_open_marker(s3, bucket, manifest["batchId"], manifest["studyInstanceUID"], prefix="site/")
    before = s3.get_object(Bucket=bucket, Key=f"site/batches/{manifest['batchId']}.json")[
        "Body"
    ].read()

    assert sweep(s3, bucket, "site/", THRESHOLD, datetime.now(UTC)) == []

    assert keys(bucket, "site/open/") == []
    after = s3.get_object(Bucket=bucket, Key=f"site/batches/{manifest['batchId']}.json")[
        "Body"
    ].read()
    assert after == before


def test_empty_or_unreadable_batches(bucket):
    s3 = clients.client("s3")
    empty = batch_id()
    write_open_marker(s3, bucket, empty, "1.2.3", prefix="site/")
    garbled = batch_id()
    store_instances(s3, bucket, garbled, 2, prefix="site/")
    s3.put_object(Bucket=bucket, Key=f"site/open/{garbled}.json", Body=b"{not json")

    assert sweep(s3, bucket, "site/", THRESHOLD, LATER) == [garbled]

    assert keys(bucket, "site/open/") == []
    assert keys(bucket, "site/batches/") == [f"site/batches/{garbled}.json"]
    manifest = json.loads(
        s3.get_object(Bucket=bucket, Key=f"site/batches/{garbled}.json")["Body"].read()
    )
    assert manifest["callingAETitle"] == "" and manifest["instanceCount"] == 2


class RefusingPuts:
    """An S3 client whose PutObject fails for keys containing `word` (an outage for one batch)."""

    def __init__(self, s3, word: str):
        self.s3, self.word = s3, word

    def __getattr__(self, name: str):
        return getattr(self.s3, name)

    def put_object(self, **kwargs):
        if self.word in kwargs["Key"]:
            raise OSError(f"cannot write {kwargs['Key']}")
        return self.s3.put_object(**kwargs)


def test_a_batch_that_cannot_be_closed_does_not_block_the_others(bucket):
    s3 = clients.client("s3")
    good, bad = batch_id(), batch_id()
    for bid in (good, bad):
        study, _ = store_instances(s3, bucket, bid, 1, prefix="site/")
        write_open_marker(s3, bucket, bid, study, prefix="site/")

    with pytest.raises(WorkflowError, match=bad):
        sweep(RefusingPuts(s3, bad), bucket, "site/", THRESHOLD, LATER)

    assert keys(bucket, "site/batches/") == [f"site/batches/{good}.json"]
    assert keys(bucket, "site/open/") == [f"site/open/{bad}.json"]


@pytest.mark.parametrize(
    ("values", "named"),
    [({"SWEEP_AFTER_SECONDS": "15m"}, "SWEEP_AFTER_SECONDS"), ({}, "DICOM_BUCKET")],
)
def test_a_bad_environment_is_a_config_error_naming_the_variable(monkeypatch, values, named):
    for name in ("DICOM_BUCKET", "SWEEP_AFTER_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(Exception, match=named) as raised:
        inline_handler("sweeper")({}, None)

    assert type(raised.value).__name__ == "ConfigError"
