"""Fargate sizing: the SCP image's throughput under the CPU quotas of TaskCPU 256 to 2048.

Each run starts the image (as the release builds it) with `--cpus` set to the task's share of a
core (0.25, 0.5, 1, 2), the folder store on tmpfs, the worker count the SCP picks from the quota,
then sends a dataset with N dcmtk storescu associations and checks every instance was stored.
Writes bench/fargate-sizing.json (read by the parameter reference and the cost estimate).
`python -m bench --fargate [--repeat N]`
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.datasets import Generated, generate
from bench.errors import BenchError
from bench.runner import send
from generator.release import image, package
from generator.spec import ROOT
from tests.image.container import Container

HERE = Path(__file__).resolve().parent
SIZING = HERE / "fargate-sizing.json"
TASK_CPUS = (256, 512, 1024, 2048)
DATASETS = ("ct", "small")
ASSOCIATIONS = (1, 4)
TAG = "localhost/storescp-healthimaging-bench:fargate"


@dataclass(frozen=True)
class Row:
    task_cpu: int
    dataset: str
    associations: int
    instances: int
    seconds: float
    bytes: int

    def to_json(self) -> dict[str, object]:
        return {
            "task_cpu": self.task_cpu,
            "cores": self.task_cpu / 1024,
            "dataset": self.dataset,
            "associations": self.associations,
            "instances": self.instances,
            "seconds": round(self.seconds, 2),
            "mb_per_s": round(self.bytes / 1e6 / self.seconds, 2),
            "instances_per_s": round(self.instances / self.seconds, 1),
        }


def run_once(engine: image.Engine, data: Generated, task_cpu: int, associations: int) -> float:
    """Seconds to store data through the image at this task size; every instance checked."""
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="fargate-") as tmp:
        os.chmod(tmp, 0o777)  # the image's user writes here
        scp = Container(
            engine, TAG, "--cpus", str(task_cpu / 1024), "-v", f"{tmp}:/data",
            env={"LOG_LEVEL": "WARNING", "MAXIMUM_ASSOCIATIONS": "64"},
        )  # fmt: skip
        scp.start()
        try:
            log = Path(tmp) / "storescu.log"
            started = time.perf_counter()
            errors = send(data.files, scp.port, associations, log)
            seconds = time.perf_counter() - started
        finally:
            scp.remove()
        stored = len(list(Path(tmp, "incoming").rglob("*.dcm")))
    if errors or stored != data.count:
        raise BenchError(f"{data.name} at TaskCPU {task_cpu}: {stored} stored; {errors}")
    return seconds


def measure(repeat: int, cache: Path) -> tuple[list[Row], str]:
    engine = image.require_engine()
    print("building the image (as the release does)...", flush=True)
    archive = image.build(engine, package.container_context(ROOT), TAG, image.source_epoch(ROOT))
    shutil.rmtree(archive.parent, ignore_errors=True)
    datasets = {name: generate(name, cache) for name in DATASETS}
    load_before = os.getloadavg()[0]
    rows = []
    for task_cpu in TASK_CPUS:
        for name, data in datasets.items():
            for associations in ASSOCIATIONS:
                times = [run_once(engine, data, task_cpu, associations) for _ in range(repeat)]
                row = Row(
                    task_cpu, name, associations, data.count, statistics.median(times),
                    data.file_bytes,
                )  # fmt: skip
                rows.append(row)
                r = row.to_json()
                print(
                    f"TaskCPU {task_cpu:>4} {name:>5} x{associations}: {r['seconds']:>6} s "
                    f"{r['mb_per_s']:>7} MB/s {r['instances_per_s']:>7} inst/s",
                    flush=True,
                )
    engine.run("rmi", TAG, check=False)
    load = f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    return rows, load


def render(rows: list[Row]) -> str:
    lines = [
        "| TaskCPU | cores | dataset | associations | seconds | MB/s | instances/s |",
        "|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        r = row.to_json()
        lines.append(
            f"| {r['task_cpu']} | {r['cores']} | {r['dataset']} | {r['associations']} | "
            f"{r['seconds']} | {r['mb_per_s']} | {r['instances_per_s']} |"
        )
    return "\n".join(lines)


def main(repeat: int, cache: Path) -> int:
    rows, load = measure(repeat, cache)
    machine = (
        f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"{platform.system()} {platform.release()}; {load}; podman --cpus quota (cgroup v1), "
        f"folder store on tmpfs, dcmtk storescu, median of {repeat}"
    )
    document = {
        "generated": "by bench/fargate.py (python -m bench --fargate), do not edit",
        "measured_at": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": machine,
        "rows": [r.to_json() for r in rows],
    }
    SIZING.write_text(json.dumps(document, indent=2) + "\n")
    print(render(rows))
    print(f"{machine}\nwrote {SIZING}; `make docs` updates the cost estimate")
    return 0
