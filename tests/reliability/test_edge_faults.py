"""Edge mode under faults, end to end: a modality -> edge SCP (folder) -> forwarder -> a relay
-> moto S3 -> the import workflow (real ASL, HealthImaging fake) -> the job table.

Afterwards every instance acknowledged with 0x0000 has exactly one job-table record, IMPORTED
(never a conflict), and every batch was imported by one job. These run in `make reliability`
only (a minute and more each, the import workflow included); `make test` has the same faults
against S3 alone in tests/scp/test_edge.py.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scp.contracts import INSTANCE_RECORD_PREFIX
from tests.fakes.pipeline import Pipeline, local_pipeline
from tests.reliability.conftest import FULL
from tests.reliability.instances import iter_instances
from tests.reliability.sender import SteadySender
from tests.support.edge import bucket_objects, forwarding, wait_for
from tests.support.figures import report_figure
from tests.support.relay import Relay

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not FULL, reason="the whole workflow: make reliability"),
]

OUTAGE = 180.0  # seconds S3 is unreachable while the study arrives
KILLS = 5


@pytest.fixture
def pipeline(moto) -> Iterator[Pipeline]:
    with local_pipeline(moto, f"edge-{uuid.uuid4().hex[:8]}") as p:
        yield p


@pytest.fixture
def relay(moto) -> Iterator[Relay]:
    with Relay(moto.port) as r:
        yield r


def start_edge(start_scp, storage: Path, pipeline: Pipeline, relay: Relay, *flags: str):
    return start_scp(
        str(storage),
        "--edge-forward-to",
        f"s3://{pipeline.bucket}/",
        "--s3-endpoint-url",
        f"http://127.0.0.1:{relay.port}",
        *flags,
    )


def instance_records(pipeline: Pipeline) -> dict[str, list[dict]]:
    """Every instance record of the job table by SOP Instance UID (one scan, not a query per
    instance: thousands of them would take longer than the import)."""
    pages = (
        pipeline.moto.client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=pipeline.table_name,
            FilterExpression="begins_with(recordId, :instance)",
            ExpressionAttributeValues={":instance": {"S": INSTANCE_RECORD_PREFIX}},
        )
    )
    records: dict[str, list[dict]] = {}
    for page in pages:
        for item in page["Items"]:
            records.setdefault(item["sopInstanceUID"]["S"], []).append(item)
    return records


def imported_once(pipeline: Pipeline, acked: set[str], timeout: float = 900) -> dict[str, list]:
    """Feed S3 events to the trigger until every acknowledged instance has a record; then the
    records of each (every one must be a single IMPORTED record)."""
    deadline = time.monotonic() + timeout
    while True:
        while pipeline.deliver(wait_seconds=1):
            pass
        records = instance_records(pipeline)
        missing = acked - set(records)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not missing, f"{len(missing)} acknowledged instances never imported"
    return {sop: records[sop] for sop in acked}


def check_imported_once(pipeline: Pipeline, acked: set[str]) -> int:
    """Each acknowledged instance imported once, each batch by one job; returns the batches."""
    records = imported_once(pipeline, acked)
    for sop, items in records.items():
        assert [i["importStatus"]["S"] for i in items] == ["IMPORTED"], f"{sop}: {items}"
    batches = {items[0]["batchId"]["S"] for items in records.values()}
    executions = pipeline.wait_for_executions(len(batches))
    assert len(executions) == len(batches), "a batch started a second execution"
    assert len(pipeline.fake.jobs) == len(batches), "a batch was imported twice"
    return len(batches)


def test_s3_unreachable_while_a_study_arrives(start_scp, pipeline, relay, tmp_path):
    """GIVEN S3 unreachable (the relay refuses) for OUTAGE seconds while a modality stores,
    THEN every instance is acknowledged; WHEN S3 is back, THEN the backlog drains and each
    instance is imported once."""
    relay.refuse()
    scp = start_edge(start_scp, tmp_path / "edge", pipeline, relay)
    sender = SteadySender(scp.port, iter_instances(series=61, side=64), tmp_path, interval=0.01)
    sender.start()
    time.sleep(OUTAGE)
    sender.finish()
    assert set(sender.statuses.values()) == {0x0000}, "an instance was refused during the outage"
    health = wait_for(
        lambda: (f := forwarding(scp)).get("failedAttempts") and f,
        15,
        "a failed forwarding attempt",
    )
    assert health["backlogFiles"] == len(sender.acked)
    relay.refuse(False)
    started = time.monotonic()
    wait_for(lambda: forwarding(scp).get("backlogFiles") == 0, 120, "drained")
    drained = time.monotonic() - started
    batches = check_imported_once(pipeline, sender.acked)
    resumed = [x for x in scp.log_lines() if x.get("event") == "edge-forward-resumed"]
    assert len(resumed) == 1
    report_figure(
        f"edge S3 outage {OUTAGE:.0f} s: {len(sender.acked)} instances acknowledged during it, "
        f"backlog drained {drained:.1f} s after S3 returned, {batches} batch(es) imported once"
    )


def test_sigkill_during_forwarding_and_restart(start_scp, pipeline, relay, tmp_path):
    """GIVEN a backlog of several batches and a slow S3 (80 ms round trip, 40 ms per request),
    WHEN the edge SCP is SIGKILLed while it forwards, KILLS times, and restarted, THEN nothing
    acknowledged is lost and no batch is imported twice (a batch half uploaded is finished;
    a manifest PUT again does not start a second import)."""
    storage = tmp_path / "edge"
    relay.refuse()
    scp = start_edge(start_scp, storage, pipeline, relay, "--edge-uploads", "2")
    acked: set[str] = set()
    for series in range(70, 74):  # one association (one batch) per series
        sender = SteadySender(scp.port, iter_instances(series=series, side=64), tmp_path)
        sender.start()
        sender.wait_for_acks(12)
        sender.finish()
        acked |= sender.acked
    relay.one_way, relay.response_wait = 0.04, 0.04
    relay.refuse(False)
    s3 = pipeline.moto.client("s3")
    kills_mid_batch = 0
    for _ in range(KILLS):
        before = len(bucket_objects(s3, pipeline.bucket, "incoming/"))
        wait_for(
            lambda b=before: len(bucket_objects(s3, pipeline.bucket, "incoming/")) > b,
            60,
            "forwarding in progress",
        )
        scp.kill()
        pending = list((storage / "batches").glob("*.json"))
        kills_mid_batch += bool(pending)
        scp.start()
    wait_for(lambda: forwarding(scp).get("backlogFiles") == 0, 120, "drained")
    batches = check_imported_once(pipeline, acked)
    assert batches == 4
    report_figure(
        f"edge SIGKILL x{KILLS} while forwarding ({kills_mid_batch} with batches pending): "
        f"{len(acked)} acknowledged instances imported once, {batches} batches, one job each"
    )
