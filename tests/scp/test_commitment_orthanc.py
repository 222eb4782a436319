"""Storage Commitment with Orthanc 1.10 as the modality: it sends instances to our SCP, asks for
commitment through its REST API, receives the report on an association our SCP opens (SCP role
proposed) and shows it through its REST API."""

from __future__ import annotations

from pathlib import Path

from pydicom.uid import MRImageStorage

from tests.scp.test_lifecycle import series_files
from tests.support.commitment import references
from tests.support.dicom_files import uid
from tests.support.net import free_port
from tests.support.orthanc_modality import OrthancModality
from tests.support.scp import ScpProcess


def test_orthanc_gets_its_commitment_reports_through_its_rest_api(tmp_path: Path) -> None:
    files = series_files(tmp_path, 3, "orthanc")
    refs = references(files)
    scp_port = free_port()
    with OrthancModality(tmp_path / "orthanc", scp_port) as orthanc:
        remote = f"{orthanc.ae_title}=127.0.0.1:{orthanc.dicom_port}:store+commitment"
        with ScpProcess(
            log_dir=tmp_path,
            port=scp_port,
            storage=str(tmp_path / "store"),
            remote_aes=remote,
            workers=1,
            commitment_timeout=1,
        ) as scp:
            orthanc.send([orthanc.upload(path) for path in files])
            committed = orthanc.report(orthanc.ask_commitment(refs))
            # One instance stored under another class, one never sent.
            wrong = (MRImageStorage, refs[0][1])
            never = (refs[0][0], uid("orthanc", "never"))
            failed = orthanc.report(orthanc.ask_commitment([refs[1], wrong, never]))
            reported = [x for x in scp.log_lines() if x.get("event") == "commitment-reported"]
    assert committed["Status"] == "Success", committed
    assert committed["RemoteAET"] == "STORESCP"
    assert sorted(i["SOPInstanceUID"] for i in committed["Success"]) == sorted(r[1] for r in refs)
    assert committed["Failures"] == []
    assert failed["Status"] == "Failure", failed
    assert [i["SOPInstanceUID"] for i in failed["Success"]] == [refs[1][1]]
    reasons = {i["SOPInstanceUID"]: i["FailureReason"] for i in failed["Failures"]}
    assert reasons == {wrong[1]: 0x0119, never[1]: 0x0112}
    assert {line["delivery"] for line in reported} == {"new association"}
