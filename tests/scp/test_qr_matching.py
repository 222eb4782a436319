"""PS3.4 C.2.2.2 matching (scp/qr/matching.py) and the C-FIND identifier rules of
scp/qr/search.py that need no HealthImaging: the QIDO-RS query, local matching, return keys."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from scp.qr.matching import matches
from scp.qr.search import IdentifierError, level_of, qido_query, record_matches, response_identifier


@pytest.mark.parametrize(
    ("key", "vr", "values", "expected"),
    [
        ("", "LO", ["X"], True),  # universal
        ("*", "PN", ["DOE^JOHN"], True),
        ("CT", "CS", ["CT"], True),  # single value
        ("CT", "CS", ["MR"], False),
        ("CT", "CS", ["MR", "CT"], True),  # multi-valued attribute: one value matches
        ("doe^john", "PN", ["DOE^JOHN"], True),  # PN case-insensitive
        ("abc", "LO", ["ABC"], False),  # other VRs exact
        ("1.2\\1.3", "UI", ["1.3"], True),  # UID list
        ("1.2\\1.3", "UI", ["1.4"], False),
        ("1.2*", "UI", ["1.23"], False),  # no wildcards on UI
        ("DOE*", "PN", ["DOE^JANE"], True),  # wildcard
        ("D?E^*", "PN", ["DOE^X"], True),
        ("D?E", "PN", ["DOOE"], False),
        ("A.C", "LO", ["ABC"], False),  # regex characters are literal
        ("20260101-20260131", "DA", ["20260115"], True),  # range
        ("20260101-20260131", "DA", ["20260201"], False),
        ("20260101-", "DA", ["20251231"], False),
        ("-20260101", "DA", ["20260101"], True),
        ("20260101", "DA", ["20260101"], True),
        ("1000-1200", "TM", ["113059.5"], True),
        ("1000-1200", "TM", ["120100"], False),  # 1200: to the minute
        ("CT", "CS", None, True),  # not returned: not matched, returned empty
    ],
)
def test_matching_rules(key: str, vr: str, values: list[str] | None, expected: bool) -> None:
    assert matches(key, vr, values) is expected


def identifier(**keys: object) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def test_filterable_single_values_go_to_the_search_uid_lists_and_others_do_not() -> None:
    ds = identifier(
        QueryRetrieveLevel="STUDY",
        PatientName="DOE*",
        StudyDate="20260101-20260131",
        StudyInstanceUID=["1.2", "1.3"],
        StudyDescription="HEAD*",
        AccessionNumber="",
    )
    assert qido_query(ds, "STUDY") == {
        "PatientName": "DOE*",
        "StudyDate": "20260101-20260131",
        "includefield": "AccessionNumber,StudyDescription,StudyInstanceUID",
    }
    assert qido_query(identifier(Modality="CT", SOPClassUID="1.2"), "SERIES") == {
        "Modality": "CT",
        "includefield": "SOPClassUID",
    }


def test_every_key_is_matched_locally_and_return_keys_filled_or_empty() -> None:
    ds = identifier(
        QueryRetrieveLevel="STUDY", StudyDescription="HEAD*", PatientName="", StudyID=""
    )
    record = identifier(
        StudyDescription="HEAD CT", PatientName="DOE^JANE", StudyInstanceUID="1.2.3"
    )
    assert record_matches(ds, record)
    assert not record_matches(ds, identifier(StudyDescription="CHEST"))
    out = response_identifier(ds, record, "STUDY")
    assert out.QueryRetrieveLevel == "STUDY"
    assert str(out.PatientName) == "DOE^JANE"
    assert out.StudyID is None or out.StudyID == ""  # returned empty
    assert out.StudyInstanceUID == "1.2.3"  # the level's unique key always comes back


def test_a_missing_or_unknown_level_is_refused() -> None:
    with pytest.raises(IdentifierError, match="Query/Retrieve Level"):
        level_of(identifier(PatientID="X"))
    with pytest.raises(IdentifierError):
        level_of(identifier(QueryRetrieveLevel="FRAME"))
    assert level_of(identifier(QueryRetrieveLevel="image ")) == "IMAGE"
    assert level_of(identifier(QueryRetrieveLevel="PATIENT")) == "PATIENT"
    with pytest.raises(IdentifierError, match="STUDY, SERIES, IMAGE"):
        level_of(identifier(QueryRetrieveLevel="PATIENT"), study_root=True)


def test_retrieve_ae_title_and_a_unicode_character_set_are_filled_in() -> None:
    ds = identifier(QueryRetrieveLevel="STUDY", PatientName="", RetrieveAETitle="")
    record = identifier(PatientName="MÜLLER^ANNA", StudyInstanceUID="1.2")
    out = response_identifier(ds, record, "STUDY", "STORESCP")
    assert out.RetrieveAETitle == "STORESCP"
    assert out.SpecificCharacterSet == "ISO_IR 192"
    plain = response_identifier(ds, identifier(PatientName="DOE"), "STUDY", "STORESCP")
    assert "SpecificCharacterSet" not in plain
