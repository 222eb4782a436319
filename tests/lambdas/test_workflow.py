"""The real ASL executed by moto's Step Functions interpreter, Task states run by our handlers."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.fakes.pipeline import local_pipeline
from tests.lambdas.batches import write_batch


@pytest.fixture
def pipeline(moto):
    with local_pipeline(moto, f"wf-{uuid.uuid4().hex[:8]}") as p:
        yield p


def run_batch(pipeline, count=3, **kwargs):
    manifest = write_batch(pipeline.moto.client("s3"), pipeline.bucket, count, **kwargs)
    assert pipeline.deliver(wait_seconds=5) >= 1
    (execution,) = pipeline.wait_for_executions(1)
    return manifest, execution


def test_success_records_every_instance_with_its_image_set(pipeline):
    manifest, execution = run_batch(pipeline, count=4, series_count=2)

    assert execution["status"] == "SUCCEEDED"
    assert execution["name"] == manifest["batchId"]
    for instance in manifest["instances"]:
        (item,) = pipeline.records_for_sop(instance["sopInstanceUID"])
        assert item["importStatus"] == "IMPORTED"
        assert len(item["imageSetId"]) == 32
    study_items = pipeline.records_for_study(manifest["studyInstanceUID"])
    job = next(i for i in study_items if i["recordId"] == "JOB")
    assert job["jobStatus"] == "COMPLETED"
    assert job["importedCount"] == 4 and job["failedCount"] == 0 and job["imageSetCount"] == 2
    assert len(study_items) == 5


def starts(pipeline) -> list[dict]:
    return [params for op, params in pipeline.fake.requests if op == "StartDICOMImportJob"]


def test_throttled_start_is_retried_by_the_state_machine(pipeline):
    pipeline.fake.throttle_starts = 2

    manifest, execution = run_batch(pipeline)

    assert execution["status"] == "SUCCEEDED"
    assert len(starts(pipeline)) == 3
    assert [name for name, _ in pipeline.invocations].count("start-import") == 3
    assert len(pipeline.fake.jobs) == 1
    history = pipeline.history(execution["executionArn"])
    failures = [e for e in history if e["type"] == "LambdaFunctionFailed"]
    assert failures  # moto's history keeps one event per retried Task, not one per attempt
    assert {e["lambdaFunctionFailedEventDetails"]["error"] for e in failures} == {
        "ThrottlingException"
    }
    for instance in manifest["instances"]:
        assert pipeline.records_for_sop(instance["sopInstanceUID"])[0]["importStatus"] == "IMPORTED"


def test_failed_job_fails_the_execution_and_every_instance(pipeline):
    pipeline.fake.fail_jobs = True

    manifest, execution = run_batch(pipeline)

    assert execution["status"] == "FAILED"
    job = next(i for i in pipeline.job_items())
    assert job["jobStatus"] == {"S": "FAILED"}
    assert job["message"] == {"S": "fake told to fail the job"}
    for instance in manifest["instances"]:
        (item,) = pipeline.records_for_sop(instance["sopInstanceUID"])
        assert item["importStatus"] == "FAILED"
        assert item["reason"] == "import job FAILED: fake told to fail the job"


def test_completed_job_with_failed_files_records_which_and_why(pipeline):
    s3 = pipeline.moto.client("s3")
    manifest = write_batch(s3, pipeline.bucket, 4)
    bad = manifest["instances"][1]["sopInstanceUID"]
    pipeline.fake.failing_sops.add(bad)

    pipeline.deliver(wait_seconds=5)
    (execution,) = pipeline.wait_for_executions(1)

    assert execution["status"] == "FAILED"
    assert (
        pipeline.history(execution["executionArn"])[-1]["executionFailedEventDetails"]["error"]
        == "ImportFailed"
    )
    (job,) = pipeline.job_items()
    assert job["jobStatus"] == {"S": "COMPLETED"}
    assert (job["importedCount"], job["failedCount"]) == ({"N": "3"}, {"N": "1"})
    for instance in manifest["instances"]:
        (item,) = pipeline.records_for_sop(instance["sopInstanceUID"])
        if instance["sopInstanceUID"] == bad:
            assert item["importStatus"] == "FAILED"
            assert item["reason"] == "ValidationException: fake told to fail this file"
        else:
            assert item["importStatus"] == "IMPORTED"


def test_invalid_request_is_caught_and_recorded(pipeline, monkeypatch):
    monkeypatch.setenv("DATASTORE_ID", "NOT-A-DATASTORE")

    manifest, execution = run_batch(pipeline)

    assert execution["status"] == "FAILED"
    assert pipeline.fake.jobs == {}
    (item,) = pipeline.records_for_sop(manifest["instances"][0]["sopInstanceUID"])
    assert item["jobId"] == manifest["batchId"]
    assert item["reason"].startswith("import workflow failed: ValidationException:")
    assert "datastoreId does not match" in item["reason"]


def test_duplicated_s3_event_gives_one_execution_and_one_import_job(pipeline):
    s3, sqs = pipeline.moto.client("s3"), pipeline.moto.client("sqs")
    manifest = write_batch(s3, pipeline.bucket)
    key = f"batches/{manifest['batchId']}.json"
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": pipeline.bucket}, "object": {"key": key}},
            }
        ]
    }
    sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=json.dumps(event))
    sqs.send_message(QueueUrl=pipeline.queue_url, MessageBody=json.dumps({"Event": "s3:TestEvent"}))

    while pipeline.deliver(wait_seconds=1):
        pass
    pipeline.wait_for_executions(1)
    pipeline.deliver()  # a redelivery after the execution finished

    assert len(pipeline.executions()) == 1
    assert len(starts(pipeline)) == 1
    assert len(pipeline.job_items()) == 1
