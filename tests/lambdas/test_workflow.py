"""The real ASL executed by moto's Step Functions interpreter: HealthImaging tasks (aws-sdk
integrations) answered by the fake, Lambda tasks run by our handlers."""

from __future__ import annotations

import io
import json
import uuid

import pydicom
import pytest

from tests.fakes import healthimaging
from tests.fakes.pipeline import local_pipeline
from tests.lambdas.batches import batch_id, manifest_for, write_batch


@pytest.fixture
def pipeline(moto):
    with local_pipeline(moto, f"wf-{uuid.uuid4().hex[:8]}") as p:
        yield p


def run_batch(pipeline, count=3, mark: str | None = None, **kwargs):
    """Write a batch and run it; `mark` names a set of the fake (failing_sops, warning_sops) that
    gets the batch's second instance (or only one)."""
    manifest = write_batch(pipeline.moto.client("s3"), pipeline.bucket, count, **kwargs)
    if mark:
        getattr(pipeline.fake, mark).add(manifest["instances"][min(1, count - 1)]["sopInstanceUID"])
    assert pipeline.deliver(wait_seconds=5) >= 1
    (execution,) = pipeline.wait_for_executions(1)
    return manifest, execution


def starts(pipeline) -> list[dict]:
    return [params for op, params in pipeline.fake.requests if op == "StartDICOMImportJob"]


def failed_error(pipeline, execution) -> str:
    return pipeline.history(execution["executionArn"])[-1]["executionFailedEventDetails"]["error"]


def test_success_records_every_instance_with_its_primary_image_set(pipeline):
    manifest, execution = run_batch(pipeline, count=4, series_count=2)

    assert execution["status"] == "SUCCEEDED"
    assert execution["name"] == manifest["batchId"]
    image_sets = set()
    for instance in manifest["instances"]:
        (item,) = pipeline.records_for_sop(instance["sopInstanceUID"])
        assert item["importStatus"] == "IMPORTED" and item["isPrimary"] is True
        assert len(item["imageSetId"]) == 32 and item["imageSetVersion"] == 1
        image_sets.add(item["imageSetId"])
    assert len(image_sets) == 2
    study_items = pipeline.records_for_study(manifest["studyInstanceUID"])
    job = next(i for i in study_items if i["recordId"] == "JOB")
    assert job["jobStatus"] == "COMPLETED"
    assert job["outputS3Uri"].endswith(f"-DicomImport-{job['jobId']}/")
    assert (job["importedCount"], job["conflictCount"], job["failedCount"]) == (4, 0, 0)
    assert len(study_items) == 5
    (start,) = starts(pipeline)
    assert start["clientToken"] == start["jobName"] == manifest["batchId"]
    assert start["outputS3Uri"].endswith(f"/{manifest['batchId']}/")


def test_instances_imported_as_primary_are_tagged_for_expiry(pipeline):
    manifest, _ = run_batch(pipeline, count=2)

    s3 = pipeline.moto.client("s3")
    for instance in manifest["instances"]:
        tags = s3.get_object_tagging(Bucket=pipeline.bucket, Key=instance["key"])["TagSet"]
        assert tags == [{"Key": "storescp-import", "Value": "primary"}]


def test_throttled_start_is_retried_by_the_state_machine(pipeline):
    pipeline.fake.throttle_starts = 2

    manifest, execution = run_batch(pipeline)

    assert execution["status"] == "SUCCEEDED"
    assert len(starts(pipeline)) == 3
    assert len(pipeline.fake.jobs) == 1
    history = pipeline.history(execution["executionArn"])
    failures = [e for e in history if e["type"] == "TaskFailed"]
    assert failures
    assert {e["taskFailedEventDetails"]["error"] for e in failures} == {
        "MedicalImaging.ThrottlingException"
    }
    for instance in manifest["instances"]:
        assert pipeline.records_for_sop(instance["sopInstanceUID"])[0]["importStatus"] == "IMPORTED"


def test_failed_job_fails_the_execution_and_every_instance(pipeline):
    pipeline.fake.fail_jobs = True

    manifest, execution = run_batch(pipeline)

    assert execution["status"] == "FAILED"
    assert failed_error(pipeline, execution) == "ImportFailed"
    (job,) = pipeline.job_items()
    assert job["jobStatus"] == {"S": "FAILED"}
    assert job["message"] == {"S": "fake told to fail the job"}
    for instance in manifest["instances"]:
        (item,) = pipeline.records_for_sop(instance["sopInstanceUID"])
        assert item["importStatus"] == "FAILED"
        assert item["reason"] == "import job FAILED: fake told to fail the job"


def test_completed_job_with_failed_files_records_which_and_why(pipeline):
    manifest, execution = run_batch(pipeline, 4, mark="failing_sops")
    bad = manifest["instances"][1]["sopInstanceUID"]

    assert execution["status"] == "FAILED"
    assert failed_error(pipeline, execution) == "ImportFailed"
    (job,) = pipeline.job_items()
    assert job["jobStatus"] == {"S": "COMPLETED"}
    assert (job["importedCount"], job["failedCount"]) == ({"N": "3"}, {"N": "1"})
    for instance in manifest["instances"]:
        (item,) = pipeline.records_for_sop(instance["sopInstanceUID"])
        if instance["sopInstanceUID"] == bad:
            assert item["importStatus"] == "FAILED"
            assert item["reason"] == (
                "ValidationException: DICOM attribute TransferSyntaxUID does not exist"
            )
        else:
            assert item["importStatus"] == "IMPORTED"


def test_warning_is_recorded_on_an_imported_instance(pipeline):
    manifest, execution = run_batch(pipeline, 2, mark="warning_sops")
    warned = manifest["instances"][1]["sopInstanceUID"]

    assert execution["status"] == "SUCCEEDED"
    (item,) = pipeline.records_for_sop(warned)
    assert item["importStatus"] == "IMPORTED"
    assert item["warnings"] == [
        "InvalidOffsetTable: The file was imported but contains an invalid offset table, may see "
        "issues when retrieving certain frames."
    ]
    (job,) = pipeline.job_items()
    assert job["warningCount"] == {"N": "1"}


def resend_with_other_patient(s3, bucket: str, manifest: dict) -> dict:
    """The same SOP instances again in a new batch, their PatientID changed."""
    bid = batch_id()
    instances = []
    for instance in manifest["instances"]:
        body = s3.get_object(Bucket=bucket, Key=instance["key"])["Body"].read()
        ds = pydicom.dcmread(io.BytesIO(body))
        ds.PatientID = "OTHER-PATIENT"
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        key = instance["key"].replace(manifest["batchId"], bid)
        s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
        instances.append({**instance, "key": key, "bytes": len(buffer.getvalue())})
    again = manifest_for(bid, manifest["studyInstanceUID"], instances)
    s3.put_object(Bucket=bucket, Key=f"batches/{bid}.json", Body=json.dumps(again).encode())
    return again


def test_conflicting_instance_is_a_conflict_not_a_success(pipeline):
    s3 = pipeline.moto.client("s3")
    first, _ = run_batch(pipeline, count=2)
    again = resend_with_other_patient(s3, pipeline.bucket, first)

    pipeline.deliver(wait_seconds=5)
    executions = {e["name"]: e for e in pipeline.wait_for_executions(2)}

    execution = executions[again["batchId"]]
    assert execution["status"] == "FAILED"
    assert failed_error(pipeline, execution) == "ImportConflict"
    for instance in again["instances"]:
        items = {i["batchId"]: i for i in pipeline.records_for_sop(instance["sopInstanceUID"])}
        assert items[first["batchId"]]["importStatus"] == "IMPORTED"
        conflict = items[again["batchId"]]
        assert conflict["importStatus"] == "CONFLICT" and conflict["isPrimary"] is False
        assert conflict["imageSetId"] != items[first["batchId"]]["imageSetId"]
        tags = s3.get_object_tagging(Bucket=pipeline.bucket, Key=instance["key"])["TagSet"]
        assert tags == []  # a conflicting instance never expires on its own
    job = next(i for i in pipeline.job_items() if i["batchId"]["S"] == again["batchId"])
    assert job["conflictCount"] == {"N": "2"}


def test_unknown_datastore_is_caught_and_recorded(pipeline):
    pipeline.fake.datastore_id = "f" * 32

    manifest, execution = run_batch(pipeline)

    assert execution["status"] == "FAILED"
    assert failed_error(pipeline, execution) == "ImportWorkflowFailed"
    assert pipeline.fake.jobs == {}
    (item,) = pipeline.records_for_sop(manifest["instances"][0]["sopInstanceUID"])
    assert item["jobId"] == manifest["batchId"]
    assert item["importStatus"] == "FAILED"
    assert item["reason"].startswith(
        "import workflow failed: MedicalImaging.ResourceNotFoundException: no such datastore"
    )


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


def test_a_batch_over_the_per_job_file_quota_fails_with_the_reason(pipeline, monkeypatch):
    monkeypatch.setattr(healthimaging, "MAX_FILES_PER_JOB", 2)  # 5,000 in the quota: too slow

    manifest, execution = run_batch(pipeline, 3)

    assert execution["status"] == "FAILED"
    assert failed_error(pipeline, execution) == "ImportFailed"
    (item,) = pipeline.records_for_sop(manifest["instances"][0]["sopInstanceUID"])
    assert item["reason"].startswith("import job FAILED: input exceeds 2 files")
