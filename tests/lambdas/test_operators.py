"""storescp-redrive and storescp-lookup against the local pipeline (moto, the real ASL, the
HealthImaging fake)."""

from __future__ import annotations

import uuid

import boto3
import pytest

from lambdas.operators import lookup_main, redrive_main
from scp.job_records import direct_item
from tests.fakes.healthimaging import DATASTORE_ID
from tests.fakes.pipeline import create_job_table, local_pipeline
from tests.lambdas.batches import write_batch


@pytest.fixture
def pipeline(moto):
    with local_pipeline(moto, f"op-{uuid.uuid4().hex[:8]}") as p:
        yield p


def cli(pipeline) -> list[str]:
    return ["--endpoint-url", pipeline.moto.endpoint, "--region", "us-east-1"]


def test_a_failed_batch_redriven_is_imported_by_attempt_2(pipeline, capsys):
    manifest = write_batch(pipeline.moto.client("s3"), pipeline.bucket, 2)
    bid, sop = manifest["batchId"], manifest["instances"][0]["sopInstanceUID"]
    pipeline.fake.fail_jobs = True
    pipeline.deliver(wait_seconds=5)
    (first,) = pipeline.wait_for_executions(1)
    assert first["status"] == "FAILED"
    pipeline.fake.fail_jobs = False
    capsys.readouterr()  # the functions' log lines
    redrive = ["--state-machine-arn", pipeline.state_machine_arn, bid, *cli(pipeline)]
    lookup = ["--table", pipeline.table_name, "--sop", sop, *cli(pipeline)]
    assert lookup_main(lookup) == 0
    assert " FAILED " in capsys.readouterr().out

    assert redrive_main(redrive) == 0
    assert f"batch {bid}: attempt 2 started" in capsys.readouterr().out
    executions = {e["name"]: e for e in pipeline.wait_for_executions(2)}
    capsys.readouterr()

    assert executions[f"{bid}-attempt-2"]["status"] == "SUCCEEDED"
    tokens = [p["clientToken"] for op, p in pipeline.fake.requests if op == "StartDICOMImportJob"]
    assert tokens == [bid, f"{bid}.2"]  # a new token, so HealthImaging starts a new job
    assert len(pipeline.fake.jobs) == 2
    assert lookup_main(lookup) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"{sop}  IMPORTED  image set ") and f"batch {bid} attempt 2" in line
    assert redrive_main(redrive) == 1  # attempt 2 succeeded: nothing to redrive
    assert "pass --force" in capsys.readouterr().err


def test_lookup_by_study_lists_each_instance_once(pipeline, capsys):
    manifest = write_batch(pipeline.moto.client("s3"), pipeline.bucket, 3)
    pipeline.deliver(wait_seconds=5)
    pipeline.wait_for_executions(1)
    study = ["--table", pipeline.table_name, "--study", manifest["studyInstanceUID"]]
    capsys.readouterr()  # the functions' log lines

    assert lookup_main([*study, "--json", *cli(pipeline)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all('"importStatus": "IMPORTED"' in line for line in lines)
    assert lookup_main(["--table", pipeline.table_name, "--sop", "1.2.3", *cli(pipeline)]) == 1
    assert "no record" in capsys.readouterr().out


def test_a_batch_without_execution_needs_its_bucket(pipeline, capsys):
    manifest = write_batch(pipeline.moto.client("s3"), pipeline.bucket, 1)
    args = ["--state-machine-arn", pipeline.state_machine_arn, manifest["batchId"], *cli(pipeline)]

    assert redrive_main(args) == 1
    assert "pass --bucket" in capsys.readouterr().err
    assert redrive_main([*args, "--bucket", pipeline.bucket]) == 0
    (execution,) = pipeline.wait_for_executions(1)
    assert execution["name"] == manifest["batchId"] and execution["status"] == "SUCCEEDED"


def test_lookup_answers_for_an_instance_the_scp_stored_directly(moto, capsys):
    """The SCP's own item for a StoreDICOM store (scp/job_records.py), as lookup reads it."""
    name = f"direct-{uuid.uuid4().hex[:8]}"
    create_job_table(moto.client("dynamodb"), name)
    table = boto3.resource("dynamodb", endpoint_url=moto.endpoint, region_name="us-east-1")
    item = direct_item(DATASTORE_ID, "1.2.3", "1.2.3.4", "1.2.3.4.5", False, "direct/x.dcm")
    table.Table(name).put_item(Item=item)
    assert lookup_main(["--table", name, "--study", "1.2.3", "--endpoint-url", moto.endpoint]) == 0
    line = capsys.readouterr().out
    assert line.startswith("1.2.3.4.5  CONFLICT  image set -  via StoreDICOM")
