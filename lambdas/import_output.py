"""What HealthImaging wrote for an import job, read as AWS documents it.

- GetDICOMImportJob returns `outputS3Uri` as the job's own folder,
  `{prefix passed}{datastoreId}-DicomImport-{jobId}/` (AWS CLI reference, get-dicom-import-job
  example; the SDK code examples read `outputS3Uri + "job-output-manifest.json"`).
- In it, `job-output-manifest.json` holds `jobSummary` with the result folders
  (`successOutputS3Uri`, `failureOutputS3Uri`, `warningsOutputS3Uri`) and `imageSetsSummary`;
  SUCCESS/success.ndjson, FAILURE/failure.ndjson and WARNING/warning.ndjson hold one line per file:
  `inputFile` and `importResponse` (imageSetId, imageSetVersion, isPrimary, warnings) or `exception`
  (exceptionType, message). A non-primary import (`isPrimary: False`) is a conflict with an
  existing primary image set. Developer guide, "Understanding import jobs":
  https://docs.aws.amazon.com/healthimaging/latest/devguide/understanding-import-jobs.html
"""

from __future__ import annotations

import json
import re

SUMMARY_NAME = "job-output-manifest.json"
RESULT_FILES = {
    "successOutputS3Uri": "success.ndjson",
    "failureOutputS3Uri": "failure.ndjson",
    "warningsOutputS3Uri": "warning.ndjson",
}
# The guide's success.ndjson example writes Python's True/False; read them as JSON's.
PYTHON_BOOLEAN = re.compile(r"(:\s*)(True|False)\b")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """('bucket', 'key') of an s3:// URI."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def read_text(s3, uri: str) -> str | None:
    """The object at `uri` as text, or None when there is none."""
    bucket, key = split_s3_uri(uri)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    except s3.exceptions.NoSuchKey:
        return None


def ndjson(text: str) -> list[dict]:
    """The lines of an ndjson result file."""
    return [
        json.loads(PYTHON_BOOLEAN.sub(lambda m: m[1] + m[2].lower(), line))
        for line in text.splitlines()
        if line.strip()
    ]


def read_outcomes(s3, output_s3_uri: str) -> tuple[dict, dict[str, dict]]:
    """(jobSummary, outcome per input object key) of the job whose folder is `output_s3_uri`.

    An outcome is the line's importResponse, plus `exception` for a failed file.
    """
    text = read_text(s3, output_s3_uri + SUMMARY_NAME)
    if text is None:
        raise FileNotFoundError(
            f"no {output_s3_uri}{SUMMARY_NAME}; may the data access role write it?"
        )
    summary = json.loads(text)["jobSummary"]
    outcomes: dict[str, dict] = {}
    for field, name in RESULT_FILES.items():
        folder = summary.get(field)
        for line in ndjson((folder and read_text(s3, folder + name)) or ""):
            name_or_uri = line.get("inputFile", "")
            key = split_s3_uri(name_or_uri)[1] if name_or_uri.startswith("s3://") else name_or_uri
            outcome = outcomes.setdefault(key, {})
            outcome.update(line.get("importResponse") or {})
            if "exception" in line:
                outcome["exception"] = line["exception"]
    return summary, outcomes
