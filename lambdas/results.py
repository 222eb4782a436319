"""Record what became of a batch in DynamoDB: per-instance import results, or a failure."""

from __future__ import annotations

import json
import logging
from contextlib import suppress

from lambdas.import_output import read_import_output
from lambdas.job_table import FAILED, JOB_RECORD, instance_item, job_item, write_items
from lambdas.log import log
from lambdas.manifest import read_manifest

MESSAGE_LIMIT = 1000


def record_results(state: dict, s3, table) -> dict:
    """Write the job item and one item per manifest instance from the job's output files."""
    manifest = read_manifest(s3, state["bucket"], state["manifestKey"])
    job = state["job"]
    output = read_import_output(s3, job["outputS3Uri"], job["datastoreId"], job["jobId"])
    prefix = manifest["inputPrefix"]
    missing = (
        f"import job {job['jobStatus']}: {job.get('message') or 'no reason given'}"
        if job["jobStatus"] == FAILED
        else "not listed in the import job's output"
    )
    instances = []
    for instance in manifest["instances"]:
        key, relative = instance["key"], instance["key"].removeprefix(prefix)
        image_set = output.image_sets.get(key) or output.image_sets.get(relative)
        reason = output.failures.get(key) or output.failures.get(relative) or missing
        instances.append(instance_item(job["jobId"], manifest, instance, image_set, reason))
    imported = sum(1 for item in instances if "imageSetId" in item)
    counts = {
        "importedCount": imported,
        "failedCount": len(instances) - imported,
        "imageSetCount": len(set(output.image_sets.values()) - {""}),
    }
    write_items(table, [job_item(job["jobId"], state, manifest, job, **counts), *instances])
    log(
        "results-recorded",
        batchId=manifest["batchId"],
        jobId=job["jobId"],
        jobStatus=job["jobStatus"],
        **counts,
    )
    return {"jobId": job["jobId"], "jobStatus": job["jobStatus"], **counts}


def failure_message(error: dict) -> str:
    """'Error: message' from a Catch result ({"Error", "Cause"}), without the stack trace."""
    cause = error.get("Cause", "")
    with suppress(ValueError, AttributeError):
        cause = json.loads(cause).get("errorMessage", cause)
    return f"{error.get('Error', 'Unknown')}: {cause}"[:MESSAGE_LIMIT]


def record_failure(state: dict, s3, table) -> dict:
    """Record a caught workflow error on the job item and on every instance of the batch."""
    job = {
        **state.get("job", {}),
        "jobStatus": FAILED,
        "message": failure_message(state.get("error", {})),
    }
    job_id = job.get("jobId") or state["batchId"]
    try:
        manifest = read_manifest(s3, state["bucket"], state["manifestKey"])
    except Exception as exc:  # the failure must be recorded even when the manifest cannot be read
        log("manifest-unreadable", logging.ERROR, batchId=state["batchId"], error=str(exc))
        item = {
            "jobId": job_id,
            "recordId": JOB_RECORD,
            "batchId": state["batchId"],
            "jobStatus": FAILED,
            "message": job["message"],
        }
        write_items(table, [item])
        return {"jobId": job_id, "jobStatus": FAILED}
    reason = f"import workflow failed: {job['message']}"
    instances = [instance_item(job_id, manifest, i, None, reason) for i in manifest["instances"]]
    counts = {"importedCount": 0, "failedCount": len(instances)}
    write_items(table, [job_item(job_id, state, manifest, job, **counts), *instances])
    log(
        "failure-recorded",
        logging.ERROR,
        batchId=state["batchId"],
        jobId=job_id,
        error=state.get("error", {}).get("Error"),
    )
    return {"jobId": job_id, "jobStatus": FAILED, **counts}
