"""bench/fargate.py writes rows in the exact shape of INTERFACES.md's interface 2."""

from __future__ import annotations

from bench.fargate import Row, render

KEYS = {"task_cpu", "cores", "dataset", "associations", "instances", "seconds", "mb_per_s"}


def test_row_has_the_interface_fields_and_derived_rates():
    row = Row(
        task_cpu=512, dataset="ct", associations=4, instances=300, seconds=2.0, bytes=157_000_000
    )
    assert row.to_json() == {
        "task_cpu": 512,
        "cores": 0.5,
        "dataset": "ct",
        "associations": 4,
        "instances": 300,
        "seconds": 2.0,
        "mb_per_s": 78.5,
        "instances_per_s": 150.0,
    }
    assert set(row.to_json()) == KEYS | {"instances_per_s"}


def test_table_has_one_line_per_row():
    rows = [Row(c, "small", 1, 2000, 4.0, 2_000_000) for c in (256, 1024)]
    lines = render(rows).splitlines()
    assert len(lines) == 4 and lines[2] == "| 256 | 0.25 | small | 1 | 4.0 | 0.5 | 500.0 |"
