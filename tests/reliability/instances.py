"""Deterministic test instances and what a store holds, compared byte for byte."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from pydicom import dcmread

from bench.datasets import SC_IMAGE, Spec, build_instance


@dataclass(frozen=True)
class Instance:
    """One instance as a C-STORE carries it: its UIDs and its Explicit VR LE dataset bytes."""

    sop_class: str
    sop_uid: str
    dataset: bytes
    part10: bytes

    def write(self, folder: Path) -> Path:
        """Save as a Part 10 file (for pynetdicom's send_c_store) and return its path."""
        path = folder / f"{self.sop_uid}.dcm"
        path.write_bytes(self.part10)
        return path


def iter_instances(series: int, side: int = 16) -> Iterator[Instance]:
    """Endless secondary captures of side x side 8-bit pixels; `series` keeps UIDs apart."""
    spec = Spec(f"reliability{series}", 100 + series, 0, SC_IMAGE, side, side, 8)
    rng = random.Random(series)
    for i in itertools.count():
        ds = build_instance(spec, i, rng)
        part10 = BytesIO()
        ds.save_as(part10, enforce_file_format=True)
        raw = part10.getvalue()
        yield Instance(ds.SOPClassUID, ds.SOPInstanceUID, dataset_of(raw), raw)


def make_instances(series: int, count: int, side: int = 16) -> list[Instance]:
    """The first `count` instances of `iter_instances(series, side)`."""
    return list(itertools.islice(iter_instances(series, side), count))


def dataset_of(part10: bytes) -> bytes:
    """The dataset bytes of a Part 10 file: everything after its file meta group."""
    meta_end = 144 + int.from_bytes(part10[140:144], "little")
    return part10[meta_end:]


def looks_complete(part10: bytes) -> bool:
    """True when `part10` reads as a whole instance, pixel data included."""
    try:
        ds = dcmread(BytesIO(part10))
        return len(ds.PixelData) >= ds.Rows * ds.Columns * ds.BitsAllocated // 8
    except Exception:
        return False


def folder_objects(storage: Path) -> dict[str, bytes]:
    """Every `incoming/**.dcm` of a folder store, keyed by file name (SOP Instance UID)."""
    return {p.stem: p.read_bytes() for p in (storage / "incoming").rglob("*.dcm")}


def s3_objects(s3, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """Every `incoming/**.dcm` object of an S3 store, keyed by SOP Instance UID."""
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{prefix}incoming/"
    ):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".dcm"):
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                out[obj["Key"].rsplit("/", 1)[1][:-4]] = body
    return out
