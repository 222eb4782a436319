"""The HealthImaging DICOMweb client against Orthanc behind the SigV4-verifying proxy: what it
stores can be searched and read back byte for byte; throttling and 5xx are retried with backoff
within the budget; refusals are reported per instance; every request is signed."""

from __future__ import annotations

import io
import itertools
import random
import urllib.error
import urllib.request
from pathlib import Path

import pydicom
import pytest
from botocore.credentials import Credentials

from scp.healthimaging.client import DicomWebClient, RetryPolicy
from scp.healthimaging.errors import DicomWebError, DicomWebUnavailable
from tests.fakes.dicomweb_proxy import DATASTORE_ID
from tests.support.aws import REGION
from tests.support.dicom_files import make_dataset, uid, write_part10
from tests.support.dicomweb import client_for, needs_orthanc

pytestmark = needs_orthanc


def _instance(tmp_path: Path, name: str) -> tuple[Path, pydicom.Dataset]:
    ds = make_dataset(study=uid("st", name), series=uid("se", name), sop=uid("sop", name))
    return write_part10(ds, tmp_path / f"{name}.dcm"), ds


def _store(client: DicomWebClient, path: Path):
    with path.open("rb") as body:
        return client.store(body, path.stat().st_size)


def test_stored_instance_is_found_and_read_back(proxy, tmp_path):
    path, ds = _instance(tmp_path, "roundtrip")
    client = client_for(proxy)
    outcome = _store(client, path)
    assert list(outcome.stored) == [ds.SOPInstanceUID] and not outcome.failed
    found = list(client.search("/studies", {"StudyInstanceUID": ds.StudyInstanceUID}))
    assert [s["0020000D"]["Value"][0] for s in found] == [ds.StudyInstanceUID]
    data = client.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    assert pydicom.dcmread(io.BytesIO(data)).PixelData == ds.PixelData


def test_search_pages_with_limit_and_offset(proxy, tmp_path):
    client = client_for(proxy)
    study, series = uid("st", "paged"), uid("se", "paged")
    for n in range(5):
        ds = make_dataset(study=study, series=series, sop=uid("sop", "paged", n), seed=n)
        _store(client, write_part10(ds, tmp_path / f"p{n}.dcm"))
    found = list(client.search(f"/studies/{study}/series/{series}/instances", page_size=2))
    assert len({i["00080018"]["Value"][0] for i in found}) == 5
    offsets = [s.path for s in proxy.requests("GET") if "instances?" in s.path]
    assert [p.split("offset=")[1] for p in offsets] == ["0", "2", "4"]


def test_unsigned_and_wrongly_signed_requests_are_refused(proxy, tmp_path):
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(f"{proxy.endpoint}/datastore/{DATASTORE_ID}/studies")
    assert unsigned.value.code == 403
    wrong = DicomWebClient(
        REGION,
        DATASTORE_ID,
        lambda: Credentials("testing", "not-the-secret", "testing"),
        endpoint_url=proxy.endpoint,
    )
    with pytest.raises(DicomWebError, match=r"HTTP 403.*signature does not match"):
        _store(wrong, _instance(tmp_path, "wrong")[0])


def test_throttling_is_retried_with_backoff(proxy, tmp_path):
    path, ds = _instance(tmp_path, "throttled")
    proxy.faults.script["POST"] = [429, 429]
    outcome = _store(client_for(proxy), path)
    assert ds.SOPInstanceUID in outcome.stored
    posts = proxy.requests("POST")
    assert [p.status for p in posts] == [429, 429, 200]
    gaps = [b.at - a.at for a, b in itertools.pairwise(posts)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2  # equal jitter: at least half of 0.2 s, 0.4 s


def test_dropped_connection_is_retried(proxy, tmp_path):
    path, ds = _instance(tmp_path, "dropped")
    proxy.faults.script["POST"] = ["drop"]
    assert ds.SOPInstanceUID in _store(client_for(proxy), path).stored
    assert [p.status for p in proxy.requests("POST")] == [0, 200]


def test_unavailable_beyond_the_budget_names_the_request(proxy, tmp_path):
    proxy.faults.always["POST"] = 503
    with pytest.raises(DicomWebUnavailable, match=r"StoreDICOM \(POST /studies\): HTTP 503"):
        _store(client_for(proxy, budget=1.0), _instance(tmp_path, "down")[0])
    assert len(proxy.requests("POST")) >= 2


def test_refusal_is_reported_per_instance(proxy, tmp_path):
    path, ds = _instance(tmp_path, "refused")
    proxy.faults.refuse[ds.SOPInstanceUID] = 0xC000
    outcome = _store(client_for(proxy), path)
    assert outcome.failed == {ds.SOPInstanceUID: 0xC000} and not outcome.stored


def test_backoff_is_capped_and_jittered():
    policy = RetryPolicy(first_delay=0.1, max_delay=2.0)
    rng = random.Random(1)
    delays = [policy.delay(n, rng) for n in range(1, 10)]
    assert all(0.05 <= d <= 0.1 for d in delays[:1])
    assert all(1.0 <= d <= 2.0 for d in delays[5:])
    assert len(set(delays)) == len(delays)
