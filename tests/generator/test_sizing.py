"""bench/fargate-sizing.json (interface 2) and the parameter reference's sizing section."""

from __future__ import annotations

import json

from generator.documents import readme as docs
from generator.documents import sizing


def test_sizing_file_has_every_size_dataset_and_parallelism():
    data = json.loads(sizing.SIZING.read_text())
    assert {"generated", "measured_at", "machine", "rows"} <= set(data)
    keys = {(r["task_cpu"], r["dataset"], r["associations"]) for r in data["rows"]}
    assert keys == {
        (c, d, a) for c in (256, 512, 1024, 2048) for d in ("ct", "small") for a in (1, 4)
    }
    for row in data["rows"]:
        assert row["cores"] == row["task_cpu"] / 1024
        assert (
            abs(row["instances_per_s"] - row["instances"] / row["seconds"])
            < 0.05 * row["instances_per_s"] + 1
        )


def test_reference_says_which_size_serves_which_daily_volume(spec, tmp_path):
    rows = [
        {"task_cpu": c, "cores": c / 1024, "dataset": d, "associations": a, "instances": 1,
         "seconds": 1.0, "mb_per_s": c / 10 * a, "instances_per_s": c * a}
        for c in (256, 1024) for d in ("ct", "small") for a in (1, 4)
    ]  # fmt: skip
    path = tmp_path / "sizing.json"
    path.write_text(json.dumps({"measured_at": "2026-01-01", "machine": "m", "rows": rows}))
    text = sizing.section(spec, path)
    # 25.6 MB/s (the slower, 1 association) x 50 % x 8 h = 369 GB a day
    assert "| 256 | 26 | 256 | 369 GB |" in text
    assert "up to about 369 GB a day is served by the smallest size, TaskCPU 256" in text
    assert "25% of the default's (1024)" in text
    assert sizing.section(spec, tmp_path / "missing.json") == ""
    assert "Which TaskCPU for which daily volume" in docs.parameter_reference(spec)
