"""What HealthImaging wrote for an import job: job-output-manifest.json and SUCCESS/FAILURE ndjson.

Layout: {outputS3Uri}{datastoreId}-DicomImport-{jobId}/. A job reported COMPLETED can still have
failed files, so the per-file lists are the truth, not the job status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from lambdas.errors import ImportOutputError

SUCCESS_KEY = "SUCCESS/success.ndjson"
FAILURE_KEY = "FAILURE/failure.ndjson"
SUMMARY_KEY = "job-output-manifest.json"


@dataclass
class ImportOutput:
    """Per-file outcome of one import job, keyed by S3 object key of the input file."""

    summary: dict = field(default_factory=dict)
    image_sets: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """('bucket', 'key/prefix') of an s3:// URI."""
    if not uri.startswith("s3://"):
        raise ImportOutputError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def job_output_prefix(output_s3_uri: str, datastore_id: str, job_id: str) -> str:
    """The s3:// prefix HealthImaging writes one job's results under."""
    return f"{output_s3_uri}{datastore_id}-DicomImport-{job_id}/"


def read_import_output(s3, output_s3_uri: str, datastore_id: str, job_id: str) -> ImportOutput:
    """Read the output of job `job_id`; files HealthImaging did not write read as empty."""
    bucket, prefix = split_s3_uri(job_output_prefix(output_s3_uri, datastore_id, job_id))
    output = ImportOutput()
    summary = _read(s3, bucket, prefix + SUMMARY_KEY)
    if summary:
        output.summary = json.loads(summary).get("jobSummary", {})
    for line in _lines(_read(s3, bucket, prefix + SUCCESS_KEY)):
        output.image_sets[_input_key(line)] = line.get("importResponse", {}).get("imageSetId", "")
    for line in _lines(_read(s3, bucket, prefix + FAILURE_KEY)):
        error = line.get("exception") or line.get("importResponse") or {}
        reason = ": ".join(str(v) for v in (error.get("exceptionType"), error.get("message")) if v)
        output.failures[_input_key(line)] = reason or "reported in FAILURE/failure.ndjson"
    return output


def _read(s3, bucket: str, key: str) -> str:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except s3.exceptions.NoSuchKey:
        return ""


def _lines(text: str) -> list[dict]:
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except ValueError as exc:
        raise ImportOutputError(
            f"import output is not ndjson ({exc}); check the results bucket"
        ) from exc


def _input_key(line: dict) -> str:
    """The object key of a line's inputFile, which HealthImaging may give as an s3:// URI."""
    name = line.get("inputFile", "")
    return split_s3_uri(name)[1] if name.startswith("s3://") else name
