"""One measurement against a real peer: it counts what arrived and catches what did not."""

from __future__ import annotations

import random
from pathlib import Path

from bench.datasets import SPECS, Generated, build_instance
from bench.runner import measure, split
from bench.servers import Dcmtk, Pynetdicom


def _dataset(folder: Path, count: int) -> Generated:
    rng = random.Random(0)
    files = []
    for i in range(count):
        path = folder / f"{i}.dcm"
        build_instance(SPECS["small"], i, rng).save_as(path, enforce_file_format=True)
        files.append(path)
    size = sum(p.stat().st_size for p in files)
    return Generated("tiny", files, size, size // 2)


def test_split_deals_round_robin_and_drops_empty_lists():
    files = [Path(str(i)) for i in range(5)]
    assert split(files, 2) == [files[0::2], files[1::2]]
    assert len(split(files[:2], 16)) == 2


def test_measure_counts_every_instance_stored(tmp_path):
    data = _dataset(tmp_path, 6)
    for server in (Dcmtk, Pynetdicom):
        m = measure(server, data, 2, 1, tmp_path, tmp_path)
        assert m.error == ""
        assert (m.instances, m.bytes) == (6, data.file_bytes)
        assert m.seconds > 0 and m.peak_rss > 0
    assert not list(tmp_path.glob("*.log")), "logs of good runs are not kept"


def test_measure_reports_a_server_that_stores_nothing(tmp_path):
    data = _dataset(tmp_path, 3)
    m = measure(Dcmtk, data, 1, 1, tmp_path, tmp_path, ["--ignore"])  # receive, do not store
    assert m.error == "0 of 3 instances stored"


def test_measure_records_a_server_that_does_not_start(tmp_path):
    data = _dataset(tmp_path, 1)
    m = measure(Dcmtk, data, 1, 1, tmp_path, tmp_path, ["--no-such-option"])
    assert m.error.startswith("dcmtk on port") and "exited" in m.error
    assert (tmp_path / "dcmtk-tiny-1-1.log").read_text()  # kept: the run failed
