"""Medians, ratios and target verdicts from measurements."""

from __future__ import annotations

from bench.report import render, summarise, verdicts
from bench.runner import Measurement

MB = 10**6


def m(server: str, mb_s: float, dataset="ct", parallel=1, repeat=1, rss_mib=50, error=""):
    return Measurement(
        server,
        dataset,
        parallel,
        repeat,
        100 * MB / (mb_s * MB),
        100,
        100 * MB,
        rss_mib * 2**20,
        error,
        cpu_seconds=0.25,  # 2.50 s per 1,000 of its 100 instances
    )


def test_median_skips_failed_repeats_and_groups_their_errors():
    runs = [m("ours", 10), m("ours", 30, repeat=2)]
    runs += [m("ours", 0.1, repeat=r, error="x") for r in (3, 4)] + [
        m("ours", 1, repeat=5, error="y")
    ]
    cell = summarise(runs)[("ours", "ct", 1)]
    assert round(cell.mb_per_s, 6) == 20
    assert cell.errors == ["run 3,4: x", "run 5: y"]


def test_verdicts_name_the_cells_that_miss():
    lines = verdicts(
        summarise(
            [
                m("ours", 100),
                m("orthanc", 125),
                m("pynetdicom", 30),
                m("ours", 100, parallel=4),
                m("orthanc", 50, parallel=4),
                m("pynetdicom", 40, parallel=4),
                m("ours", 100, dataset="large", parallel=4, rss_mib=140),
                m("ours-s3", 45),
                m("dcmtk", 100),
            ]
        )
    )
    assert (
        lines[0] == "- NOT MET: ours >= Orthanc throughput at 1 and 4 associations "
        "(ct@1: ours is 0.80x orthanc)"
    )
    assert (
        lines[1].startswith("- NOT MET: ours >= 3x pynetdicom")
        and "ct@4: ours is 2.50x" in lines[1]
    )
    assert lines[2] == "- MET: ours peak RSS <= 150 MiB on large at 4 associations"
    assert lines[3] == "- NOT MET: S3 store within 2x of the folder store (ct@1: 0.45x)"
    assert lines[4] == "- MET: stretch: ours >= dcmtk storescp at 1 and 4 associations"


def test_render_has_a_row_per_server_and_parallelism_with_ratios():
    class Data:
        count, file_bytes = 100, 100 * MB

    text = render(
        [m("ours", 100), m("dcmtk", 150), m("ours", 1, parallel=4, error="boom")],
        {"Date": "today"},
        {"ct": Data()},
    )
    assert "| ours | 1 | 100.0 | 100.0 | 10.0 | 50 | 2.50 | 1.00x |" in text
    assert "| dcmtk | 1 | 150.0 | 150.0 | 6.7 | 50 | 2.50 | 1.50x |" in text
    assert "| ours | 4 | failed | failed | failed | failed | failed | - |" in text
    assert "- ours ct@4: run 1: boom" in text
    assert "do not edit" in text
