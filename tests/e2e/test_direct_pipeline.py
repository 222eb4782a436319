"""End to end with direct stores: dcmtk storescu -> our SCP (S3 store on moto, DIRECT_STORE=all)
-> StoreDICOM through the SigV4-verifying proxy to Orthanc, or, when StoreDICOM is unavailable,
the batch path -> the real state machine and the HealthImaging import fake. An instance is
imported by exactly one path: never twice, never not at all. Storage commitment of directly
stored instances reports from their job-table items, with no import (seconds printed, -s)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.e2e.test_pipeline import study_files, wait_for_records
from tests.fakes.pipeline import local_pipeline
from tests.scp.test_transfer import storescu
from tests.support.commitment import Modality
from tests.support.dicomweb import needs_orthanc
from tests.support.figures import report_figure
from tests.support.scp import ScpProcess

pytestmark = [pytest.mark.slow, needs_orthanc]


@pytest.fixture
def pipeline(moto):
    with local_pipeline(moto, f"direct-{uuid.uuid4().hex[:8]}") as p:
        yield p


def _sop(path: Path) -> str:
    return str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def direct_settings(pipeline, proxy) -> dict:
    return {
        "storage": f"s3://{pipeline.bucket}/",
        "s3_endpoint_url": pipeline.moto.endpoint,
        "direct_store": "all",
        "direct_store_budget": 1,
        **proxy.scp_settings(),
        "job_table": pipeline.table_name,
    }


def test_each_instance_is_imported_by_exactly_one_path(pipeline, proxy, tmp_path):
    settings = direct_settings(pipeline, proxy)
    env = {"AWS_ENDPOINT_URL_DYNAMODB": pipeline.moto.endpoint}
    direct = study_files(tmp_path, "direct", studies=1, per_study=2)
    fallen_back = study_files(tmp_path, "fallback", studies=1, per_study=2)
    with ScpProcess(log_dir=tmp_path, env=env, **settings) as scp:
        assert storescu(scp.port, *map(str, direct)).returncode == 0
        proxy.faults.always["POST"] = 503
        assert storescu(scp.port, *map(str, fallen_back)).returncode == 0
    direct_sops, fallback_sops = [_sop(p) for p in direct], [_sop(p) for p in fallen_back]
    assert len(wait_for_records(pipeline, direct_sops + fallback_sops)) == 4
    pipeline.deliver(wait_seconds=2)  # a second import of anything would show up by now
    # Each instance has exactly one item: by StoreDICOM, or by the one import job.
    items = {sop: pipeline.records_for_sop(sop) for sop in direct_sops + fallback_sops}
    assert all(len(found) == 1 for found in items.values()), items
    assert {items[s][0].get("arrivedBy") for s in direct_sops} == {"StoreDICOM"}
    assert {items[s][0].get("arrivedBy") for s in fallback_sops} == {None}
    assert {found[0]["importStatus"] for found in items.values()} == {"IMPORTED"}
    assert len(pipeline.fake.jobs) == 1


def test_commitment_of_direct_stores_reports_with_no_import(pipeline, proxy, tmp_path):
    """Instances stored with StoreDICOM are in a primary image set when their C-STORE succeeds:
    the report follows from their DIRECT# items (commit on import, the default)."""
    modality = Modality().listen()
    files = study_files(tmp_path, "direct-commit", studies=1, per_study=3)
    env = {"AWS_ENDPOINT_URL_DYNAMODB": pipeline.moto.endpoint}
    remote = f"MODALITY=127.0.0.1:{modality.port}:store+commitment"
    try:
        with ScpProcess(log_dir=tmp_path, env=env, remote_aes=remote, workers=1,
                        **direct_settings(pipeline, proxy)) as scp:  # fmt: skip
            transaction, last_store = modality.send_and_ask(scp.port, files)
            report = modality.next_report(timeout=30)
            seconds = time.monotonic() - last_store
    finally:
        modality.stop()
    assert str(report.info.TransactionUID) == transaction and report.event_type == 1
    assert sorted(report.committed()) == sorted(_sop(p) for p in files)
    assert pipeline.fake.jobs == {}  # no import was needed: each went through StoreDICOM
    assert {r.get("arrivedBy") for p in files for r in pipeline.records_for_sop(_sop(p))} == {
        "StoreDICOM"
    }
    report_figure(f"E2E commitment (direct path): last C-STORE to report {seconds:.1f} s")
