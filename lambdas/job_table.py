"""Items of DicomImportJobTable (docs/CONTRACTS.md): one job item and one item per instance.

The job item holds the documented job attributes and counts, never lists that grow with the batch,
so no item comes near DynamoDB's 400 KB limit. Instance items are found by SOP Instance UID and by
Study Instance UID through the table's two global secondary indexes. Items of a redriven batch
carry their `attempt` (1 is the first).

Instance states (`importStatus`):
- IMPORTED: in a primary image set, which every viewer of the study shows (`warnings` lists what
  HealthImaging warned about, if anything);
- CONFLICT: imported into a non-primary image set because its metadata conflicts with the primary
  image set already in the data store; viewers of the study do not show it until an operator acts;
- FAILED: not imported (`reason` says why); redrive the batch once the cause is fixed.
"""

from __future__ import annotations

from datetime import UTC, datetime

# As config/contracts.json holds them (tests/generator/test_contracts.py).
JOB_RECORD, INSTANCE_RECORD = "JOB", "INSTANCE#"  # recordId of the job, prefix of an instance
IMPORTED, CONFLICT, FAILED = "IMPORTED", "CONFLICT", "FAILED"
# jobStatus of the job item: SUBMITTED from the job's start (the state machine writes it), then
# the job's final state (COMPLETED or FAILED).
SUBMITTED, COMPLETED = "SUBMITTED", "COMPLETED"
DIRECT_ARRIVAL = "StoreDICOM"  # arrivedBy of an item the SCP wrote for a direct store
SOP_INSTANCE_INDEX = "sopInstanceUID-index"
STUDY_INSTANCE_INDEX = "studyInstanceUID-index"
LATEST_WINS = ("attempt", "recordedAt")  # of an instance's items, the greatest of these wins
COMMITMENT_RECORD = "COMMITMENT#"  # jobId prefix of a storage-commitment transaction (scp/)
# importStatus of an item the SCP writes when it commits on storage (scp/job_records.py): the
# instance is in S3, not imported yet; attempt 0, so any import attempt's item wins.
STORED = "STORED"


def now_iso() -> str:
    """The current UTC time, ISO 8601 with 'Z'."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def item(job_id: str, record_id: str, state: dict, **attributes) -> dict:
    """An item of the table; attributes without a value are left out."""
    values = {
        "jobId": job_id,
        "recordId": record_id,
        "batchId": state["batchId"],
        "attempt": state.get("attempt", 1),
        "studyInstanceUID": state.get("studyInstanceUID"),
        "recordedAt": now_iso(),
        **attributes,
    }
    return {k: v for k, v in values.items() if v not in (None, "", [])}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def job_item(job_id: str, state: dict, manifest: dict, job: dict, **counts: int) -> dict:
    """The job item: documented job attributes (GetDICOMImportJob's, as Step Functions names
    them), batch and manifest attributes, and counts."""
    instances = manifest.get("instances") or [{}]
    return item(
        job_id,
        JOB_RECORD,
        state,
        jobStatus=job.get("JobStatus"),
        submittedAt=_text(job.get("SubmittedAt")),
        endedAt=_text(job.get("EndedAt")),
        inputS3Uri=state.get("inputS3Uri"),
        outputS3Uri=job.get("OutputS3Uri"),
        datastoreId=job.get("DatastoreId"),
        dataAccessRoleArn=job.get("DataAccessRoleArn"),
        message=job.get("Message"),
        studyDate=manifest.get("studyDate"),
        seriesInstanceUID=instances[0].get("seriesInstanceUID"),
        instanceCount=len(manifest.get("instances", [])),
        **counts,
    )


def instance_item(job_id: str, state: dict, instance: dict, outcome: dict) -> dict:
    """One instance's outcome: `outcome` holds importStatus and what HealthImaging said of it."""
    return item(
        job_id,
        INSTANCE_RECORD + instance["sopInstanceUID"],
        state,
        seriesInstanceUID=instance["seriesInstanceUID"],
        sopInstanceUID=instance["sopInstanceUID"],
        sopClassUID=instance.get("sopClassUID"),  # storage commitment checks it (0x0119)
        key=instance["key"],
        **outcome,
    )


def latest(items: list[dict]) -> list[dict]:
    """The latest item of each instance (LATEST_WINS), by SOP Instance UID."""
    newest: dict[str, dict] = {}
    for each in items:
        rank = tuple(each[k] for k in LATEST_WINS)
        current = newest.get(each["sopInstanceUID"])
        if current is None or rank > tuple(current[k] for k in LATEST_WINS):
            newest[each["sopInstanceUID"]] = each
    return [newest[k] for k in sorted(newest)]


def write_items(table, items: list[dict]) -> None:
    """Write items with BatchWriteItem (25 a call, unprocessed ones retried)."""
    with table.batch_writer(overwrite_by_pkeys=["jobId", "recordId"]) as batch:
        for each in items:
            batch.put_item(Item=each)
