"""The C-FIND handler (scp/qr/service.py) over the real client, proxy and Orthanc, in this
process so that HealthImaging's 10,000-record cap can be lowered: the cap gives a warning, not a
silent truncation; C-CANCEL stops the search; a failed search is a failure with a reason, never
an empty Success. The event is pynetdicom's data only (identifier, cancel flag, calling AE)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from pydicom.dataset import Dataset
from pynetdicom.sop_class import PatientRootQueryRetrieveInformationModelFind

from scp.healthimaging import client as client_module
from scp.qr.service import CANCEL, CAPPED, OUT_OF_RESOURCES, UNABLE_TO_PROCESS, QueryService
from scp.settings import Settings
from tests.support.dicom_files import make_dataset, uid, write_part10
from tests.support.dicomweb import client_for, needs_orthanc

pytestmark = needs_orthanc
STUDY, SERIES = uid("qrs", "study"), uid("qrs", "series")


@pytest.fixture
def five(proxy, tmp_path: Path):
    client = client_for(proxy, budget=1.0)
    for n in range(5):
        ds = make_dataset(study=STUDY, series=SERIES, sop=uid("qrs", n), rows=8, columns=8, seed=n)
        path = write_part10(ds, tmp_path / f"{n}.dcm")
        with path.open("rb") as body:
            client.store(body, path.stat().st_size)
    proxy.reset()
    return client


def find(client, cancel_after: int | None = None) -> list[tuple[object, Dataset | None]]:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.StudyInstanceUID, identifier.SeriesInstanceUID = STUDY, SERIES
    identifier.SOPInstanceUID = ""
    event = SimpleNamespace(
        identifier=identifier,
        request=SimpleNamespace(AffectedSOPClassUID=PatientRootQueryRetrieveInformationModelFind),
        is_cancelled=False,
        assoc=SimpleNamespace(requestor=SimpleNamespace(ae_title="WS1")),
    )
    service = QueryService(Settings(qido_page_size=2), client)
    out = []
    for result in service.on_find(event):
        out.append(result)
        if cancel_after is not None and len(out) == cancel_after:
            event.is_cancelled = True
    return out


def _status(result: tuple[object, Dataset | None]) -> int:
    status = result[0]
    return status.Status if isinstance(status, Dataset) else status  # type: ignore[return-value]


def test_all_matches_then_success(five) -> None:
    results = find(five)
    assert [_status(r) for r in results] == [0xFF00] * 5
    assert sorted(r[1].SOPInstanceUID for r in results) == sorted(uid("qrs", n) for n in range(5))


def test_the_cap_ends_with_a_warning_not_a_silent_success(five, monkeypatch) -> None:
    monkeypatch.setattr(client_module, "MAX_SEARCH_RESULTS", 4)
    results = find(five)
    assert [_status(r) for r in results] == [0xFF00] * 4 + [CAPPED]
    assert "10,000-record cap" in results[-1][0].ErrorComment
    # Exactly as many as the cap: whether there are more cannot be asked, so a warning too.
    monkeypatch.setattr(client_module, "MAX_SEARCH_RESULTS", 5)
    assert [_status(r) for r in find(five)] == [0xFF00] * 5 + [CAPPED]
    monkeypatch.setattr(client_module, "MAX_SEARCH_RESULTS", 6)
    assert [_status(r) for r in find(five)] == [0xFF00] * 5


def test_cancel_stops_the_search(five, proxy) -> None:
    results = find(five, cancel_after=1)
    assert [_status(r) for r in results] == [0xFF00, CANCEL]
    assert len(proxy.requests("GET")) == 1  # the second page was never asked for


@pytest.mark.parametrize(("answer", "code"), [(503, OUT_OF_RESOURCES), (400, UNABLE_TO_PROCESS)])
def test_a_failed_search_is_a_failure_with_a_reason(five, proxy, answer, code) -> None:
    proxy.faults.always["GET"] = answer
    (result,) = find(five)
    assert result[0].Status == code and result[1] is None
    assert f"HTTP {answer}" in result[0].ErrorComment
