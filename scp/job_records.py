"""The items the SCP itself writes in the job table (DicomImportJobTable): one per instance it
stored directly in HealthImaging, as config/contracts.json's jobTable.direct describes, so that
`storescp-lookup` answers for it like for an imported one; and, when storage commitment commits
on durable storage with an S3 store, one per instance stored in S3 (jobTable.stored), since an S3
key does not say which study a SOP Instance UID belongs to."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from scp.contracts import (
    CONFLICT,
    DIRECT_ARRIVAL,
    DIRECT_JOB_PREFIX,
    EXPIRES_AT,
    IMPORTED,
    STORED,
    STORED_ATTEMPT,
    STORED_JOB_PREFIX,
)
from scp.contracts import INSTANCE_RECORD_PREFIX as INSTANCE_RECORD
from scp.dataset_scan import InstanceInfo
from scp.settings import Settings

DAY = 86400


def now_iso() -> str:
    """UTC now as the import workflow writes `recordedAt` (ISO 8601, seconds, 'Z')."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def direct_item(
    datastore_id: str, study: str, series: str, sop: str, primary: bool | None, key: str
) -> dict[str, Any]:
    """The item of a directly stored instance; `primary` None: not known (the check failed)."""
    item: dict[str, Any] = {
        "jobId": DIRECT_JOB_PREFIX + study,
        "recordId": INSTANCE_RECORD + sop,
        "attempt": 1,
        "recordedAt": now_iso(),
        "arrivedBy": DIRECT_ARRIVAL,
        "importStatus": CONFLICT if primary is False else IMPORTED,
        "datastoreId": datastore_id,
        "studyInstanceUID": study,
        "seriesInstanceUID": series,
        "sopInstanceUID": sop,
    }
    if primary is None:
        item["reason"] = "stored; whether in a primary image set could not be checked"
    else:
        item["isPrimary"] = primary
    if key:
        item["key"] = key
    return item


def expires_at(retention_days: int, now: float | None = None) -> int:
    """The TTL value (epoch seconds) of an item kept `retention_days` from now."""
    return int(time.time() if now is None else now) + retention_days * DAY


def stored_item(
    study: str,
    series: str,
    sop: str,
    sop_class: str,
    batch_id: str,
    key: str,
    retention_days: int,
) -> dict[str, Any]:
    """The item of an instance durably stored in S3 (COMMITMENT_COMMIT_ON=stored): attempt 0,
    so the items of its import attempts win (latest wins), and it expires after the retention."""
    return {
        "jobId": STORED_JOB_PREFIX + study,
        "recordId": INSTANCE_RECORD + sop,
        "attempt": STORED_ATTEMPT,
        "recordedAt": now_iso(),
        "importStatus": STORED,
        "batchId": batch_id,
        "studyInstanceUID": study,
        "seriesInstanceUID": series,
        "sopInstanceUID": sop,
        "sopClassUID": sop_class,  # storage commitment checks it (0x0119)
        "key": key,
        EXPIRES_AT: expires_at(retention_days),
    }


class JobTable:
    """Writes items into the job table with the task role's credentials, from any association's
    thread: through a client, which boto3 makes thread-safe, not a Table resource, which it
    does not (Boto3 guide, "Multithreading or multiprocessing with clients", "... with
    resources")."""

    def __init__(self, table_name: str) -> None:
        import boto3
        from boto3.dynamodb.types import TypeSerializer

        self.name = table_name
        self.client = boto3.client("dynamodb")
        self._serialize = TypeSerializer().serialize

    def put(self, item: dict[str, Any]) -> None:
        values = {name: self._serialize(value) for name, value in item.items()}
        self.client.put_item(TableName=self.name, Item=values)


class StoredRecords:
    """COMMITMENT_COMMIT_ON=stored with an S3 store: records each durably stored instance in the
    job table before its C-STORE answer; a failed write raises (the caller answers a failure)."""

    def __init__(self, table: JobTable, retention_days: int) -> None:
        self.table, self.retention_days = table, retention_days

    def record(self, info: InstanceInfo, batch_id: str, key: str) -> None:
        """`key`: the instance's S3 object key."""
        self.table.put(
            stored_item(
                info.study_instance_uid,
                info.series_instance_uid,
                info.sop_instance_uid,
                info.sop_class_uid,
                batch_id,
                key,
                self.retention_days,
            )
        )


def open_stored_records(settings: Settings) -> StoredRecords | None:
    """The StoredRecords the settings ask for, or None."""
    if not settings.commits_on_stored_in_table:
        return None
    return StoredRecords(JobTable(settings.job_table), settings.commitment_retention_days)
