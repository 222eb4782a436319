"""Instances sent by real peers (dcmtk storescu/echoscu, pynetdicom) arrive as valid Part 10
files holding exactly the bytes that were sent, with a batch manifest per association."""

from __future__ import annotations

import os
import subprocess
import zlib

from pydicom import dcmread
from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage

from tests.scp.conftest import STUDY, manifests, stored_files
from tests.support.dicom_files import dataset_bytes

# storescu proposes the uncompressed syntaxes plus the one its flag names.
STORESCU_FLAGS = {
    "explicit": [],
    "mr": [],
    "sc": [],
    "implicit": ["-xi"],
    "big": ["-xb"],
    "deflated": ["-xd"],
    "j2k": ["-xv"],
    "jpeg-lossless": ["-xs"],
    "jpeg-baseline": ["-xy"],
    "jpeg-ls": ["-xt"],
    "rle": ["-xr"],
}
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def storescu(
    port: int, *args: str, flags: tuple[str, ...] = (), aec: str = "STORESCP", aet: str = "STORESCU"
) -> subprocess.CompletedProcess[str]:
    """dcmtk storescu sending the files in args (with storescu flags before the address)."""
    return subprocess.run(
        ["storescu", "-aec", aec, "-aet", aet, *flags, "127.0.0.1", str(port), *args],
        capture_output=True,
        text=True,
        env=DCMTK_ENV,
        timeout=120,
    )


def echoscu(port: int, aec: str = "STORESCP") -> subprocess.CompletedProcess[str]:
    """dcmtk echoscu (C-ECHO) to the SCP on port."""
    return subprocess.run(
        ["echoscu", "-aec", aec, "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        env=DCMTK_ENV,
        timeout=30,
    )


def test_echoscu_is_answered(start_scp) -> None:
    result = echoscu(start_scp().port)
    assert result.returncode == 0, result.stderr


def test_storescu_transfer_syntaxes_are_stored_exactly_as_sent(start_scp, instances, tmp_path):
    scp = start_scp()
    for name, flags in STORESCU_FLAGS.items():
        result = storescu(scp.port, str(instances[name]), flags=tuple(flags))
        assert result.returncode == 0, f"{name}: {result.stderr}"
    scp.terminate()
    stored = stored_files(tmp_path / "store")
    for name in STORESCU_FLAGS:
        sent = dcmread(instances[name], stop_before_pixels=True)
        path = stored[sent.SOPInstanceUID]
        ds = dcmread(path)  # parses to the end
        assert ds.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID, name
        assert ds.file_meta.MediaStorageSOPInstanceUID == sent.SOPInstanceUID
        assert ds.file_meta.MediaStorageSOPClassUID == sent.SOPClassUID
        assert ds.StudyInstanceUID == STUDY
        original, received = dataset_bytes(instances[name]), dataset_bytes(path)
        if name == "deflated":  # dcmtk re-deflates when it sends: compare what was deflated
            original, received = _inflate(original), _inflate(received)
        assert received == original, f"{name}: stored dataset differs from the one sent"
    # One association per storescu run, one study each: one manifest per association.
    docs = manifests(tmp_path / "store")
    assert len(docs) == len(STORESCU_FLAGS)
    assert {d["closeReason"] for d in docs} == {"released"}
    assert not list((tmp_path / "store" / "open").glob("*.json")), "open markers left behind"


def test_pynetdicom_raw_send_is_stored_byte_for_byte(start_scp, instances, tmp_path, monkeypatch):
    """pynetdicom can send a file's dataset bytes untouched: the stored bytes must be the same,
    deflated and HTJ2K included."""
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    scp = start_scp()
    names = ["explicit", "deflated", "htj2k", "j2k", "rle", "big"]
    ae = AE(ae_title="PYNETDICOM")
    for name in names:
        ts = dcmread(instances[name], stop_before_pixels=True).file_meta.TransferSyntaxUID
        ae.add_requested_context(CTImageStorage, ts)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="STORESCP")
    assert assoc.is_established
    statuses = [assoc.send_c_store(instances[n]).Status for n in names]
    assoc.release()
    assert statuses == [0] * len(names)
    scp.terminate()
    stored = stored_files(tmp_path / "store")
    for name in names:
        sop = dcmread(instances[name], stop_before_pixels=True).SOPInstanceUID
        assert dataset_bytes(stored[sop]) == dataset_bytes(instances[name]), name
    (doc,) = manifests(tmp_path / "store")
    assert doc["instanceCount"] == len(names)
    assert doc["callingAETitle"] == "PYNETDICOM"
    assert {i["key"].rsplit("/", 1)[1] for i in doc["instances"]} == {
        p.name for p in stored.values()
    }


def test_batches_split_by_study_and_by_file_limit(start_scp, tmp_path):
    from tests.support.dicom_files import make_dataset, uid, write_part10

    files = []
    for study in ("S1", "S2"):
        for i in range(3):
            ds = make_dataset(
                study=uid("st", study), series=uid("se", study), sop=uid("sop", study, i), seed=i
            )
            files.append(str(write_part10(ds, tmp_path / "in" / f"{study}-{i}.dcm")))
    scp = start_scp(batch_max_files=2)
    assert storescu(scp.port, *files).returncode == 0
    scp.terminate()
    docs = manifests(tmp_path / "store")
    # Per study: a full batch of 2 (file-limit) and a batch of 1 closed at release.
    assert sorted((d["instanceCount"], d["closeReason"]) for d in docs) == [
        (1, "released"),
        (1, "released"),
        (2, "file-limit"),
        (2, "file-limit"),
    ]
    keys = [i["key"] for d in docs for i in d["instances"]]
    assert len(keys) == len(set(keys)) == 6, "an instance is listed in two manifests"
    for d in docs:
        assert all(k.startswith(d["inputPrefix"]) for k in (i["key"] for i in d["instances"]))
        assert (
            len(list((tmp_path / "store" / d["inputPrefix"]).rglob("*.dcm"))) == d["instanceCount"]
        )


def _inflate(data: bytes) -> bytes:
    return zlib.decompressobj(-zlib.MAX_WBITS).decompress(data)
