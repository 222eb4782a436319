"""Fixtures for the SCP tests: generated instances and SCP processes on free ports."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    HTJ2KLossless,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    MRImageStorage,
    SecondaryCaptureImageStorage,
)

from tests.support.dicom_files import (
    dcmtk_convert,
    make_dataset,
    uid,
    write_encapsulated,
    write_part10,
)
from tests.support.scp import REPO, ScpProcess

MANIFEST_SCHEMA = json.loads((REPO / "config" / "batch-manifest.schema.json").read_text())

STUDY = uid("study", "A")
SERIES = uid("series", "A")


@pytest.fixture(scope="session")
def instances(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file per transfer syntax and a few SOP classes; compressed ones by dcmtk's codecs."""
    d = tmp_path_factory.mktemp("instances")

    def ds(name: str, **kw: object):
        return make_dataset(study=STUDY, series=SERIES, sop=uid("sop", name), seed=len(name), **kw)

    files = {
        "explicit": write_part10(ds("explicit"), d / "explicit.dcm"),
        "implicit": write_part10(ds("implicit"), d / "implicit.dcm", ImplicitVRLittleEndian),
        "big": write_part10(ds("big"), d / "big.dcm", ExplicitVRBigEndian),
        "deflated": write_part10(
            ds("deflated"), d / "deflated.dcm", DeflatedExplicitVRLittleEndian
        ),
        "mr": write_part10(ds("mr", sop_class=MRImageStorage), d / "mr.dcm"),
        "sc": write_part10(ds("sc", sop_class=SecondaryCaptureImageStorage, bits=8), d / "sc.dcm"),
        "j2k": write_encapsulated(ds("j2k"), d / "j2k.dcm", JPEG2000Lossless),
        "htj2k": write_encapsulated(ds("htj2k"), d / "htj2k.dcm", HTJ2KLossless),
    }
    # Real codec output from dcmtk; each from its own source so every SOP Instance UID differs.
    for name, tool, options in [
        ("jpeg-lossless", "dcmcjpeg", ()),
        ("jpeg-baseline", "dcmcjpeg", ("+eb",)),
        ("jpeg-ls", "dcmcjpls", ()),
        ("rle", "dcmcrle", ()),
    ]:
        src = write_part10(
            ds(name, bits=8 if name == "jpeg-baseline" else 16), d / f"{name}-source.dcm"
        )
        files[name] = dcmtk_convert(tool, src, d / f"{name}.dcm", *options)
    return files


@pytest.fixture
def start_scp(tmp_path: Path) -> Iterator[Callable[..., ScpProcess]]:
    """Start SCP processes (folder store under tmp_path unless given); all stopped at the end."""
    started: list[ScpProcess] = []

    def start(healthy: bool = True, **settings: object) -> ScpProcess:
        settings.setdefault("storage", str(tmp_path / "store"))
        scp = ScpProcess(log_dir=tmp_path, **settings)
        started.append(scp)
        return scp.start(healthy=healthy)

    yield start
    for scp in started:
        scp.stop()


def stored_files(root: Path) -> dict[str, Path]:
    """SOP Instance UID -> stored file, for a folder store."""
    return {p.stem: p for p in (root / "incoming").rglob("*.dcm")}


def manifests(root: Path) -> list[dict]:
    """Every batch manifest in a folder store, each checked against the schema."""
    docs = [json.loads(p.read_text()) for p in sorted((root / "batches").glob("*.json"))]
    for doc in docs:
        jsonschema.validate(doc, MANIFEST_SCHEMA)
    return docs
