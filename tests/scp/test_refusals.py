"""Bad input gets a clear failure status and changes nothing; the association goes on."""

from __future__ import annotations

from pathlib import Path

import pytest
from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage, MRImageStorage

from tests.support.dicom_files import (
    dataset_bytes,
    make_dataset,
    real_world_files,
    uid,
    write_part10,
)


def _file(tmp_path: Path, name: str, **changes: str) -> Path:
    """A Part 10 file whose file meta (what the C-STORE request announces) names the valid
    UIDs while its dataset carries the changes."""
    ds = make_dataset(study=uid("r"), series=uid("r", 1), sop=uid("r", name))
    path = write_part10(ds, tmp_path / f"{name}.dcm")
    if changes:
        original = path.read_bytes()
        meta = original[: len(original) - len(dataset_bytes(path))]
        for keyword, value in changes.items():
            setattr(ds, keyword, value)
        changed = write_part10(ds, tmp_path / f"{name}-changed.dcm")
        path.write_bytes(meta + dataset_bytes(changed))
    return path


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI", "ignore:The value length")
@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"StudyInstanceUID": "1.2.840.abc"}, 0xC213),
        ({"SeriesInstanceUID": "1." + "2" * 70}, 0xC213),
        ({"StudyInstanceUID": ""}, 0xC213),
        ({"SOPInstanceUID": uid("someone else")}, 0xA900),
        ({"SOPClassUID": MRImageStorage}, 0xA900),
    ],
)
def test_bad_instances_are_refused_and_nothing_is_stored(
    start_scp, tmp_path, monkeypatch, changes, status
):
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    scp = start_scp()
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="STORESCP")
    bad = assoc.send_c_store(str(_file(tmp_path, "bad", **changes))).Status
    good = assoc.send_c_store(str(_file(tmp_path, "good"))).Status
    assoc.release()
    assert (bad, good) == (status, 0x0000)
    scp.terminate()
    stored = list((tmp_path / "store" / "incoming").rglob("*"))
    assert [p.name for p in stored if p.is_file()] == [f"{uid('r', 'good')}.dcm"]
    (line,) = [x for x in scp.log_lines() if x.get("event") == "store-failed"]
    assert line["status"] == f"0x{status:04X}" and line["reason"]


@pytest.mark.filterwarnings("ignore:Invalid value")
def test_real_world_files_are_stored_exactly_as_received(start_scp, tmp_path):
    """GIVEN complete files with malformed values (an RT Dose whose Number of Frames is `1A`,
    which dcmtk and Orthanc store), odd lengths, private tags and undefined-length sequences,
    WHEN sent, THEN each is acknowledged and stored byte for byte."""
    files = real_world_files(tmp_path, uid("l"), uid("l", 1))
    scp = start_scp()
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="STORESCP")
    results = {name: assoc.send_c_store(str(p)).Status for name, p in files.items()}
    assoc.release()
    assert results == dict.fromkeys(files, 0x0000)
    scp.terminate()
    stored = {p.stem: p for p in (tmp_path / "store" / "incoming").rglob("*.dcm")}
    for name, path in files.items():
        assert dataset_bytes(stored[uid(uid("l"), name)]) == dataset_bytes(path), name
