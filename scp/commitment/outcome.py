"""From where each referenced instance is to the report (PS3.4 J.3.3): pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydicom.dataset import Dataset

from scp.commitment import (
    ALL_COMMITTED,
    CLASS_INSTANCE_CONFLICT,
    DUPLICATE_TRANSACTION_UID,
    FAILURES_EXIST,
    NO_SUCH_OBJECT_INSTANCE,
    PROCESSING_FAILURE,
)
from scp.commitment.request import Reference

# Where an instance is, as a locator (scp/commitment/locate.py) says.
COMMITTED = "COMMITTED"  # in a primary image set (or durably stored, COMMITMENT_COMMIT_ON)
WAITING = "WAITING"  # stored, not imported yet
FAILED = "FAILED"  # HealthImaging failed it, or put it in a non-primary image set


@dataclass(frozen=True)
class Found:
    """One instance the store knows: its stored SOP Class UID and its state."""

    sop_class_uid: str  # '' when the store does not know it (job-table items before 0.1)
    state: str
    reason: str = ""  # why it failed, for the log (never PHI: a state or an error code)


@dataclass(frozen=True)
class Report:
    """The N-EVENT-REPORT of a transaction: event type, committed and failed instances."""

    transaction_uid: str
    committed: tuple[Reference, ...]
    failed: tuple[tuple[Reference, int], ...]

    @property
    def event_type(self) -> int:
        return FAILURES_EXIST if self.failed else ALL_COMMITTED

    def dataset(self) -> Dataset:
        """Event Information: Transaction UID, Referenced SOP Sequence (committed) and, with
        failures, Failed SOP Sequence with a Failure Reason each."""
        ds = Dataset()
        ds.TransactionUID = self.transaction_uid
        if self.committed or not self.failed:
            ds.ReferencedSOPSequence = [_item(ref) for ref in self.committed]
        if self.failed:
            items = []
            for ref, reason in self.failed:
                item = _item(ref)
                item.FailureReason = reason
                items.append(item)
            ds.FailedSOPSequence = items
        return ds


def _item(ref: Reference) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ref.sop_class_uid
    item.ReferencedSOPInstanceUID = ref.sop_instance_uid
    return item


def failure_of(ref: Reference, found: Found | None, deadline_passed: bool) -> int | None:
    """0 when committed, a Failure Reason when failed for good, None while it may still come."""
    if found is None:
        return NO_SUCH_OBJECT_INSTANCE if deadline_passed else None
    if found.sop_class_uid and found.sop_class_uid != ref.sop_class_uid:
        return CLASS_INSTANCE_CONFLICT
    if found.state == COMMITTED:
        return 0
    if found.state == FAILED:
        return PROCESSING_FAILURE
    return PROCESSING_FAILURE if deadline_passed else None


def decide(
    transaction_uid: str,
    references: tuple[Reference, ...],
    found: Mapping[str, Found],
    deadline_passed: bool,
    duplicate: bool = False,
) -> Report | None:
    """The report once every instance has a final state (or the deadline passed); else None."""
    if duplicate:
        return Report(
            transaction_uid, (), tuple((r, DUPLICATE_TRANSACTION_UID) for r in references)
        )
    committed, failed = [], []
    for ref in references:
        reason = failure_of(ref, found.get(ref.sop_instance_uid), deadline_passed)
        if reason is None:
            return None
        if reason:
            failed.append((ref, reason))
        else:
            committed.append(ref)
    return Report(transaction_uid, tuple(committed), tuple(failed))
