"""Items of DicomImportJobTable (docs/CONTRACTS.md): one job item and one item per instance.

The job item holds the documented job attributes and counts, never lists that grow with the batch,
so no item comes near DynamoDB's 400 KB limit. Instance items are found by SOP Instance UID and by
Study Instance UID through the table's two global secondary indexes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

JOB_RECORD = "JOB"
IMPORTED, FAILED = "IMPORTED", "FAILED"


def now_iso() -> str:
    """The current UTC time, ISO 8601 with 'Z'."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def job_item(job_id: str, batch: dict, manifest: dict, job: dict, **counts: int) -> dict:
    """The job item: documented attributes from the job, batch input and manifest, plus counts."""
    item = {
        "jobId": job_id,
        "recordId": JOB_RECORD,
        "batchId": manifest["batchId"],
        "jobStatus": job.get("jobStatus"),
        "submittedAt": job.get("submittedAt"),
        "endedAt": job.get("endedAt"),
        "inputS3Uri": job.get("inputS3Uri") or batch.get("inputS3Uri"),
        "outputS3Uri": job.get("outputS3Uri"),
        "datastoreId": job.get("datastoreId"),
        "dataAccessRoleArn": job.get("dataAccessRoleArn"),
        "message": job.get("message"),
        "studyDate": manifest.get("studyDate"),
        "studyInstanceUID": manifest["studyInstanceUID"],
        "seriesInstanceUID": manifest["seriesInstanceUIDs"][0],
        "seriesCount": len(manifest["seriesInstanceUIDs"]),
        "instanceCount": manifest["instanceCount"],
        "closeReason": manifest["closeReason"],
        "recordedAt": now_iso(),
        **counts,
    }
    return {name: value for name, value in item.items() if value not in (None, "")}


def instance_item(
    job_id: str, manifest: dict, instance: dict, image_set_id: str | None, reason: str | None
) -> dict:
    """One instance's outcome: imported into image set `image_set_id`, or failed for `reason`."""
    item = {
        "jobId": job_id,
        "recordId": f"INSTANCE#{instance['sopInstanceUID']}",
        "batchId": manifest["batchId"],
        "studyInstanceUID": manifest["studyInstanceUID"],
        "seriesInstanceUID": instance["seriesInstanceUID"],
        "sopInstanceUID": instance["sopInstanceUID"],
        "key": instance["key"],
        "importStatus": IMPORTED if image_set_id else FAILED,
        "imageSetId": image_set_id,
        "reason": None if image_set_id else reason,
    }
    return {name: value for name, value in item.items() if value not in (None, "")}


def write_items(table, items: Iterable[dict]) -> None:
    """Write items with BatchWriteItem (25 a call, unprocessed ones retried)."""
    with table.batch_writer(overwrite_by_pkeys=["jobId", "recordId"]) as batch:
        for item in items:
            batch.put_item(Item=item)
