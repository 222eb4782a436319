"""start_import and check_status: HealthImaging request shapes (Stubber) and documented patterns."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from lambdas import clients
from lambdas.errors import ConfigError
from lambdas.imports import import_status, start_import
from tests.fakes.healthimaging import DATASTORE_ID, request_problems

ROLE = "arn:aws:iam::123456789012:role/import"
BATCH = {
    "batchId": "20260102T030405Z-abc.1_2",
    "inputS3Uri": "s3://dicom-bucket/incoming/20260102T030405Z-abc.1_2/",
}
SUBMITTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def imaging():
    client = boto3.client("medical-imaging", config=clients.IMAGING_CONFIG)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_start_import_sends_a_request_matching_the_documented_patterns(imaging):
    client, stubber = imaging
    expected = {
        "jobName": BATCH["batchId"],
        "clientToken": BATCH["batchId"],
        "datastoreId": DATASTORE_ID,
        "dataAccessRoleArn": ROLE,
        "inputS3Uri": BATCH["inputS3Uri"],
        "outputS3Uri": f"s3://results-bucket/{BATCH['batchId']}/",
    }
    response = {
        "datastoreId": DATASTORE_ID,
        "jobId": "a1b2",
        "jobStatus": "SUBMITTED",
        "submittedAt": SUBMITTED,
    }
    stubber.add_response("start_dicom_import_job", response, expected)

    job = start_import(BATCH, client, DATASTORE_ID, ROLE, "s3://results-bucket")

    assert request_problems("StartDICOMImportJob", expected) == []
    assert job == {
        "jobId": "a1b2",
        "datastoreId": DATASTORE_ID,
        "jobStatus": "SUBMITTED",
        "submittedAt": "2026-01-02T03:04:05Z",
    }
    json.dumps(job)


def test_pattern_check_catches_what_botocore_does_not():
    bad = {
        "jobName": "x y",
        "clientToken": "a" * 65,
        "datastoreId": "ABC",
        "dataAccessRoleArn": ROLE,
        "inputS3Uri": "https://bucket/",
        "outputS3Uri": "s3://Bucket/",
    }
    problems = request_problems("StartDICOMImportJob", bad)
    assert len(problems) == 5, problems


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "ServiceQuotaExceededException", "InternalServerException"]
)
def test_retryable_errors_reach_the_state_machine_under_their_own_name(imaging, code):
    client, stubber = imaging
    stubber.add_client_error(
        "start_dicom_import_job", service_error_code=code, http_status_code=429
    )

    with pytest.raises(Exception) as raised:
        start_import(BATCH, client, DATASTORE_ID, ROLE, "s3://results-bucket/")

    assert type(raised.value).__name__ == code  # the Lambda runtime reports this as errorType


def test_output_uri_must_be_s3():
    with pytest.raises(ConfigError, match="OUTPUT_S3_URI"):
        start_import(BATCH, None, DATASTORE_ID, ROLE, "results-bucket")


def test_check_status_returns_json_safe_job_properties(imaging):
    client, stubber = imaging
    properties = {
        "jobId": "a1b2",
        "jobName": BATCH["batchId"],
        "jobStatus": "COMPLETED",
        "datastoreId": DATASTORE_ID,
        "dataAccessRoleArn": ROLE,
        "submittedAt": SUBMITTED,
        "endedAt": SUBMITTED,
        "inputS3Uri": BATCH["inputS3Uri"],
        "outputS3Uri": "s3://results-bucket/b/",
    }
    params = {"datastoreId": DATASTORE_ID, "jobId": "a1b2"}
    stubber.add_response("get_dicom_import_job", {"jobProperties": properties}, params)

    status = import_status(
        {"jobId": "a1b2", "datastoreId": DATASTORE_ID, "jobStatus": "SUBMITTED"}, client
    )

    assert request_problems("GetDICOMImportJob", params) == []
    assert status["jobStatus"] == "COMPLETED"
    assert status["endedAt"] == "2026-01-02T03:04:05Z"
    assert status["outputS3Uri"] == "s3://results-bucket/b/"
    assert status["message"] == ""
    json.dumps(status)
