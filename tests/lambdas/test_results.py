"""record_results and record_failure against moto (S3, DynamoDB)."""

from __future__ import annotations

import json
import uuid

import pytest

from lambdas import clients, record_failure, record_results
from lambdas.import_output import job_output_prefix, split_s3_uri
from tests.fakes.healthimaging import DATASTORE_ID
from tests.fakes.pipeline import create_job_table, environment
from tests.lambdas.batches import manifest_for, write_batch

ITEM_LIMIT = 400 * 1024  # DynamoDB's maximum item size


@pytest.fixture
def aws(moto):
    name = f"rr-{uuid.uuid4().hex[:8]}"
    moto.client("s3").create_bucket(Bucket=name)
    create_job_table(moto.client("dynamodb"), name)
    with environment({"AWS_ENDPOINT_URL": moto.endpoint, "JOB_TABLE_NAME": name}):
        yield name


def state_for(bucket: str, manifest: dict, status: str = "COMPLETED", message: str = "") -> dict:
    return {
        "batchId": manifest["batchId"],
        "bucket": bucket,
        "manifestKey": f"batches/{manifest['batchId']}.json",
        "inputS3Uri": f"s3://{bucket}/{manifest['inputPrefix']}",
        "studyInstanceUID": manifest["studyInstanceUID"],
        "pollSeconds": 1,
        "job": {
            "jobId": "job1",
            "datastoreId": DATASTORE_ID,
            "jobStatus": status,
            "message": message,
            "outputS3Uri": f"s3://{bucket}/out/{manifest['batchId']}/",
            "submittedAt": "2026-01-02T03:04:05Z",
            "endedAt": "2026-01-02T03:06:05Z",
        },
    }


def write_output(state: dict, successes: list[dict], failures: list[dict]) -> None:
    job = state["job"]
    bucket, prefix = split_s3_uri(
        job_output_prefix(job["outputS3Uri"], job["datastoreId"], job["jobId"])
    )
    s3 = clients.client("s3")
    s3.put_object(
        Bucket=bucket,
        Key=prefix + "job-output-manifest.json",
        Body=json.dumps({"jobSummary": {"numberOfScannedFiles": 3}}),
    )
    for name, lines in (
        ("SUCCESS/success.ndjson", successes),
        ("FAILURE/failure.ndjson", failures),
    ):
        s3.put_object(
            Bucket=bucket, Key=prefix + name, Body="".join(json.dumps(x) + "\n" for x in lines)
        )


def items(table_name: str) -> dict[str, dict]:
    found = clients.table(table_name).scan()["Items"]
    return {item["recordId"]: item for item in found}


def test_every_input_file_form_is_matched_and_unlisted_files_fail(aws):
    manifest = write_batch(clients.client("s3"), aws, 4)
    state = state_for(aws, manifest)
    keys = [i["key"] for i in manifest["instances"]]
    write_output(
        state,
        [
            {"inputFile": f"s3://{aws}/{keys[0]}", "importResponse": {"imageSetId": "a" * 32}},
            {
                "inputFile": keys[1].removeprefix(manifest["inputPrefix"]),
                "importResponse": {"imageSetId": "b" * 32},
            },
        ],
        [
            {
                "inputFile": keys[2],
                "exception": {"exceptionType": "ValidationException", "message": "bad pixel data"},
            }
        ],
    )

    result = record_results.handler(state)

    assert result == {
        "jobId": "job1",
        "jobStatus": "COMPLETED",
        "importedCount": 2,
        "failedCount": 2,
        "imageSetCount": 2,
    }
    recorded = items(aws)
    sops = [i["sopInstanceUID"] for i in manifest["instances"]]
    assert recorded[f"INSTANCE#{sops[0]}"]["imageSetId"] == "a" * 32
    assert recorded[f"INSTANCE#{sops[1]}"]["imageSetId"] == "b" * 32
    assert recorded[f"INSTANCE#{sops[2]}"]["reason"] == "ValidationException: bad pixel data"
    assert recorded[f"INSTANCE#{sops[3]}"]["reason"] == "not listed in the import job's output"
    job = recorded["JOB"]
    documented = {
        "jobId",
        "jobStatus",
        "submittedAt",
        "inputS3Uri",
        "outputS3Uri",
        "datastoreId",
        "studyDate",
        "studyInstanceUID",
        "seriesInstanceUID",
        "endedAt",
    }
    assert documented <= set(job)
    assert job["studyDate"] == "20260102" and job["batchId"] == manifest["batchId"]


def test_no_item_nears_the_limit_for_a_5000_instance_job(aws):
    study = "1.2.826.0.1.3680043.8.498." + "1" * 36  # 64 characters, the longest UID
    instances = [
        {
            "key": f"incoming/big/{study}/{study[:-5]}{n:05}/{study[:-5]}{n:05}.dcm",
            "sopInstanceUID": f"{study[:-5]}{n:05}",
            "seriesInstanceUID": f"{study[:-5]}{n:05}",
            "bytes": 2_000_000,
        }
        for n in range(5000)
    ]
    manifest = manifest_for("big", study, instances)
    clients.client("s3").put_object(Bucket=aws, Key="batches/big.json", Body=json.dumps(manifest))
    state = state_for(aws, manifest)
    successes = [
        {"inputFile": i["key"], "importResponse": {"imageSetId": f"{n:032x}"}}
        for n, i in enumerate(instances)
    ]
    write_output(state, successes, [])

    result = record_results.handler(state)

    assert result["importedCount"] == 5000 and result["imageSetCount"] == 5000
    pages = clients.client("dynamodb").get_paginator("scan").paginate(TableName=aws)
    recorded = [item for page in pages for item in page["Items"]]
    assert len(recorded) == 5001
    largest = max(len(json.dumps(item)) for item in recorded)  # larger than DynamoDB's own measure
    assert largest < ITEM_LIMIT // 200, largest  # counts on the job item, never growing lists


def test_failure_before_a_job_exists_is_recorded_on_every_instance(aws):
    manifest = write_batch(clients.client("s3"), aws, 2)
    state = state_for(aws, manifest)
    del state["job"]
    state["error"] = {
        "Error": "ValidationException",
        "Cause": json.dumps(
            {
                "errorMessage": "datastoreId is wrong",
                "errorType": "ValidationException",
                "stackTrace": ["  File x"],
            }
        ),
    }

    result = record_failure.handler(state)

    assert result == {
        "jobId": manifest["batchId"],
        "jobStatus": "FAILED",
        "importedCount": 0,
        "failedCount": 2,
    }
    recorded = items(aws)
    assert recorded["JOB"]["message"] == "ValidationException: datastoreId is wrong"
    reasons = {recorded[f"INSTANCE#{i['sopInstanceUID']}"]["reason"] for i in manifest["instances"]}
    assert reasons == {"import workflow failed: ValidationException: datastoreId is wrong"}


def test_failure_is_recorded_even_without_a_readable_manifest(aws):
    state = {
        "batchId": "gone",
        "bucket": aws,
        "manifestKey": "batches/gone.json",
        "error": {"Error": "States.Timeout", "Cause": "took too long"},
    }

    assert record_failure.handler(state) == {"jobId": "gone", "jobStatus": "FAILED"}
    assert items(aws)["JOB"]["message"] == "States.Timeout: took too long"
