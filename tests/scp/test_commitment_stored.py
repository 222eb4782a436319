"""Storage commitment on durable storage with an S3 store (COMMITMENT_COMMIT_ON=stored), and a
SIGKILL between N-ACTION and report with the job table: our SCP as a real process, S3 and
DynamoDB on the moto server over HTTP, pynetdicom as the modality. No import runs here, so a
report that arrives proves it waited for no import."""

from __future__ import annotations

import queue
import time
import uuid
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from lambdas.operators import in_progress, lookup, lookup_main
from scp.commitment.job_table import JobTableInstances
from scp.commitment.outcome import COMMITTED, FAILED, WAITING
from scp.job_records import DAY, stored_item
from tests.fakes.pipeline import create_job_table
from tests.scp.test_lifecycle import series_files, wait_until
from tests.support.aws import REGION
from tests.support.commitment import Modality, references
from tests.support.figures import report_figure
from tests.support.scp import ScpProcess

CT = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture
def aws(moto):
    """A bucket and a job table of their own on the session's moto server."""
    name = f"stored-{uuid.uuid4().hex[:8]}"
    moto.client("s3").create_bucket(Bucket=name)
    create_job_table(moto.client("dynamodb"), name)
    table = boto3.resource("dynamodb", endpoint_url=moto.endpoint, region_name=REGION).Table(name)
    return moto, name, table


@pytest.fixture
def modality():
    mod = Modality("MODALITY").listen()
    yield mod
    mod.stop()


def scp(tmp_path: Path, aws, modality: Modality, table_name: str = "") -> ScpProcess:
    moto, bucket, table = aws
    return ScpProcess(
        log_dir=tmp_path,
        env={"AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint},
        storage=f"s3://{bucket}/",
        s3_endpoint_url=moto.endpoint,
        job_table=table_name or table.name,
        commitment_commit_on="stored",
        remote_aes=f"MODALITY=127.0.0.1:{modality.port}:store+commitment",
        workers=1,
    )


def items_of(table, sop: str) -> list[dict]:
    return table.query(
        IndexName="sopInstanceUID-index",
        KeyConditionExpression=Key("sopInstanceUID").eq(sop),
    )["Items"]


def transaction_item(table, transaction: str) -> dict:
    key = {"jobId": f"COMMITMENT#{transaction}", "recordId": "TRANSACTION"}
    return table.get_item(Key=key, ConsistentRead=True)["Item"]


def test_stored_items_commit_only_when_committing_on_storage_and_an_import_wins(aws):
    _, _, table = aws
    sops = [f"1.2.826.0.1.3.{i}" for i in range(3)]
    for sop in sops:
        table.put_item(Item=stored_item("1.2.3", "1.2.3.4", sop, CT, "b1", "incoming/x", 30))
    for sop, status in ((sops[1], "FAILED"), (sops[2], "IMPORTED")):  # RecordResults, attempt 1
        table.put_item(Item={"jobId": "job-1", "recordId": f"INSTANCE#{sop}", "attempt": 1,
                             "recordedAt": "2026-12-06T00:00:00Z", "sopInstanceUID": sop,
                             "studyInstanceUID": "1.2.3", "batchId": "b1",
                             "sopClassUID": CT, "importStatus": status})  # fmt: skip
    on_import = JobTableInstances(table).find(sops)
    on_storage = JobTableInstances(table, commit_on_stored=True).find(sops)
    assert [on_import[s].state for s in sops] == [WAITING, FAILED, COMMITTED]
    assert [on_storage[s].state for s in sops] == [COMMITTED, FAILED, COMMITTED]
    assert on_storage[sops[0]].sop_class_uid == CT  # 0x0119 can be checked
    # storescp-lookup, the other reader of both indexes: one line per instance, the latest.
    assert [i["importStatus"] for i in lookup(table, sop=sops[2])] == ["IMPORTED"]
    by_study = lookup(table, study="1.2.3")
    assert [(i["sopInstanceUID"], i["importStatus"]) for i in by_study] == list(
        zip(sops, ["STORED", "FAILED", "IMPORTED"], strict=True)
    )
    assert in_progress(table, "1.2.3") == []  # job items only


def test_commit_on_stored_reports_in_seconds_with_no_import(tmp_path, aws, modality, capsys):
    moto, bucket, table = aws
    files = series_files(tmp_path, 3, f"stored-{uuid.uuid4().hex[:6]}")
    refs = references(files)
    with scp(tmp_path, aws, modality) as server:
        transaction, last_store = modality.send_and_ask(server.port, files)
        report = modality.next_report(timeout=20)
        seconds = time.monotonic() - last_store
    assert str(report.info.TransactionUID) == transaction and report.event_type == 1
    assert sorted(report.committed()) == sorted(sop for _, sop in refs)
    # What committed them: one STORED item each, recorded before Success, and nothing imported.
    before = time.time()
    for sop_class, sop in refs:
        (item,) = items_of(table, sop)
        assert (item["importStatus"], item["attempt"], item["sopClassUID"]) == (
            "STORED",
            0,
            sop_class,
        )
        assert item["jobId"].startswith("STORED#") and item["key"].startswith("incoming/")
        assert abs(int(item["expiresAt"]) - (before + 365 * DAY)) < 120
        key = moto.client("s3").head_object(Bucket=bucket, Key=item["key"])
        assert key["ContentLength"] > 0
    done = transaction_item(table, transaction)
    assert done["state"] == "REPORTED" and "pendingCommitment" not in done
    assert abs(int(done["expiresAt"]) - (before + 365 * DAY)) < 120
    args = ["--endpoint-url", moto.endpoint, "--region", REGION, "--table", table.name]
    capsys.readouterr()
    assert lookup_main([*args, "--sop", refs[0][1]]) == 0
    out = capsys.readouterr().out
    assert f"{refs[0][1]}  STORED" in out and "not imported yet" in out
    report_figure(f"commit on stored (S3 on moto): last C-STORE to report {seconds:.2f} s")
    assert seconds < 10


def test_an_unrecorded_instance_is_a_failed_c_store_and_stays_in_its_batch(tmp_path, aws, modality):
    moto, bucket, _ = aws
    (path,) = series_files(tmp_path, 1, f"unrecorded-{uuid.uuid4().hex[:6]}")
    with scp(tmp_path, aws, modality, table_name="no-such-table") as server:
        assoc = modality.associate(server.port)
        status = assoc.send_c_store(str(path)).Status
        assoc.release()
        s3 = moto.client("s3")
        assert wait_until(lambda: s3.list_objects_v2(Bucket=bucket, Prefix="batches/")["KeyCount"])
        lines = [line for line in server.log_lines() if line.get("event") == "store-failed"]
    assert status == 0xA700  # out of resources: the modality sends it again
    assert "not recorded for storage commitment" in lines[0]["reason"]
    stored = s3.list_objects_v2(Bucket=bucket, Prefix="incoming/")["Contents"]
    assert len(stored) == 1  # kept, and in its batch's manifest: imported as usual
    (manifest,) = s3.list_objects_v2(Bucket=bucket, Prefix="batches/")["Contents"]
    body = s3.get_object(Bucket=bucket, Key=manifest["Key"])["Body"].read().decode()
    assert stored[0]["Key"] in body


def test_a_request_survives_sigkill_with_the_job_table_and_is_reported_once(
    tmp_path, aws, modality
):
    """Killed after the N-ACTION's answer (the association released), before the report: the
    restarted SCP finds the transaction in the job table and reports it, once."""
    _, _, table = aws
    files = series_files(tmp_path, 2, f"killed-{uuid.uuid4().hex[:6]}")
    server = scp(tmp_path, aws, modality).start()
    try:
        assoc = modality.associate(server.port)
        assert assoc.send_c_store(str(files[0])).Status == 0
        status, transaction = modality.request(assoc, references(files))
        assoc.release()
        assert status == 0x0000  # recorded durably before this answer
        # The association is gone: its hold goes with the next pass (the report can only
        # wait, the second instance is not there).
        assert wait_until(lambda: "heldBy" not in transaction_item(table, transaction))
        server.kill()
        with pytest.raises(queue.Empty):
            modality.next_report(timeout=0.5)
        assert transaction_item(table, transaction)["state"] == "PENDING"
        server.start()
        assoc = modality.associate(server.port)
        assert assoc.send_c_store(str(files[1])).Status == 0
        assoc.release()
        report = modality.next_report(timeout=20)
        with pytest.raises(queue.Empty):
            modality.next_report(timeout=3)  # once
    finally:
        server.stop()
    assert str(report.info.TransactionUID) == transaction
    assert report.event_type == 1 and len(report.committed()) == 2
    item = transaction_item(table, transaction)
    assert (item["state"], item["attempts"]) == ("REPORTED", Decimal(1))
