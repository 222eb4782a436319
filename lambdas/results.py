"""Record the results of a finished import job: one DynamoDB item per instance of the batch, and
a tag on each object imported as primary (the DICOM bucket's lifecycle expires only those).

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
    keys = [i["key"] for i in instances if i["importStatus"] == IMPORTED]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: tag_imported(s3, state["bucket"], key), keys))
    log("batch-recorded", batchId=state["batchId"], jobId=job["JobId"], **counts)
    return {"jobId": job["JobId"], "jobStatus": job["JobStatus"], **counts}


def tag_imported(s3, bucket: str, key: str) -> None:
    """Tag an object imported as primary, so that the bucket's lifecycle may expire it; one that
    cannot be tagged is kept (logged), never lost."""
    try:
        s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": [IMPORTED_TAG]})
    except Exception as exc:
        log("tag-failed", "ERROR", key=key, error=str(exc))
