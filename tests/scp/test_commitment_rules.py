"""Storage commitment's pure rules: the N-ACTION's validation (PS3.4 J.3.2) and the report
(PS3.4 J.3.3, failure reasons of PS3.3 C.14.1.1), without a network."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from scp.commitment.outcome import COMMITTED, FAILED, WAITING, Found, decide
from scp.commitment.request import InvalidRequest, Reference, parse_request
from tests.support.commitment import WELL_KNOWN, action_information

CT, MR = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"


def test_a_valid_request_lists_its_references() -> None:
    request = parse_request(WELL_KNOWN, 1, action_information("1.2.3", [(CT, "1.2.3.1")]))
    assert request.transaction_uid == "1.2.3"
    assert request.references == (Reference(CT, "1.2.3.1"),)
    assert request.digest("CT1") == request.digest("CT1") != request.digest("CT2")


def test_too_many_references_are_a_resource_limitation() -> None:
    refs = [(CT, f"1.2.{i}") for i in range(5001)]  # MAX_REFERENCES + 1
    with pytest.raises(InvalidRequest) as err:
        parse_request(WELL_KNOWN, 1, action_information("1.2.3", refs))
    assert err.value.status == 0x0213


def test_missing_action_information_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_request(WELL_KNOWN, 1, None)
    assert err.value.status == 0x0115
    with pytest.raises(InvalidRequest):
        parse_request(WELL_KNOWN, 1, Dataset())


A, B, C = Reference(CT, "1.1"), Reference(CT, "1.2"), Reference(CT, "1.3")


def test_the_report_waits_for_every_instance_until_the_deadline() -> None:
    found = {"1.1": Found(CT, COMMITTED), "1.2": Found(CT, WAITING)}
    assert decide("9.9", (A, B), found, deadline_passed=False) is None
    assert decide("9.9", (A, C), found, deadline_passed=False) is None  # C not received yet
    late = decide("9.9", (A, B, C), found, deadline_passed=True)
    assert late is not None and late.event_type == 2
    assert late.failed == ((B, 0x0110), (C, 0x0112))


def test_final_states_report_at_once() -> None:
    found = {"1.1": Found(CT, COMMITTED), "1.2": Found(CT, FAILED), "1.3": Found(MR, COMMITTED)}
    report = decide("9.9", (A, B, C), found, deadline_passed=False)
    assert report is not None
    assert report.committed == (A,)
    assert report.failed == ((B, 0x0110), (C, 0x0119))
    ds = report.dataset()
    assert ds.TransactionUID == "9.9"
    assert [i.ReferencedSOPInstanceUID for i in ds.ReferencedSOPSequence] == ["1.1"]
    assert [(i.ReferencedSOPInstanceUID, i.FailureReason) for i in ds.FailedSOPSequence] == [
        ("1.2", 0x0110),
        ("1.3", 0x0119),
    ]


def test_all_committed_is_event_type_1_without_a_failed_sequence() -> None:
    report = decide("9.9", (A,), {"1.1": Found(CT, COMMITTED)}, deadline_passed=False)
    assert report is not None and report.event_type == 1
    assert "FailedSOPSequence" not in report.dataset()


def test_a_duplicate_transaction_fails_every_instance_with_0131() -> None:
    report = decide("9.9", (A, B), {}, deadline_passed=False, duplicate=True)
    assert report is not None and report.event_type == 2
    assert report.failed == ((A, 0x0131), (B, 0x0131))
    assert "ReferencedSOPSequence" not in report.dataset()
