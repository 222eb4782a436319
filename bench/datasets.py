"""Deterministic benchmark datasets written as DICOM Part 10 files with pydicom.

Same name, same bytes: UIDs come from a fixed root and counters, pixel data from a seeded
generator. Patient attributes are synthetic (no PHI exists here to leak).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

UID_ROOT = "1.2.826.0.1.3680043.10.1087"  # generated test UIDs; never reused for real data
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
SC_IMAGE = "1.2.840.10008.5.1.4.1.1.7"
MULTIFRAME_WORD_SC = "1.2.840.10008.5.1.4.1.1.7.3"
FORMAT_VERSION = 1  # bump when the bytes a dataset produces change


@dataclass(frozen=True)
class Spec:
    """One dataset: how many instances of which SOP class and image geometry."""

    name: str
    number: int  # distinguishes the datasets' UIDs
    count: int
    sop_class: str
    rows: int
    columns: int
    bits: int
    frames: int = 1


SPECS = {
    "ct": Spec("ct", 1, 300, CT_IMAGE, 512, 512, 16),
    "large": Spec("large", 2, 4, MULTIFRAME_WORD_SC, 512, 512, 16, frames=128),
    "small": Spec("small", 3, 2000, SC_IMAGE, 8, 8, 8),
}


@dataclass(frozen=True)
class Generated:
    """A generated dataset on disk: its files and the bytes of their datasets (no file meta)."""

    name: str
    files: list[Path]
    file_bytes: int
    dataset_bytes: int

    @property
    def count(self) -> int:
        return len(self.files)


def _uid(*parts: int) -> str:
    return ".".join([UID_ROOT, *map(str, parts)])


def meta_end(path: Path) -> int:
    """Offset where the dataset starts: preamble, DICM, then the group length element (which
    pydicom and dcmtk write first; a file without it is refused with ValueError)."""
    with path.open("rb") as f:
        head = f.read(144)
    if head[128:138] != b"DICM\x02\x00\x00\x00UL":
        raise ValueError(f"{path}: no File Meta Information Group Length after DICM")
    return 144 + int.from_bytes(head[140:144], "little")


def build_instance(spec: Spec, index: int, rng: random.Random) -> Dataset:
    """The dataset of instance `index` of `spec`, pixel data drawn from `rng`."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = spec.sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = _uid(3, FORMAT_VERSION, spec.number, index + 1)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = spec.sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = _uid(1, FORMAT_VERSION, spec.number)
    ds.SeriesInstanceUID = _uid(2, FORMAT_VERSION, spec.number)
    ds.PatientName = f"BENCH^{spec.name.upper()}"
    ds.PatientID = f"BENCH-{spec.name}"
    ds.StudyDate = "20260101"
    ds.Modality = "CT" if spec.sop_class == CT_IMAGE else "OT"
    ds.InstanceNumber = index + 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = spec.rows
    ds.Columns = spec.columns
    ds.BitsAllocated = spec.bits
    ds.BitsStored = spec.bits
    ds.HighBit = spec.bits - 1
    ds.PixelRepresentation = 0
    if spec.frames > 1:
        ds.NumberOfFrames = spec.frames
    ds.PixelData = rng.randbytes(spec.rows * spec.columns * spec.bits // 8 * spec.frames)
    ds["PixelData"].VR = "OW" if spec.bits > 8 else "OB"
    return ds


def generate(name: str, cache: Path, count: int | None = None) -> Generated:
    """Write dataset `name` under `cache` unless an identical one is there; return it.

    `count` keeps the first instances only (the same bytes as the whole dataset's first ones),
    for quick runs: a study of 5 slices instead of 300.
    """
    spec = SPECS[name]
    count = spec.count if count is None else count
    if not 0 < count <= spec.count:
        raise ValueError(f"{name} has 1 to {spec.count} instances, not {count}")
    part = "" if count == spec.count else f"-{count}"
    folder = cache / f"{name}{part}-v{FORMAT_VERSION}"
    index = folder / "index.json"
    if not index.exists():
        folder.mkdir(parents=True, exist_ok=True)
        rng = random.Random(f"{name}-{FORMAT_VERSION}")
        sizes = []
        for i in range(count):
            ds = build_instance(spec, i, rng)
            path = folder / f"{i:05d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            size = path.stat().st_size
            sizes.append([path.name, size, size - meta_end(path)])
        index.write_text(json.dumps(sizes))
    rows = json.loads(index.read_text())
    return Generated(
        name=name,
        files=[folder / row[0] for row in rows],
        file_bytes=sum(row[1] for row in rows),
        dataset_bytes=sum(row[2] for row in rows),
    )
