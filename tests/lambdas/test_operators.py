"""storescp-redrive and storescp-lookup against the local pipeline (moto, the real ASL, the
HealthImaging fake)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest

from lambdas.executions import DEFAULT_POLL_SECONDS, execution_input
from lambdas.layout import BATCHES_PREFIX
from lambdas.operators import lookup_main, redrive_main
from scp.job_records import direct_item
from tests.e2e.demo import operator_command
from tests.fakes.healthimaging import DATASTORE_ID
from tests.fakes.pipeline import create_job_table, local_pipeline
from tests.lambdas.batches import write_batch
from tests.support.scp import REPO


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
    """GIVEN a batch the trigger never started, THEN redrive asks for the bucket, and with it
    starts the execution the trigger would have started (same input: its imports then run as
    any batch's do, which the other tests follow to the end; here it would wait out the
    production 30 s before its first status check, so it is stopped once seen running)."""
    s3, sfn = pipeline.moto.client("s3"), pipeline.moto.client("stepfunctions")
    manifest = write_batch(s3, pipeline.bucket, 1)
    args = ["--state-machine-arn", pipeline.state_machine_arn, manifest["batchId"], *cli(pipeline)]

    assert redrive_main(args) == 1
    assert "pass --bucket" in capsys.readouterr().err
    assert redrive_main([*args, "--bucket", pipeline.bucket]) == 0
    (execution,) = pipeline.executions()
    assert execution["name"] == manifest["batchId"] and execution["status"] == "RUNNING"
    key = f"{BATCHES_PREFIX}{manifest['batchId']}.json"
    started = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started == execution_input(pipeline.bucket, key, manifest, DEFAULT_POLL_SECONDS)
    sfn.stop_execution(executionArn=execution["executionArn"])


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


def _stack(pipeline) -> str:
    """A stack in moto whose outputs name the pipeline's resources, as the template's do."""
    name = f"stack-{uuid.uuid4().hex[:8]}"
    outputs = {
        "StateMachineArn": pipeline.state_machine_arn,
        "JobTableName": pipeline.table_name,
        "DicomBucketName": pipeline.bucket,
    }
    body = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {k: {"Value": v} for k, v in outputs.items()},
    }
    pipeline.moto.client("cloudformation").create_stack(
        StackName=name, TemplateBody=json.dumps(body)
    )
    return name


def test_stack_outputs_stand_in_for_the_options_and_errors_are_sentences(pipeline, capsys):
    stack = _stack(pipeline)
    capsys.readouterr()
    assert lookup_main(["--stack", stack, "--sop", "1.2.3.4", *cli(pipeline)]) == 1
    assert capsys.readouterr().out.startswith("no record: not received")  # the table answered
    # An id with no execution and no manifest (the bucket from the stack): one sentence.
    assert redrive_main(["--stack", stack, "UNKNOWN_ID", *cli(pipeline)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"storescp-redrive: batch UNKNOWN_ID has no execution and no manifest "
        f"s3://{pipeline.bucket}/batches/UNKNOWN_ID.json: check the batch id (the batchId of "
        'the SCP\'s "batch closed" log line)'
    ]
    assert redrive_main(["--stack", "no-such-stack", "b1", *cli(pipeline)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "storescp-redrive: no stack 'no-such-stack' in this Region: check --stack and --region "
        "(or AWS_DEFAULT_REGION)"
    ]
    assert lookup_main(["--sop", "1.2.3", *cli(pipeline)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "storescp-lookup: give --table, or --stack with the stack's name to read it from its "
        "JobTableName output"
    ]
    assert lookup_main(["--table", "missing", "--sop", "1.2.3", *cli(pipeline)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("storescp-lookup: ") and line.endswith(
        "(Query): check --table or --stack and --region"
    )


def test_without_credentials_the_commands_say_so_in_one_line(tmp_path):
    """The console scripts as an operator runs them, with nothing in the credential chain."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AWS_DEFAULT_REGION": "eu-west-2",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    bin_dir = Path(sys.executable).parent
    for argv in (
        [bin_dir / "storescp-lookup", "--table", "t", "--sop", "1.2.3"],
        [bin_dir / "storescp-redrive", "--stack", "storescp", "b1"],
    ):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        assert done.stderr.splitlines() == [
            f"{argv[0].name}: no AWS credentials: set AWS_PROFILE (after `aws sso login` or "
            "`aws configure`) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ]


def test_the_demos_commands_work_when_pasted(pipeline):
    """What `make demo` prints, run by a shell in the repository with no AWS settings."""
    endpoint, env = pipeline.moto.endpoint, {"PATH": os.environ["PATH"], "HOME": "/nonexistent"}

    def paste(line: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", line], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
        )

    lookup = paste(
        operator_command(
            "storescp-lookup", endpoint, "--table", pipeline.table_name, "--study", "1.2.3"
        )
    )
    assert (lookup.returncode, lookup.stderr) == (1, "")
    assert lookup.stdout.startswith("no record: not received")
    redrive = paste(
        operator_command(
            "storescp-redrive",
            endpoint,
            *("--state-machine-arn", pipeline.state_machine_arn, "b-1"),
        )
    )
    assert redrive.returncode == 1
    assert redrive.stderr.splitlines() == [
        "storescp-redrive: batch b-1 has no execution; pass --bucket (the DICOM bucket) so "
        "that its manifest can be read"
    ]
