"""Deterministic DICOM Part 10 files for tests (synthetic; no real patient data)."""

from __future__ import annotations

import hashlib
import random
import subprocess
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
)

UID_ROOT = "1.2.826.0.1.3680043.10.1234."  # a test root; every UID below is derived from it


def uid(*parts: object) -> str:
    """A deterministic valid UID from any parts."""
    digest = int(hashlib.sha256(repr(parts).encode()).hexdigest(), 16)
    return (UID_ROOT + str(digest))[:64].rstrip(".")


def make_dataset(
    *,
    study: str,
    series: str,
    sop: str,
    sop_class: str = CTImageStorage,
    rows: int = 64,
    columns: int = 64,
    bits: int = 16,
    patient_name: str = "TEST^PATIENT",
    seed: int = 0,
) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientName = patient_name
    ds.PatientID = "TEST-0001"
    ds.StudyDate = "20260101"
    ds.Modality = {CTImageStorage: "CT", MRImageStorage: "MR"}.get(sop_class, "OT")
    ds.InstanceNumber = seed + 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    size = rows * columns * bits // 8
    block = random.Random(seed).randbytes(min(size, 2**20))  # large images repeat a block
    ds.PixelData = (block * -(-size // len(block)))[:size]
    return ds


def write_part10(ds: Dataset, path: Path, transfer_syntax: str = ExplicitVRLittleEndian) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(
        path,
        enforce_file_format=True,
        implicit_vr=transfer_syntax == ImplicitVRLittleEndian,
        little_endian=transfer_syntax != "1.2.840.10008.1.2.2",
    )
    return path


def write_encapsulated(ds: Dataset, path: Path, transfer_syntax: str) -> Path:
    """A file in a compressed transfer syntax whose fragments are opaque bytes: the SCP stores
    compressed data as received and never decodes it, so real codec output is not needed."""
    frame = hashlib.sha256(ds.SOPInstanceUID.encode()).digest() * 64
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return write_part10(ds, path, transfer_syntax)


def dcmtk_convert(tool: str, src: Path, dest: Path, *options: str) -> Path:
    """Compress with a dcmtk tool (dcmcjpeg, dcmcjpls, dcmcrle, dcmconv): real codec output."""
    subprocess.run([tool, *options, str(src), str(dest)], check=True, capture_output=True)
    return dest


def dataset_bytes(path: Path) -> bytes:
    """The encoded dataset of a Part 10 file: everything after the file meta group."""
    data = path.read_bytes()
    assert data[128:132] == b"DICM", f"{path} is not Part 10"
    group_length = int.from_bytes(data[140:144], "little")
    return data[144 + group_length :]


def raw_element(tag: int, vr: str, value: bytes):
    """An element written exactly as given, however malformed its value."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    return RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


def real_world_files(folder: Path, study: str, series: str) -> dict[str, Path]:
    """Complete files with what real devices send and a lenient SCP stores as received:
    malformed numbers and dates, an odd value length, private tags, undefined-length
    sequences. Name -> file; each file's SOP Instance UID is uid(study, name)."""
    from pydicom.sequence import Sequence

    cases = {
        "rtdose-frames-1A": [(0x00280008, "IS", b"1A")],
        "numbers": [(0x00180050, "DS", b"1,5"), (0x00200013, "IS", b"x7")],
        "dates": [(0x00080020, "DA", b"2026-13-45"), (0x00080030, "TM", b"25:99")],
        "private-odd-length": [(0x00090010, "LO", b"ACME"), (0x00091001, "LO", b"ODD")],
        "undefined-length-sequence": [],
    }
    files = {}
    for name, elements in cases.items():
        ds = make_dataset(study=study, series=series, sop=uid(study, name))
        for tag, vr, value in elements:
            ds[tag] = raw_element(tag, vr, value)
        if name == "undefined-length-sequence":
            item = Dataset()
            item.CodeValue = "123"
            ds.ContentSequence = Sequence([item, Dataset()])
            ds["ContentSequence"].is_undefined_length = True
        path = write_part10(ds, folder / f"{name}.dcm")
        if name == "private-odd-length":  # pydicom pads values to even length; undo it
            data = path.read_bytes()
            path.write_bytes(data.replace(b"LO\x04\x00ODD ", b"LO\x03\x00ODD"))
        files[name] = path
    return files
