"""Every C-STORE response status the SCP returns: the handlers use these, the Conformance
Statement and the README list them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoreStatus:
    """One C-STORE response status: its code, its DICOM name, and when the SCP returns it."""

    code: int
    name: str
    meaning: str


SUCCESS = StoreStatus(
    0x0000,
    "Success",
    "The instance is stored durably (S3 acknowledged it, or the local file and its folder are "
    "fsynced) and recorded in its batch; or, routed to HealthImaging directly (DIRECT_STORE), "
    "StoreDICOM's response lists it as stored. A direct store that is throttled, unreachable or "
    "failing beyond DIRECT_STORE_BUDGET falls back to the batch path and is acknowledged once "
    "stored there.",
)
OUT_OF_RESOURCES = StoreStatus(
    0xA700,
    "Refused: Out of Resources",
    "Storing failed (S3 or the local folder returned an error): nothing was stored. Or, with "
    "COMMITMENT_COMMIT_ON=stored and S3, the instance was stored but its job-table record for "
    "storage commitment could not be written (the object is imported as usual). The modality "
    "should send the instance again later.",
)
NO_DISK_SPACE = StoreStatus(
    0xA701,
    "Refused: Out of Resources",
    "The SCP's temporary folder has less free space than MIN_FREE_DISK, so the instance was not "
    "received; nothing was written. Send it again later.",
)
DATASET_MISMATCH = StoreStatus(
    0xA900,
    "Error: Data Set does not match SOP Class",
    "The request's SOP Class UID differs from its presentation context, or the dataset's SOP "
    "Class or SOP Instance UID differs from the request's.",
)
CANNOT_UNDERSTAND = StoreStatus(
    0xC210,
    "Error: Cannot understand",
    "The dataset does not parse to its end: it is truncated, an element's length runs past its "
    "end, or its pixel data is shorter than rows x columns x samples x frames x bits allocated.",
)
UNEXPECTED_ERROR = StoreStatus(
    0xC211,
    "Error: Cannot understand (unexpected)",
    "An unexpected error in the SCP, or a C-STORE on an association the SCP did not accept. "
    "The log line says what happened.",
)
INVALID_UID = StoreStatus(
    0xC212,
    "Error: Cannot understand (invalid UID)",
    "The request's SOP Class or SOP Instance UID is not a valid UID ([0-9.], at most 64 "
    "characters), so it cannot name an object.",
)
NOT_IMPORTABLE = StoreStatus(
    0xC213,
    "Error: Cannot understand (cannot be imported)",
    "The dataset has no valid Study Instance UID or Series Instance UID; HealthImaging cannot "
    "import such an instance, so it is refused rather than stored.",
)
REFUSED_BY_HEALTHIMAGING = StoreStatus(
    0xC214,
    "Error: Cannot understand (refused by HealthImaging)",
    "Routed to HealthImaging directly, the instance was refused for its content: StoreDICOM's "
    "response lists it in the Failed SOP Sequence (0008,1198). The log line gives the Failure "
    "Reason (0008,1197); a reason 0xA9xx is answered 0xA900 instead. Nothing was stored.",
)
NOT_AUTHORISED = StoreStatus(
    0x0124,
    "Refused: Not Authorised",
    "REMOTE_AES lists the calling AE without the store permission (PS3.7 Annex C); nothing was "
    "stored.",
)

STORE_STATUSES: tuple[StoreStatus, ...] = (
    SUCCESS,
    OUT_OF_RESOURCES,
    NO_DISK_SPACE,
    DATASET_MISMATCH,
    CANNOT_UNDERSTAND,
    UNEXPECTED_ERROR,
    INVALID_UID,
    NOT_IMPORTABLE,
    REFUSED_BY_HEALTHIMAGING,
    NOT_AUTHORISED,
)


README_BEGIN = (
    "<!-- BEGIN generated from scp/statuses.py (scp.statuses.statuses_table), do not edit -->"
)
README_END = "<!-- END generated from scp/statuses.py -->"


def statuses_table() -> str:
    """The README's table of C-STORE statuses (markdown)."""
    rows = [f"| 0x{s.code:04X} | {s.name} | {s.meaning} |" for s in STORE_STATUSES]
    return "\n".join(["| Status | Name | When |", "|---|---|---|", *rows])
