"""Record an error the state machine caught: the job item, and every instance of the batch as
FAILED with the reason, so that a lookup by SOP Instance UID says why."""

from __future__ import annotations

import json
from contextlib import suppress

from lambdas.attempts import execution_name
from lambdas.job_table import FAILED, instance_item, job_item, write_items
from lambdas.log import log
from lambdas.manifest import read_json


def failure_message(error: dict) -> str:
    """'Error: message' from a Catch result ({"Error", "Cause"}), without a stack trace."""
    cause = error.get("Cause", "")
    with suppress(ValueError, TypeError, KeyError):
        cause = json.loads(cause)["errorMessage"]
    return f"{error.get('Error')}: {cause}"[:1000]


def record_failure(state: dict, s3, table) -> dict:
    """Write the failure; a job id is the batch's execution name when no job was started."""
    job = {**state.get("job", {}), "JobStatus": FAILED}
    job["Message"] = failure_message(state["error"])
    job_id = job.get("JobId") or execution_name(state["batchId"], state.get("attempt", 1))
    try:
        manifest = read_json(s3, state["bucket"], state["manifestKey"])
        items = [
            instance_item(
                job_id,
                state,
                i,
                {"importStatus": FAILED, "reason": f"import workflow failed: {job['Message']}"},
            )
            for i in manifest["instances"]
        ]
        items.append(job_item(job_id, state, manifest, job, failedCount=len(items)))
    except Exception as exc:  # the failure must be recorded even without its manifest
        log("manifest-unreadable", "ERROR", batchId=state["batchId"], error=str(exc))
        items = [job_item(job_id, state, {"batchId": state["batchId"]}, job)]
    write_items(table, items)
    log("batch-failed", "ERROR", batchId=state["batchId"], jobId=job_id, error=job["Message"])
    return {"jobId": job_id, "jobStatus": FAILED}
