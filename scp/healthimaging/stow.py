"""The STOW-RS Store Instances Response (DICOM PS3.18 Annex I, in DICOM JSON, PS3.18 Annex F):
which SOP instances were stored (Referenced SOP Sequence, 0008,1199) and which failed and why
(Failed SOP Sequence 0008,1198 with Failure Reason 0008,1197). HealthImaging's StoreDICOM answers
in this JSON form ([STORE] in scp/healthimaging/__init__.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"
FAILURE_REASON = "00081197"
WARNING_REASON = "00081196"
REFERENCED_SOP_INSTANCE_UID = "00081155"
RETRIEVE_URL = "00081190"


@dataclass(frozen=True)
class Stored:
    """One instance the response lists as stored."""

    retrieve_url: str = ""
    warning_reason: int | None = None


@dataclass(frozen=True)
class StowOutcome:
    """SOP Instance UID -> how it was stored, and SOP Instance UID -> failure reason."""

    stored: dict[str, Stored] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)


def parse_stow_response(doc: Any) -> StowOutcome:
    """Read a STOW-RS response; raises ValueError when it is not one."""
    if not isinstance(doc, dict):
        raise ValueError("expected a DICOM JSON object")
    stored = {
        _uid(item): Stored(_value(item, RETRIEVE_URL) or "", _value(item, WARNING_REASON))
        for item in _items(doc, REFERENCED_SOP_SEQUENCE)
    }
    failed = {
        _uid(item): int(_value(item, FAILURE_REASON) or 0)
        for item in _items(doc, FAILED_SOP_SEQUENCE)
    }
    return StowOutcome(stored, failed)


def _items(doc: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    element = doc.get(tag) or {}
    items = element.get("Value") or []
    if not all(isinstance(i, dict) for i in items):
        raise ValueError(f"({tag[:4]},{tag[4:]}) is not a sequence of items")
    return items


def _value(item: dict[str, Any], tag: str) -> Any:
    values = (item.get(tag) or {}).get("Value") or []
    return values[0] if values else None


def _uid(item: dict[str, Any]) -> str:
    uid = _value(item, REFERENCED_SOP_INSTANCE_UID)
    if not isinstance(uid, str):
        raise ValueError("an item has no Referenced SOP Instance UID (0008,1155)")
    return uid
