"""Every C-STORE response status the SCP can return, with when and why (pure data, no imports
of pynetdicom: the Conformance Statement generator reads it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoreStatus:
    code: int
    name: str
    meaning: str


SUCCESS = StoreStatus(
    0x0000,
    "Success",
    "The instance is stored durably (S3 PutObject or multipart upload complete, or fsync of "
    "the local file) and recorded in its batch; only then is success sent.",
)
OUT_OF_RESOURCES = StoreStatus(
    0xA700,
    "Refused: Out of Resources",
    "Storing failed (S3 or disk error after retries); nothing was kept. Transient: the "
    "modality should send the instance again.",
)
DATASET_MISMATCH = StoreStatus(
    0xA900,
    "Error: Data Set Does Not Match SOP Class",
    "The request's SOP Class UID differs from the presentation context's, or the data set's "
    "SOP Class or SOP Instance UID differs from the request's. Nothing is stored.",
)
CANNOT_UNDERSTAND = StoreStatus(
    0xC210,
    "Error: Cannot Understand",
    "The data set does not parse to its end (truncated, or lengths that lie). Nothing is stored.",
)
UNEXPECTED_ERROR = StoreStatus(
    0xC211,
    "Error: Cannot Understand (unexpected error)",
    "An unexpected error in the SCP, or a C-STORE on an association the SCP did not accept. "
    "Nothing is stored; the SCP logs the error.",
)
INVALID_UID = StoreStatus(
    0xC212,
    "Error: Cannot Understand (invalid UID)",
    "The SOP Class, SOP Instance, Study Instance or Series Instance UID is missing or not a "
    "valid UID (digits and dots, at most 64 characters). Nothing is stored.",
)

STORE_STATUSES: tuple[StoreStatus, ...] = (
    SUCCESS,
    OUT_OF_RESOURCES,
    DATASET_MISMATCH,
    CANNOT_UNDERSTAND,
    UNEXPECTED_ERROR,
    INVALID_UID,
)
