"""An N-ACTION request for storage commitment, validated (PS3.4 J.3.2): pure functions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from scp.commitment import MAX_REFERENCES, REQUEST_COMMITMENT, WELL_KNOWN_INSTANCE
from scp.settings import is_uid

NO_SUCH_SOP_INSTANCE = 0x0112
INVALID_ARGUMENT_VALUE = 0x0115
NO_SUCH_ACTION = 0x0123
RESOURCE_LIMITATION = 0x0213


@dataclass(frozen=True)
class Reference:
    """One instance the modality asks us to commit to."""

    sop_class_uid: str
    sop_instance_uid: str


@dataclass(frozen=True)
class CommitmentRequest:
    transaction_uid: str
    references: tuple[Reference, ...]

    def digest(self, calling_ae: str) -> str:
        """Equal for the same requester and instances: a repeated request, not a duplicate."""
        text = (
            calling_ae
            + "\n"
            + "\n".join(
                f"{r.sop_class_uid} {r.sop_instance_uid}"
                for r in sorted(set(self.references), key=str)
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class InvalidRequest(Exception):
    """The N-ACTION is refused: `status` for the response, `comment` for its Error Comment."""

    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.status, self.comment = status, comment


def parse_request(instance_uid: str, action_type: int | None, info: Any) -> CommitmentRequest:
    """The request from the N-ACTION's Requested SOP Instance UID, Action Type ID and Action
    Information (a pydicom Dataset or None); raises InvalidRequest."""
    if str(instance_uid) != WELL_KNOWN_INSTANCE:
        raise InvalidRequest(
            NO_SUCH_SOP_INSTANCE, f"the Requested SOP Instance UID must be {WELL_KNOWN_INSTANCE}"
        )
    if action_type != REQUEST_COMMITMENT:
        raise InvalidRequest(NO_SUCH_ACTION, "the Action Type ID must be 1 (request commitment)")
    if info is None:
        raise InvalidRequest(INVALID_ARGUMENT_VALUE, "Action Information missing")
    transaction = str(info.get("TransactionUID", "") or "")
    if not is_uid(transaction):
        raise InvalidRequest(
            INVALID_ARGUMENT_VALUE, "Transaction UID (0008,1195) missing or not a UID"
        )
    items = info.get("ReferencedSOPSequence") or []
    if not items:
        raise InvalidRequest(INVALID_ARGUMENT_VALUE, "Referenced SOP Sequence (0008,1199) empty")
    if len(items) > MAX_REFERENCES:
        raise InvalidRequest(RESOURCE_LIMITATION, f"at most {MAX_REFERENCES} instances per request")
    references = []
    for index, item in enumerate(items, start=1):
        sop_class = str(item.get("ReferencedSOPClassUID", "") or "")
        sop_instance = str(item.get("ReferencedSOPInstanceUID", "") or "")
        if not (is_uid(sop_class) and is_uid(sop_instance)):
            raise InvalidRequest(
                INVALID_ARGUMENT_VALUE,
                f"Referenced SOP Sequence item {index}: SOP Class or Instance UID missing or "
                "not a UID",
            )
        references.append(Reference(sop_class, sop_instance))
    return CommitmentRequest(transaction, tuple(references))
