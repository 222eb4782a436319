"""End to end with an S3 store: a modality sends, asks for storage commitment, the import
workflow (moto + the HealthImaging fake) imports, and the report follows the job table: event
type 1 once every instance is in a primary image set; event type 2 with 0x0110 for an instance
that went to a non-primary image set (a conflict). Seconds from the last C-STORE to the report
are printed (run with -s)."""

from __future__ import annotations

import queue
import time
import uuid

import pytest
from pydicom import dcmread

from tests.e2e.test_pipeline import study_files
from tests.fakes.pipeline import local_pipeline
from tests.support.commitment import Modality, Received, references
from tests.support.dicom_files import make_dataset, uid, write_part10
from tests.support.figures import report_figure
from tests.support.scp import ScpProcess

pytestmark = pytest.mark.slow


def wait_for_report(pipeline, modality: Modality, timeout: float = 90) -> Received:
    """Feed the workflow until the modality has its report."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pipeline.deliver(wait_seconds=1)
        try:
            return modality.next_report(timeout=0.5)
        except queue.Empty:
            continue
    raise TimeoutError("no commitment report")


def test_commitment_follows_the_import_into_primary_image_sets(moto, tmp_path):
    modality = Modality().listen()
    with (
        local_pipeline(moto, f"commit-{uuid.uuid4().hex[:8]}") as pipeline,
        ScpProcess(
            log_dir=tmp_path,
            env={"AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint},
            storage=f"s3://{pipeline.bucket}/",
            s3_endpoint_url=moto.endpoint,
            job_table=pipeline.table_name,
            remote_aes=f"MODALITY=127.0.0.1:{modality.port}:store+commitment",
            workers=1,
        ) as scp,
    ):
        files = study_files(tmp_path, f"commit-{uuid.uuid4().hex[:6]}", studies=1, per_study=3)
        transaction, last_store = modality.send_and_ask(scp.port, files)
        first = wait_for_report(pipeline, modality)
        first_seconds = time.monotonic() - last_store

        # The same series again from "another patient": HealthImaging puts it in a non-primary
        # image set, so it is a conflict, and the commitment fails it.
        sent = dcmread(files[0], stop_before_pixels=True)
        ds = make_dataset(
            study=sent.StudyInstanceUID,
            series=sent.SeriesInstanceUID,
            sop=uid(transaction, "conflict"),
            patient_name="OTHER^PATIENT",
        )
        ds.PatientID = "OTHER-0002"
        conflicting = write_part10(ds, tmp_path / "conflict.dcm")
        assoc = modality.associate(scp.port)
        assert assoc.send_c_store(str(conflicting)).Status == 0
        status, second_transaction = modality.request(
            assoc, references([*files, conflicting]), uid(transaction, 2)
        )
        assoc.release()
        assert status == 0x0000
        second = wait_for_report(pipeline, modality)
    modality.stop()

    assert str(first.info.TransactionUID) == transaction and first.event_type == 1
    assert sorted(first.committed()) == sorted(r[1] for r in references(files))
    assert str(second.info.TransactionUID) == second_transaction and second.event_type == 2
    assert second.failed() == {ds.SOPInstanceUID: 0x0110}
    assert sorted(second.committed()) == sorted(r[1] for r in references(files))
    report_figure(f"E2E commitment (batch path): last C-STORE to report {first_seconds:.1f} s")
