"""Record the results of a finished import job: one DynamoDB item per instance of the batch, and
each object imported as primary copied onto itself with a tag (the DICOM bucket's lifecycle expires
only tagged objects, and counts their days from the copy, that is from the import).

The log line `batch-recorded` carries the counts; the template's metric filters turn it into the
ImportedInstances, ConflictInstances and FailedInstances metrics.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from lambdas.import_output import read_outcomes, read_text
from lambdas.job_table import CONFLICT, FAILED, IMPORTED, instance_item, job_item, write_items
from lambdas.log import log

# Objects imported as primary get this tag; the DICOM bucket's lifecycle expires only them.
IMPORTED_TAG = {"Key": "storescp-import", "Value": "primary"}
# CopyObject copies at most 5 GB in one request (S3 API Reference, "CopyObject"); a larger object
# is tagged in place instead, and its days count from receipt.
COPY_LIMIT_BYTES = 5 * 1024**3
INSTANCE_CONTENT_TYPE = "application/dicom"  # what the SCP stores (scp/storage/s3.py)


def outcome(found: dict | None, image_sets: dict[str, dict], missing: str) -> dict:
    """importStatus and details of one instance from its result line (None: not listed)."""
    if found is None:
        return {"importStatus": FAILED, "reason": missing}
    if "exception" in found or not found.get("imageSetId"):
        error = found.get("exception") or {}
        reason = f"{error.get('exceptionType')}: {error.get('message')}"
        return {"importStatus": FAILED, "reason": reason}
    image_set = image_sets.get(found["imageSetId"], {})
    primary = found.get("isPrimary", image_set.get("isPrimary")) is not False
    return {
        "importStatus": IMPORTED if primary else CONFLICT,
        "imageSetId": found["imageSetId"],
        "isPrimary": primary,
        "imageSetVersion": found.get("imageSetVersion", image_set.get("imageSetVersion")),
        "warnings": [f"{w.get('type')}: {w.get('message')}" for w in found.get("warnings", [])],
    }


def record_results(state: dict, s3, table) -> dict:
    """Write the job item and one item per manifest instance from the job's result files."""
    job = state["status"]["JobProperties"]
    manifest = json.loads(read_text(s3, f"s3://{state['bucket']}/{state['manifestKey']}"))
    summary, found = {}, {}
    if job["JobStatus"] == FAILED:
        missing = f"import job FAILED: {job.get('Message')}"
    else:
        summary, found = read_outcomes(s3, job["OutputS3Uri"])
        missing = "not in the import job's output"
    sets = {s.get("imageSetId"): s for s in summary.get("imageSetsSummary", [])}
    instances = [
        instance_item(job["JobId"], state, i, outcome(found.get(i["key"]), sets, missing))
        for i in manifest["instances"]
    ]
    counts = {f"{s.lower()}Count": 0 for s in (IMPORTED, CONFLICT, FAILED)}
    for item in instances:
        counts[f"{item['importStatus'].lower()}Count"] += 1
    counts["warningCount"] = sum("warnings" in item for item in instances)
    write_items(table, [job_item(job["JobId"], state, manifest, job, **counts), *instances])
    imported = {i["key"] for i in instances if i["importStatus"] == IMPORTED}
    sizes = [(i["key"], i["bytes"]) for i in manifest["instances"] if i["key"] in imported]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: mark_imported(s3, state["bucket"], *k, job["JobId"]), sizes))
    log("batch-recorded", batchId=state["batchId"], jobId=job["JobId"], **counts)
    return {"jobId": job["JobId"], "jobStatus": job["JobStatus"], **counts}


def mark_imported(s3, bucket: str, key: str, size: int, job_id: str) -> None:
    """Copy an object imported as primary onto itself, tagged, so that the bucket's lifecycle may
    expire it IncomingRetentionDays after the import: a copy has a new creation date, which is
    what expiration counts from, while a tag alone does not reset it. The replaced version is the
    same bytes and goes a day later (noncurrent-version expiry). An object over CopyObject's 5 GB
    is tagged in place (its days count from receipt); one that cannot be marked is kept
    (logged), never lost."""
    tag = f"{IMPORTED_TAG['Key']}={IMPORTED_TAG['Value']}"
    try:
        if size > COPY_LIMIT_BYTES:
            s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": [IMPORTED_TAG]})
            log("tagged-in-place", "WARNING", key=key, bytes=size)
            return
        # A copy onto itself must change the metadata (S3 user guide, "Copying, moving, and
        # renaming objects"): the import job's id is the change.
        s3.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": bucket, "Key": key},
            MetadataDirective="REPLACE",
            ContentType=INSTANCE_CONTENT_TYPE,
            Metadata={"storescp-import-job": job_id},
            TaggingDirective="REPLACE",
            Tagging=tag,
        )
    except Exception as exc:
        log("mark-imported-failed", "ERROR", key=key, error=str(exc))
