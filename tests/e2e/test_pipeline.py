"""End to end: dcmtk storescu -> our SCP (S3 store on moto) -> batch manifest -> SQS -> trigger ->
the real state machine (its HealthImaging tasks answered by the fake) -> the inline RecordResults
-> DynamoDB, then storescp-lookup.

Figures (instances sent, import jobs, seconds from the last C-STORE to the last DynamoDB record)
are printed; run with -s to see them.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from pynetdicom import AE

from lambdas.operators import lookup_main
from tests.fakes.pipeline import environment, local_pipeline
from tests.support.dicom_files import make_dataset, uid, write_part10
from tests.support.scp import ScpProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def pipeline(moto):
    with local_pipeline(moto, f"e2e-{uuid.uuid4().hex[:8]}") as p:
        yield p


@pytest.fixture
def scp(pipeline, tmp_path):
    settings = {"storage": f"s3://{pipeline.bucket}/", "s3_endpoint_url": pipeline.moto.endpoint}
    with ScpProcess(log_dir=tmp_path, **settings) as process:
        yield process


def study_files(tmp_path: Path, tag: str, studies: int, per_study: int) -> list[Path]:
    files = []
    for s in range(studies):
        study, series = uid(tag, s), uid(tag, s, "series")
        for n in range(per_study):
            ds = make_dataset(
                study=study, series=series, sop=uid(tag, s, n), rows=16, columns=16, seed=n
            )
            files.append(write_part10(ds, tmp_path / tag / f"{s}-{n}.dcm"))
    return files


def wait_for_records(pipeline, sops: list[str], timeout: float = 90) -> dict[str, dict]:
    """Feed SQS to the trigger until every SOP instance has its DynamoDB record."""
    found: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(found) < len(sops):
        pipeline.deliver(wait_seconds=1)
        for sop in sops:
            if sop not in found and (items := pipeline.records_for_sop(sop)):
                found[sop] = items[0]
    return found


def test_three_associations_of_two_studies_give_six_import_jobs(pipeline, scp, tmp_path, capsys):
    sent: list[Path] = []
    for association in range(3):
        files = study_files(
            tmp_path, f"assoc{association}-{uuid.uuid4().hex[:6]}", studies=2, per_study=3
        )
        result = subprocess.run(
            [
                "storescu",
                "-aec",
                "STORESCP",
                "-aet",
                "MODALITY",
                "127.0.0.1",
                str(scp.port),
                *map(str, files),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        sent += files
    last_store = time.monotonic()
    sops = [dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in sent]

    found = wait_for_records(pipeline, sops)
    elapsed = time.monotonic() - last_store
    executions = pipeline.wait_for_executions(6)

    assert len(found) == len(sops) == 18
    assert all(
        item["importStatus"] == "IMPORTED" and len(item["imageSetId"]) == 32
        for item in found.values()
    )
    assert len(pipeline.fake.jobs) == 6
    assert [e["status"] for e in executions] == ["SUCCEEDED"] * 6
    assert len(pipeline.job_items()) == 6
    lookup = ["--endpoint-url", pipeline.moto.endpoint, "--table", pipeline.table_name]
    capsys.readouterr()
    assert lookup_main([*lookup, "--region", "us-east-1", "--sop", sops[0]]) == 0
    assert capsys.readouterr().out.startswith(f"{sops[0]}  IMPORTED  image set ")
    print(
        f"\nE2E: instances sent {len(sops)}, import jobs started {len(pipeline.fake.jobs)}, "
        f"last C-STORE to last DynamoDB record {elapsed:.1f} s"
    )


def test_scp_killed_mid_association_its_acknowledged_instances_are_imported(
    pipeline, scp, tmp_path
):
    files = study_files(tmp_path, f"killed-{uuid.uuid4().hex[:6]}", studies=1, per_study=5)
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="STORESCP")
    assert assoc.is_established
    acknowledged = []
    for path in files[:3]:
        ds = dcmread(path)
        assert assoc.send_c_store(ds).Status == 0x0000
        acknowledged.append(ds.SOPInstanceUID)
    scp.kill()
    assoc.abort()
    pipeline.deliver(wait_seconds=1)
    assert pipeline.executions() == []  # no manifest: the batch is still open

    with environment({"SWEEP_AFTER_SECONDS": "0"}):
        swept = pipeline.sweep()
    found = wait_for_records(pipeline, acknowledged)

    assert len(swept) == 1
    assert sorted(found) == sorted(acknowledged)
    assert all(
        item["importStatus"] == "IMPORTED" and item["batchId"] == swept[0]
        for item in found.values()
    )
    (execution,) = pipeline.wait_for_executions(1)
    assert execution["status"] == "SUCCEEDED"
