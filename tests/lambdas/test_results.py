"""Reading HealthImaging's results as AWS documents them, and recording them (moto S3, DynamoDB).

Fixtures quote AWS's documentation:
- GUIDE: developer guide, "Understanding import jobs"
  (https://docs.aws.amazon.com/healthimaging/latest/devguide/understanding-import-jobs.html):
  job-output-manifest.json, success.ndjson, failure.ndjson and warning.ndjson examples, verbatim.
- CLI: AWS CLI reference, get-dicom-import-job example (outputS3Uri is the job's folder).
"""

from __future__ import annotations

import json
import uuid

import pytest

from lambdas import clients
from lambdas.import_output import read_outcomes
from lambdas.results import outcome
from tests.fakes.pipeline import create_job_table, environment, inline_handler
from tests.lambdas.batches import manifest_for, write_batch

ITEM_LIMIT = 400 * 1024  # DynamoDB's maximum item size
# CLI: get-dicom-import-job's outputS3Uri.
JOB_FOLDER = (
    "job_output/12345678901234567890123456789012-DicomImport-09876543210987654321098765432109/"
)
# GUIDE: job-output-manifest.json example, verbatim (its URIs name medical-imaging-output).
GUIDE_MANIFEST = """{
"jobSummary": {
"jobId": "09876543210987654321098765432109",
        "datastoreId": "12345678901234567890123456789012",
        "inputS3Uri": "s3://medical-imaging-dicom-input/dicom_input/",
        "outputS3Uri": "s3://medical-imaging-output/job_output/12345678901234567890123456789012-DicomImport-09876543210987654321098765432109/",
        "successOutputS3Uri": "s3://medical-imaging-output/job_output/12345678901234567890123456789012-DicomImport-09876543210987654321098765432109/SUCCESS/",
        "failureOutputS3Uri": "s3://medical-imaging-output/job_output/12345678901234567890123456789012-DicomImport-09876543210987654321098765432109/FAILURE/",
        "warningsOutputS3Uri": "s3://medical-imaging-output/job_output/12345678901234567890123456789012-DicomImport-09876543210987654321098765432109/WARNING/",
        "numberOfScannedFiles": 5,
        "numberOfImportedFiles": 3,
        "numberOfFilesWithCustomerError": 2,
        "numberOfFilesWithServerError": 0,
        "numberOfGeneratedImageSets": 2,
        "imageSetsSummary": [{
"imageSetId": "12345612345612345678907890789012",
                "numberOfMatchedSOPInstances": 2
            },
            {
"imageSetId": "12345612345612345678917891789012",
                "numberOfMatchedSOPInstances": 1
            }
        ]
    }
}
"""
# GUIDE: success.ndjson example, verbatim (Python's True included).
GUIDE_SUCCESS = """{"inputFile":"dicomInputFolder/1.3.51.5145.5142.20010109.1105620.1.0.1.dcm","importResponse":{"imageSetId":"12345612345612345678907890789012", "isPrimary": True}}
{"inputFile":"dicomInputFolder/1.3.51.5145.5142.20010109.1105630.1.0.1.dcm","importResponse":{"imageSetId":"12345612345612345678917891789012", "isPrimary": True}}
"""  # noqa: E501
# GUIDE: failure.ndjson example, verbatim.
GUIDE_FAILURE = """{"inputFile":"dicom_input/invalidDicomFile1.dcm","exception":{"exceptionType":"ValidationException","message":"DICOM attribute TransferSyntaxUID does not exist"}}
{"inputFile":"dicom_input/invalidDicomFile2.dcm","exception":{"exceptionType":"ValidationException","message":"DICOM attributes does not exist"}}
"""  # noqa: E501
# GUIDE: warning.ndjson example, verbatim.
GUIDE_WARNING = """{"inputFile":"dicom_input/warningDicomFile1.dcm","importResponse":{"imageSetId":"12345612345612345678907890789012","imageSetVersion":1,"isPrimary":true,"warnings":[{"warning_reason_code":45330,"type":"InvalidOffsetTable","message":"The file was imported but contains an invalid offset table, may see issues when retrieving certain frames."}]}}
"""  # noqa: E501


@pytest.fixture
def aws(moto):
    name = f"rr-{uuid.uuid4().hex[:8]}"
    moto.client("s3").create_bucket(Bucket=name)
    create_job_table(moto.client("dynamodb"), name)
    with environment({"AWS_ENDPOINT_URL": moto.endpoint, "JOB_TABLE_NAME": name}):
        yield name


def put(bucket: str, key: str, text: str) -> None:
    clients.client("s3").put_object(Bucket=bucket, Key=key, Body=text.encode())


def guide_output(bucket: str) -> str:
    """The guide's result files, in `bucket` in place of medical-imaging-output."""
    for name, text in (
        ("job-output-manifest.json", GUIDE_MANIFEST),
        ("SUCCESS/success.ndjson", GUIDE_SUCCESS),
        ("FAILURE/failure.ndjson", GUIDE_FAILURE),
        ("WARNING/warning.ndjson", GUIDE_WARNING),
    ):
        put(bucket, JOB_FOLDER + name, text.replace("medical-imaging-output", bucket))
    return f"s3://{bucket}/{JOB_FOLDER}"


def test_the_guides_examples_read_from_the_folder_get_dicom_import_job_returns(aws):
    summary, found = read_outcomes(clients.client("s3"), guide_output(aws))

    assert summary["numberOfGeneratedImageSets"] == 2
    assert found["dicomInputFolder/1.3.51.5145.5142.20010109.1105620.1.0.1.dcm"] == {
        "imageSetId": "12345612345612345678907890789012",
        "isPrimary": True,
    }
    assert found["dicom_input/invalidDicomFile2.dcm"]["exception"]["message"] == (
        "DICOM attributes does not exist"
    )
    warned = found["dicom_input/warningDicomFile1.dcm"]
    assert warned["imageSetVersion"] == 1 and warned["warnings"][0]["type"] == "InvalidOffsetTable"
    assert len(found) == 5


def test_an_input_file_named_by_its_s3_uri_is_found_by_its_key(aws):
    """The guide's lines name the input by key; a line naming it s3://bucket/key is the same."""
    folder = f"s3://{aws}/job/"
    summary = {"successOutputS3Uri": folder + "SUCCESS/", "imageSetsSummary": []}
    put(aws, "job/job-output-manifest.json", json.dumps({"jobSummary": summary}))
    line = {"inputFile": f"s3://{aws}/incoming/b/1.dcm", "importResponse": {"imageSetId": "a"}}
    put(aws, "job/SUCCESS/success.ndjson", json.dumps(line) + "\n")

    assert read_outcomes(clients.client("s3"), folder)[1] == {
        "incoming/b/1.dcm": {"imageSetId": "a"}
    }


def test_outcomes_per_instance_state():
    sets = {"p" * 32: {"imageSetId": "p" * 32, "isPrimary": True, "imageSetVersion": 3}}
    missing = "not listed"

    assert outcome(None, sets, missing) == {"importStatus": "FAILED", "reason": missing}
    assert outcome({"imageSetId": "p" * 32}, sets, missing)["importStatus"] == "IMPORTED"
    assert outcome({"imageSetId": "p" * 32}, sets, missing)["imageSetVersion"] == 3
    conflict = outcome({"imageSetId": "n" * 32, "isPrimary": False}, sets, missing)
    assert conflict["importStatus"] == "CONFLICT" and conflict["isPrimary"] is False
    failed = outcome(
        {"exception": {"exceptionType": "ValidationException", "message": "bad"}}, sets, missing
    )
    assert failed == {"importStatus": "FAILED", "reason": "ValidationException: bad"}
    # A line with an exception fails even if it names an image set; one naming none fails too.
    both = {"exception": {"exceptionType": "X", "message": "y"}, "imageSetId": "p" * 32}
    assert outcome(both, sets, missing) == {"importStatus": "FAILED", "reason": "X: y"}
    assert outcome({"isPrimary": True}, sets, missing)["importStatus"] == "FAILED"


def state_for(bucket: str, manifest: dict, output_uri: str, status: str = "COMPLETED") -> dict:
    """The execution state RecordResults receives (GetDICOMImportJob as Step Functions gives it)."""
    return {
        "batchId": manifest["batchId"],
        "attempt": 1,
        "bucket": bucket,
        "manifestKey": f"batches/{manifest['batchId']}.json",
        "inputS3Uri": f"s3://{bucket}/{manifest['inputPrefix']}",
        "studyInstanceUID": manifest["studyInstanceUID"],
        "job": {"JobId": "job1", "DatastoreId": "d" * 32},
        "status": {
            "JobProperties": {
                "JobId": "job1",
                "JobStatus": status,
                "DatastoreId": "d" * 32,
                "OutputS3Uri": output_uri,
                "SubmittedAt": "2026-01-02T03:04:05Z",
                "EndedAt": "2026-01-02T03:06:05Z",
            }
        },
    }


def items(table_name: str) -> dict[str, dict]:
    found = clients.table(table_name).scan()["Items"]
    return {item["recordId"]: item for item in found}


def test_results_recorded_per_instance_as_the_guide_shapes_them(aws):
    manifest = write_batch(clients.client("s3"), aws, 4)
    keys = [i["key"] for i in manifest["instances"]]
    folder = f"s3://{aws}/out/{manifest['batchId']}/d-DicomImport-job1/"
    lines = {
        "SUCCESS/success.ndjson": [
            {"inputFile": keys[0], "importResponse": {"imageSetId": "a" * 32, "isPrimary": True}},
            {"inputFile": keys[1], "importResponse": {"imageSetId": "b" * 32, "isPrimary": False}},
        ],
        "FAILURE/failure.ndjson": [
            {"inputFile": keys[2], "exception": {"exceptionType": "X", "message": "bad"}}
        ],
    }
    summary = {
        "successOutputS3Uri": folder + "SUCCESS/",
        "failureOutputS3Uri": folder + "FAILURE/",
        "imageSetsSummary": [],
    }
    prefix = folder.removeprefix(f"s3://{aws}/")
    put(aws, prefix + "job-output-manifest.json", json.dumps({"jobSummary": summary}))
    for name, rows in lines.items():
        put(aws, prefix + name, "".join(json.dumps(r) + "\n" for r in rows))

    result = inline_handler("record_results")(state_for(aws, manifest, folder), None)

    assert result == {
        "jobId": "job1",
        "jobStatus": "COMPLETED",
        "importedCount": 1,
        "conflictCount": 1,
        "failedCount": 2,
        "warningCount": 0,
    }
    recorded = items(aws)
    sops = [i["sopInstanceUID"] for i in manifest["instances"]]
    assert recorded[f"INSTANCE#{sops[0]}"]["importStatus"] == "IMPORTED"
    assert recorded[f"INSTANCE#{sops[1]}"]["importStatus"] == "CONFLICT"
    assert recorded[f"INSTANCE#{sops[2]}"]["reason"] == "X: bad"
    assert recorded[f"INSTANCE#{sops[3]}"]["reason"] == "not in the import job's output"
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
    assert job["outputS3Uri"] == folder
    # Only what was imported as primary is tagged: the bucket's lifecycle expires only that.
    s3 = clients.client("s3")
    tags = [s3.get_object_tagging(Bucket=aws, Key=key)["TagSet"] for key in keys]
    assert tags == [[{"Key": "storescp-import", "Value": "primary"}], [], [], []]


def test_missing_manifest_is_an_error_not_an_empty_result(aws):
    manifest = write_batch(clients.client("s3"), aws, 1)
    state = state_for(aws, manifest, f"s3://{aws}/nowhere/")

    with pytest.raises(Exception, match=r"job-output-manifest\.json; may the data access role"):
        inline_handler("record_results")(state, None)


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
    put(aws, "batches/big.json", json.dumps(manifest))
    folder = f"s3://{aws}/out/big/"
    # Non-primary (conflicts): the largest instance items, and nothing to tag.
    successes = [
        {"inputFile": i["key"], "importResponse": {"imageSetId": f"{n:032x}", "isPrimary": False}}
        for n, i in enumerate(instances)
    ]
    summary = {"successOutputS3Uri": folder + "SUCCESS/"}
    put(aws, "out/big/job-output-manifest.json", json.dumps({"jobSummary": summary}))
    put(aws, "out/big/SUCCESS/success.ndjson", "".join(json.dumps(s) + "\n" for s in successes))

    result = inline_handler("record_results")(state_for(aws, manifest, folder), None)

    assert result["conflictCount"] == 5000
    pages = clients.client("dynamodb").get_paginator("scan").paginate(TableName=aws)
    recorded = [item for page in pages for item in page["Items"]]
    assert len(recorded) == 5001
    largest = max(len(json.dumps(item)) for item in recorded)  # larger than DynamoDB's own measure
    assert largest < ITEM_LIMIT // 200, largest  # counts on the job item, never growing lists


def test_failure_before_a_job_exists_is_recorded_on_every_instance(aws):
    manifest = write_batch(clients.client("s3"), aws, 2)
    state = state_for(aws, manifest, "")
    del state["job"], state["status"]
    state["error"] = {
        "Error": "MedicalImaging.ValidationException",
        "Cause": "datastoreId is wrong (Service: medicalimaging, Status Code: 400)",
    }

    result = inline_handler("record_failure")(state, None)

    assert result == {"jobId": manifest["batchId"], "jobStatus": "FAILED"}
    recorded = items(aws)
    message = "MedicalImaging.ValidationException: datastoreId is wrong (Service: medicalimaging, "
    assert recorded["JOB"]["message"].startswith(message)
    assert recorded["JOB"]["failedCount"] == 2
    reasons = {recorded[f"INSTANCE#{i['sopInstanceUID']}"]["reason"] for i in manifest["instances"]}
    assert len(reasons) == 1 and reasons.pop().startswith(f"import workflow failed: {message}")


def test_lambda_error_cause_loses_its_stack_trace(aws):
    manifest = write_batch(clients.client("s3"), aws, 1)
    state = state_for(aws, manifest, "")
    state["attempt"] = 2
    del state["job"], state["status"]
    cause = {"errorMessage": "boom", "errorType": "KeyError", "stackTrace": ["  File x"]}
    state["error"] = {"Error": "KeyError", "Cause": json.dumps(cause)}

    result = inline_handler("record_failure")(state, None)

    assert result["jobId"] == f"{manifest['batchId']}-attempt-2"
    assert items(aws)["JOB"]["message"] == "KeyError: boom"


def test_failure_is_recorded_even_without_a_readable_manifest(aws):
    state = {
        "batchId": "gone",
        "bucket": aws,
        "manifestKey": "batches/gone.json",
        "error": {"Error": "States.Timeout", "Cause": "took too long"},
    }

    assert inline_handler("record_failure")(state, None) == {"jobId": "gone", "jobStatus": "FAILED"}
    assert items(aws)["JOB"]["message"] == "States.Timeout: took too long"
