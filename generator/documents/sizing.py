"""The parameter reference's "which TaskCPU for which daily volume", from bench/fargate-sizing.json.

The figures are the image's measured throughput under each task size's CPU quota
(bench/fargate.py); the daily volume assumes what the template's autoscaling aims for (50 % CPU)
over a working day, so one task has headroom for bursts before a second one starts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from generator.spec import ROOT, Spec
from generator.template.service import CPU_TARGET_PERCENT

SIZING = ROOT / "bench" / "fargate-sizing.json"
TARGET_CPU = CPU_TARGET_PERCENT / 100  # the CpuTargetTracking policy's target
BUSY_HOURS = 8  # a working day's worth of sending
CT_STUDY_MB = 157  # 300 slices of 512 x 512 x 16 bits, as in the benchmark's ct dataset


def _slowest(rows: list[dict[str, Any]], task_cpu: int, dataset: str) -> dict[str, Any]:
    """The lower of the 1- and 4-association figures: what a task sustains either way."""
    mine = [r for r in rows if r["task_cpu"] == task_cpu and r["dataset"] == dataset]
    return min(mine, key=lambda r: r["mb_per_s"])


def section(spec: Spec, path: Path = SIZING) -> str:
    """Markdown: a table per TaskCPU and how much a day each serves; empty without the file."""
    if not path.is_file():
        return ""
    data = json.loads(path.read_text())
    rows = data["rows"]
    daily = BUSY_HOURS * 3600 * TARGET_CPU
    lines = [
        "### Which TaskCPU for which daily volume",
        "",
        f"Measured on {data['measured_at']} ({data['machine']}): one task of the SCP image "
        "under each size's CPU quota, DICOM from dcmtk `storescu` on the same host. The daily "
        f"volume is what one task stores at the autoscaling target ({TARGET_CPU:.0%} CPU) over "
        f"{BUSY_HOURS} busy hours, for the slower of 1 and 4 associations; above it, "
        "autoscaling adds tasks. The benchmark stores to a local folder: S3 uploads, TLS and "
        "the network cost more, so leave a margin.",
        "",
        "| TaskCPU | CT MB/s | small instances/s | CT per day | CT studies per day |",
        "|---:|---:|---:|---:|---:|",
    ]
    for task_cpu in sorted({r["task_cpu"] for r in rows}):
        ct, small = _slowest(rows, task_cpu, "ct"), _slowest(rows, task_cpu, "small")
        gb = ct["mb_per_s"] * daily / 1000
        lines.append(
            f"| {task_cpu} | {ct['mb_per_s']:.0f} | {small['instances_per_s']:.0f} | "
            f"{gb:,.0f} GB | {gb * 1000 / CT_STUDY_MB:,.0f} |"
        )
    smallest = min(r["task_cpu"] for r in rows)
    gb = _slowest(rows, smallest, "ct")["mb_per_s"] * daily / 1000
    default = int(spec.parameter("TaskCPU").properties["Default"])
    lines += [
        "",
        f"A site that sends up to about {gb:,.0f} GB a day is served by the smallest size, "
        f"TaskCPU {smallest} (TaskMemoryLimit 512 or more), at {smallest / default:.0%} of the "
        f"default's ({default}) CPU cost; choose a larger size when single studies must arrive "
        "faster than the table's MB/s, or many modalities send at once.",
        "",
    ]
    return "\n".join(lines)
