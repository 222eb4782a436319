"""HealthImaging import jobs: start one per batch and read its status.

Throttling, quota and internal errors propagate unchanged (botocore names the exception class after
the error code) so that the state machine's Retry matches them by name.
"""

from __future__ import annotations

from datetime import datetime

from lambdas.errors import ConfigError
from lambdas.log import log


def job_output_uri(output_s3_uri: str, batch_id: str) -> str:
    """Where HealthImaging writes a batch's results: OUTPUT_S3_URI + batch id + '/'."""
    if not output_s3_uri.startswith("s3://"):
        raise ConfigError(
            f"OUTPUT_S3_URI={output_s3_uri!r} must be an s3:// URI, e.g. s3://results-bucket/"
        )
    return f"{output_s3_uri.rstrip('/')}/{batch_id}/"


def start_import(
    batch: dict, imaging, datastore_id: str, role_arn: str, output_s3_uri: str
) -> dict:
    """StartDICOMImportJob for a batch (the execution input); the batch id makes it idempotent."""
    batch_id = batch["batchId"]
    output_uri = job_output_uri(output_s3_uri, batch_id)
    response = imaging.start_dicom_import_job(
        jobName=batch_id,
        clientToken=batch_id,
        datastoreId=datastore_id,
        dataAccessRoleArn=role_arn,
        inputS3Uri=batch["inputS3Uri"],
        outputS3Uri=output_uri,
    )
    log(
        "import-started", batchId=batch_id, jobId=response["jobId"], jobStatus=response["jobStatus"]
    )
    return {
        "jobId": response["jobId"],
        "datastoreId": response["datastoreId"],
        "jobStatus": response["jobStatus"],
        "submittedAt": _iso(response.get("submittedAt")),
    }


def import_status(job: dict, imaging) -> dict:
    """GetDICOMImportJob, as the JSON-safe job properties the state machine keeps in $.job."""
    props = imaging.get_dicom_import_job(datastoreId=job["datastoreId"], jobId=job["jobId"])[
        "jobProperties"
    ]
    log("import-status", jobId=props["jobId"], jobStatus=props["jobStatus"])
    keep = ("jobId", "jobName", "jobStatus", "datastoreId", "dataAccessRoleArn", "inputS3Uri")
    status = {name: props[name] for name in keep if name in props}
    status.update(
        outputS3Uri=props["outputS3Uri"],
        submittedAt=_iso(props.get("submittedAt")),
        endedAt=_iso(props.get("endedAt")),
        message=props.get("message", ""),
    )
    return status


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
