"""The real ASL executed by moto's Step Functions interpreter, Task states run by our handlers."""

from __future__ import annotations

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
