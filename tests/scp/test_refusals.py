"""Bad input gets a clear failure status and changes nothing; the association goes on."""

from __future__ import annotations

from pathlib import Path

import pytest
from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage, MRImageStorage

from tests.support.dicom_files import dataset_bytes, make_dataset, uid, write_part10


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
        ({"StudyInstanceUID": "1.2.840.abc"}, 0xC212),
        ({"SeriesInstanceUID": "1." + "2" * 70}, 0xC212),
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
