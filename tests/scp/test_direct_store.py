"""Urgent instances go straight to HealthImaging (StoreDICOM) and are acknowledged only once
stored: our SCP as a process, dcmtk's storescu as the modality, Orthanc's DICOMweb behind the
SigV4-verifying HealthImaging proxy, the job table in moto's DynamoDB."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from lambdas.operators import lookup
from scp.contracts import BATCHES_PREFIX, DIRECT_PREFIX, INCOMING_PREFIX
from tests.fakes.dicomweb_proxy import DicomWebProxy
from tests.fakes.pipeline import create_job_table
from tests.scp.test_transfer import storescu
from tests.support.aws import REGION, MotoServer
from tests.support.dicom_files import make_dataset, uid, write_part10
from tests.support.dicomweb import client_for, needs_orthanc
from tests.support.scp import ScpProcess

pytestmark = needs_orthanc
TABLE = f"direct-{uuid.uuid4().hex[:8]}"
URGENT, ROUTINE = "URGENT", "ROUTINE"


@pytest.fixture(scope="module")
def job_table(moto: MotoServer) -> str:
    """A job table of this module's own in the session's moto server."""
    create_job_table(moto.client("dynamodb"), TABLE)
    return TABLE


@pytest.fixture(scope="module")
def scp(
    tmp_path_factory, running_proxy: DicomWebProxy, moto: MotoServer, job_table: str
) -> Iterator[ScpProcess]:
    storage = tmp_path_factory.mktemp("received")
    with ScpProcess(
        log_dir=storage.parent,
        env={"AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint},
        storage=str(storage),
        workers=1,
        direct_store="selected",
        direct_store_calling_ae_titles=URGENT,
        direct_store_high_priority=True,
        direct_store_budget=1.5,
        **running_proxy.scp_settings(),
        job_table=job_table,
    ) as process:
        process.storage = storage  # type: ignore[attr-defined]
        yield process


def _instance(tmp_path: Path, name: str) -> tuple[Path, pydicom.Dataset]:
    ds = make_dataset(study=uid("st", name), series=uid("se", name), sop=uid("sop", name))
    return write_part10(ds, tmp_path / f"{name}.dcm"), ds


def _manifested(storage: Path, sop: str, settle: float = 0.0) -> int:
    """In how many batch manifests the instance is listed (batches close just after their
    association ends: `settle` seconds at most for one to appear)."""
    deadline = time.monotonic() + settle
    while True:
        manifests = [json.loads(p.read_text()) for p in (storage / BATCHES_PREFIX).glob("*.json")]
        count = sum(i["sopInstanceUID"] == sop for m in manifests for i in m["instances"])
        if count or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def _kept(storage: Path, prefix: str, sop: str) -> list[Path]:
    return list((storage / prefix).rglob(f"{sop}.dcm"))


def _events(scp: ScpProcess, name: str, sop: str) -> list[dict]:
    return [e for e in scp.log_lines() if e.get("event") == name and e.get("sopInstanceUID") == sop]


def _record(moto: MotoServer, sop: str) -> dict:
    import boto3

    table = boto3.resource("dynamodb", endpoint_url=moto.endpoint, region_name=REGION)
    (item,) = lookup(table.Table(TABLE), sop=sop)
    return item


def test_urgent_instance_is_acknowledged_once_healthimaging_holds_it(scp, proxy, moto, tmp_path):
    path, ds = _instance(tmp_path, "urgent")
    assert storescu(scp.port, str(path), aet=URGENT).returncode == 0
    # Acknowledged: StoreDICOM listed it, and it can be read back, pixel for pixel.
    held = client_for(proxy).retrieve_instance(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    )
    assert pydicom.dcmread(io.BytesIO(held)).PixelData == ds.PixelData
    assert [p.status for p in proxy.requests("POST")] == [200]
    # Kept under direct/ for lookup and redrive, in no batch; recorded in the job table.
    assert len(_kept(scp.storage, DIRECT_PREFIX, ds.SOPInstanceUID)) == 1
    assert _manifested(scp.storage, ds.SOPInstanceUID) == 0
    item = _record(moto, ds.SOPInstanceUID)
    assert (item["importStatus"], item["isPrimary"], item["arrivedBy"]) == (
        "IMPORTED",
        True,
        "StoreDICOM",
    )


def test_routine_instance_takes_the_batch_path(scp, proxy, tmp_path):
    path, ds = _instance(tmp_path, "routine")
    assert storescu(scp.port, str(path), aet=ROUTINE).returncode == 0
    assert proxy.requests("POST") == []
    assert _manifested(scp.storage, ds.SOPInstanceUID, settle=10) == 1


def test_high_priority_goes_direct(scp, proxy, tmp_path):
    _, ds = _instance(tmp_path, "high")
    ae = AE(ae_title=ROUTINE)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="STORESCP")
    try:
        status = assoc.send_c_store(ds, priority=1)
    finally:
        assoc.release()
    assert status.Status == 0x0000
    assert [p.status for p in proxy.requests("POST")] == [200]
    assert len(_kept(scp.storage, DIRECT_PREFIX, ds.SOPInstanceUID)) == 1


def test_throttled_then_stored(scp, proxy, tmp_path):
    path, ds = _instance(tmp_path, "throttled")
    proxy.faults.script["POST"] = [429]
    assert storescu(scp.port, str(path), aet=URGENT).returncode == 0
    posts = proxy.requests("POST")
    assert [p.status for p in posts] == [429, 200]
    assert posts[1].at - posts[0].at >= 0.05  # backed off before the retry
    assert len(_kept(scp.storage, DIRECT_PREFIX, ds.SOPInstanceUID)) == 1


def test_dropped_connection_mid_request_is_retried(scp, proxy, tmp_path):
    path, ds = _instance(tmp_path, "dropped")
    proxy.faults.script["POST"] = ["drop"]
    assert storescu(scp.port, str(path), aet=URGENT).returncode == 0
    assert [p.status for p in proxy.requests("POST")] == [0, 200]
    assert _manifested(scp.storage, ds.SOPInstanceUID) == 0


def test_unavailable_beyond_the_budget_falls_back_to_the_batch_path(scp, proxy, tmp_path):
    path, ds = _instance(tmp_path, "unavailable")
    proxy.faults.always["POST"] = 503
    assert storescu(scp.port, str(path), aet=URGENT).returncode == 0
    assert len(proxy.requests("POST")) >= 2
    assert _events(scp, "direct-fallback", ds.SOPInstanceUID)
    # Acknowledged from the batch path: in one manifest (one import), never under direct/.
    assert _manifested(scp.storage, ds.SOPInstanceUID, settle=10) == 1
    assert len(_kept(scp.storage, INCOMING_PREFIX, ds.SOPInstanceUID)) == 1
    assert _kept(scp.storage, DIRECT_PREFIX, ds.SOPInstanceUID) == []


def test_refused_instance_gets_a_failure_status_and_is_not_stored(scp, proxy, tmp_path):
    path, ds = _instance(tmp_path, "refused")
    proxy.faults.refuse[ds.SOPInstanceUID] = 0xC000
    storescu(scp.port, str(path), aet=URGENT)
    (failed,) = _events(scp, "store-failed", ds.SOPInstanceUID)
    assert failed["status"] == "0xC214" and "0xC000" in failed["reason"]
    assert _manifested(scp.storage, ds.SOPInstanceUID) == 0
    assert list(scp.storage.rglob(f"{ds.SOPInstanceUID}.dcm")) == []


def test_conflict_is_recorded_as_such(scp, proxy, moto, tmp_path):
    path, ds = _instance(tmp_path, "conflict")
    proxy.faults.conflicts.add(ds.SOPInstanceUID)
    assert storescu(scp.port, str(path), aet=URGENT).returncode == 0
    item = _record(moto, ds.SOPInstanceUID)
    assert (item["importStatus"], item["isPrimary"]) == ("CONFLICT", False)
    (stored,) = _events(scp, "direct-stored", ds.SOPInstanceUID)
    assert stored["primary"] is False
