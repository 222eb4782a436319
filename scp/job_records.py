"""The items the SCP itself writes in the job table (DicomImportJobTable): one per instance it
stored directly in HealthImaging, as config/contracts.json's jobTable.direct describes, so that
`storescp-lookup` answers for it like for an imported one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from scp.contracts import CONFLICT, DIRECT_ARRIVAL, DIRECT_JOB_PREFIX, IMPORTED
from scp.contracts import INSTANCE_RECORD_PREFIX as INSTANCE_RECORD


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


class JobTable:
    """Writes items into the job table with the task role's credentials."""

    def __init__(self, table_name: str) -> None:
        import boto3

        self.table = boto3.resource("dynamodb").Table(table_name)

    def put(self, item: dict[str, Any]) -> None:
        self.table.put_item(Item=item)
