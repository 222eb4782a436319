"""Benchmark datasets are deterministic, sized as specified and cached."""

from __future__ import annotations

import random
from io import BytesIO

import pytest
from pydicom import dcmread

from bench.datasets import FORMAT_VERSION, SPECS, build_instance, generate


def _bytes(name: str, index: int, seed: str) -> bytes:
    out = BytesIO()
    build_instance(SPECS[name], index, random.Random(seed)).save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_same_name_and_index_give_the_same_bytes():
    assert _bytes("ct", 7, "s") == _bytes("ct", 7, "s")
    assert _bytes("ct", 7, "s") != _bytes("ct", 8, "s")


def test_instances_have_the_specified_geometry():
    ct = dcmread(BytesIO(_bytes("ct", 0, "s")))
    assert (ct.Rows, ct.Columns, ct.BitsAllocated, len(ct.PixelData)) == (
        512,
        512,
        16,
        512 * 512 * 2,
    )
    large = dcmread(BytesIO(_bytes("large", 0, "s")))
    assert 60 * 2**20 < len(large.PixelData) <= 64 * 2**20


def test_generate_writes_once_and_counts_bytes(tmp_path):
    first = generate("small", tmp_path)
    mtimes = [p.stat().st_mtime_ns for p in first.files]
    second = generate("small", tmp_path)

    assert first == second
    assert first.count == 2000
    assert [p.stat().st_mtime_ns for p in second.files] == mtimes
    assert 0 < first.dataset_bytes < first.file_bytes == sum(p.stat().st_size for p in first.files)
    uids = {dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in first.files[:50]}
    assert len(uids) == 50


def test_a_count_keeps_the_first_instances_of_the_whole_dataset(tmp_path):
    first = generate("ct", tmp_path, count=2)
    assert first.count == 2
    seed = f"ct-{FORMAT_VERSION}"  # the whole dataset's generator, drawn from in order
    rng = random.Random(seed)
    for index, path in enumerate(first.files):
        out = BytesIO()
        build_instance(SPECS["ct"], index, rng).save_as(out, enforce_file_format=True)
        assert path.read_bytes() == out.getvalue()
    with pytest.raises(ValueError, match="ct has 1 to 300 instances, not 301"):
        generate("ct", tmp_path, count=301)
