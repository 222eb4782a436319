"""One measurement: start a server, send a dataset with N storescu processes, verify, stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from bench.datasets import Generated
from bench.errors import BenchError
from bench.servers import AE_TITLE, NODELAY_ENV, Server, s3_client
from tests.support.memory import RssSampler
from tests.support.net import free_port

SEND_TIMEOUT = 900.0  # seconds for one dataset at one parallelism; a hung peer fails the run


@dataclass
class Measurement:
    """What one run of one server on one dataset at one parallelism gave."""

    server: str
    dataset: str
    parallel: int
    repeat: int
    seconds: float
    instances: int
    bytes: int
    peak_rss: int
    error: str = ""
    cpu_seconds: float = 0.0  # the server's process tree, user + system, during the send

    @property
    def cpu_per_1000(self) -> float:
        """CPU seconds the server spent per 1,000 instances."""
        return self.cpu_seconds * 1000 / self.instances

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds

    @property
    def instances_per_s(self) -> float:
        return self.instances / self.seconds

    @property
    def ms_per_instance(self) -> float:
        """Per-instance latency seen by one association: its wall time over its instances."""
        return self.seconds * self.parallel * 1000 / self.instances

    def to_json(self) -> dict:
        return asdict(self)


def tree_cpu(root: psutil.Process) -> float:
    """User + system CPU seconds of `root`, its live descendants and its reaped children."""
    total = 0.0
    try:
        processes = [root, *root.children(recursive=True)]
        times = root.cpu_times()
        total += times.children_user + times.children_system
    except psutil.NoSuchProcess:
        return 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def split(files: list[Path], parallel: int) -> list[list[Path]]:
    """Deal `files` round-robin to at most `parallel` non-empty lists."""
    return [chunk for chunk in (files[i::parallel] for i in range(parallel)) if chunk]


def send(files: list[Path], port: int, parallel: int, log: Path) -> list[str]:
    """Send `files` over `parallel` concurrent dcmtk storescu associations; return the errors."""
    env = {**os.environ, **NODELAY_ENV}
    with log.open("ab") as out:
        senders = [
            subprocess.Popen(
                [
                    "storescu",
                    "-R",
                    "-aet",
                    "BENCH",
                    "-aec",
                    AE_TITLE,
                    "127.0.0.1",
                    str(port),
                    *map(str, chunk),
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            for chunk in split(files, parallel)
        ]
    deadline = time.monotonic() + SEND_TIMEOUT
    codes, timeouts = [], 0
    for sender in senders:
        try:
            codes.append(sender.wait(timeout=max(1.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            sender.kill()
            codes.append(sender.wait())
            timeouts += 1
    errors = []
    if timeouts:
        errors.append(f"{timeouts} storescu timed out after {SEND_TIMEOUT:.0f}s")
    if failed := [code for code in codes if code]:
        errors.append(f"{len(failed)} of {len(codes)} storescu failed (exit {sorted(set(failed))})")
    return errors


def moto_put_rate(data: Generated, endpoint: str, bucket: str) -> str:
    """How fast the moto server alone stores these files with PutObject from one thread.

    Context for the S3 store's figures: they include this server's own cost.
    """
    s3 = s3_client(endpoint)
    started = time.perf_counter()
    for path in data.files:
        s3.put_object(Bucket=bucket, Key=f"ceiling/{path.name}", Body=path.read_bytes())
    seconds = time.perf_counter() - started
    for path in data.files:
        s3.delete_object(Bucket=bucket, Key=f"ceiling/{path.name}")
    return f"{data.file_bytes / 1e6 / seconds:.1f} MB/s ({data.count / seconds:.0f} objects/s)"


def measure(
    server_cls: type[Server],
    data: Generated,
    parallel: int,
    repeat: int,
    root: Path,
    logs: Path,
    extra_args: list[str] | None = None,
) -> Measurement:
    """Run `data` through a fresh `server_cls` with an empty output folder under `root`.

    The run's log (server and storescu output) is kept under `logs` only when the run failed.
    """
    run = f"{server_cls.name}-{data.name}-{parallel}-{repeat}"
    log = logs / f"{run}.log"
    server = server_cls(root / run, free_port(), log, extra_args)
    seconds, peak, count, stored_bytes, cpu = 0.0, 0, 0, 0, 0.0
    try:
        server.start()
        process = psutil.Process(server.process.pid)
        sampler = RssSampler(server.process.pid)
        sampler.start()
        cpu = -tree_cpu(process)
        started = time.perf_counter()
        errors = send(data.files, server.port, parallel, log)
        seconds = time.perf_counter() - started
        cpu += tree_cpu(process)
        peak = sampler.stop()
        count, stored_bytes = server.stored()
    except BenchError as e:
        errors = [str(e)]
    finally:
        server.stop()
        shutil.rmtree(root / run, ignore_errors=True)
    if seconds:
        if count != data.count:
            errors.append(f"{count} of {data.count} instances stored")
        elif stored_bytes < data.dataset_bytes:
            errors.append(f"stored {stored_bytes} bytes, datasets alone are {data.dataset_bytes}")
    if not errors:
        log.unlink(missing_ok=True)
    return Measurement(
        server=server_cls.name,
        dataset=data.name,
        parallel=parallel,
        repeat=repeat,
        seconds=seconds,
        instances=data.count,
        bytes=data.file_bytes,
        peak_rss=peak,
        error="; ".join(errors),
        cpu_seconds=cpu,
    )
