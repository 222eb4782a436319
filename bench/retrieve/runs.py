"""One retrieve of the whole study at study level (Study Root): dcmtk movescu (C-MOVE to a fresh
storescp) or getscu (C-GET, received by getscu itself) asks a source for it; timed from the
request to the final response by the tool's own log timestamps; what arrived is checked
instance by instance against the study."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import psutil
from pydicom import dcmread

from bench.datasets import Generated, meta_end
from bench.errors import BenchError
from bench.retrieve.sources import CALLING, DESTINATION, Destination
from bench.runner import tree_cpu
from bench.servers import AE_TITLE, NODELAY_ENV, Server
from tests.support.memory import RssSampler

OPERATIONS = {"move": "C-MOVE", "get": "C-GET"}
TOOLS = {"move": "movescu", "get": "getscu"}
TIMEOUT = 900.0  # seconds for one retrieve; a hung source fails the run
# dcmtk logs through log4cplus (oflog): this configuration prints each INFO line with its date
# and time to the microsecond (%Q inside %D: milliseconds.microseconds).
LOG_CONFIG = """\
log4cplus.rootLogger = INFO, console
log4cplus.appender.console = log4cplus::ConsoleAppender
log4cplus.appender.console.logToStderr = true
log4cplus.appender.console.ImmediateFlush = true
log4cplus.appender.console.layout = log4cplus::PatternLayout
log4cplus.appender.console.layout.ConversionPattern = %D{%Y-%m-%d %H:%M:%S.%Q} %m%n
"""
LINE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.(\d{3})\.(\d{3}) (.*)")
# What movescu and getscu (dcmtk 3.6.7) log at INFO when the request leaves and when the final
# response arrives; getscu logs its final response like the pending ones, with another status.
REQUEST = {"move": "Sending Move Request", "get": "Sending C-GET Request"}
FINAL = {
    "move": re.compile(r"Received Final Move Response \((.*)\)"),
    "get": re.compile(r"Received C-GET Response \(((?!Pending\)).*)\)"),
}


@dataclass
class RetrieveRun:
    """What one retrieve of the study from one source gave."""

    source: str
    operation: str  # a key of OPERATIONS
    repeat: int
    instances: int  # received
    bytes: int  # datasets received (file meta excluded): what crossed the wire, less PDU headers
    seconds: float  # request sent to final response received
    peak_rss: int  # the source's process tree
    cpu_seconds: float  # the source's process tree, user + system
    error: str = ""
    rtt_ms: int = 0  # round trip added between the source and its DICOMweb side

    @property
    def instances_per_s(self) -> float:
        return self.instances / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict:
        return asdict(self)


def _at(match: re.Match[str]) -> datetime:
    stamp = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S")
    return stamp.replace(microsecond=int(match[2]) * 1000 + int(match[3]))


def timed(log: str, operation: str) -> tuple[float, str]:
    """Seconds from the request to the final response, and the final response's status, read
    from a movescu/getscu log written with LOG_CONFIG."""
    sent = final = None
    status = ""
    for line in log.splitlines():
        found = LINE.fullmatch(line)
        if not found:
            continue
        if sent is None and found[4].startswith(REQUEST[operation]):
            sent = _at(found)
        elif sent is not None and (response := FINAL[operation].fullmatch(found[4])):
            final, status = _at(found), response[1]
    if sent is None or final is None:
        raise BenchError(f"{TOOLS[operation]} logged no request or no final response")
    return (final - sent).total_seconds(), status


def instances_of(study: Generated) -> dict[str, int]:
    """SOP Instance UID -> dataset bytes, for every instance of `study`."""
    return {_sop_uid(path): path.stat().st_size - meta_end(path) for path in study.files}


def _sop_uid(path: Path) -> str:
    return str(
        dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID
    )


def check(folder: Path, expected: dict[str, int]) -> tuple[int, int, list[str]]:
    """(instances, dataset bytes, problems) of what `folder` received, checked against
    `expected` (instances_of the study): each instance once, each with the source's size."""
    received: dict[str, int] = {}
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    for path in files:
        received[_sop_uid(path)] = path.stat().st_size - meta_end(path)
    problems = []
    if missing := expected.keys() - received.keys():
        problems.append(f"{len(missing)} of {len(expected)} instances not received")
    if unexpected := received.keys() - expected.keys():
        problems.append(f"{len(unexpected)} instances received that are not in the study")
    if len(files) != len(received):
        problems.append(f"{len(files) - len(received)} instances received twice")
    if differ := sorted(u for u in expected.keys() & received.keys() if received[u] != expected[u]):
        first = differ[0]
        problems.append(
            f"{len(differ)} instances differ in size from the study's (first {first}: "
            f"{received[first]} bytes, not {expected[first]})"
        )
    return len(received), sum(received.values()), problems


def retrieve(
    source: Server,
    operation: str,
    repeat: int,
    study_uid: str,
    expected: dict[str, int],
    destination_port: int,
    work: Path,
    logs: Path,
) -> RetrieveRun:
    """Retrieve the study from the running `source` once; keep its logs under `logs` only when
    the run failed."""
    run = f"{source.name}-{operation}-{repeat}"
    folder, tool_log = work / run, logs / f"{run}-{TOOLS[operation]}.log"
    folder.mkdir(parents=True)
    config = folder / "logger.cfg"
    config.write_text(LOG_CONFIG)
    destination = Destination(folder, destination_port, logs / f"{run}-storescp.log")
    received = destination.out if operation == "move" else folder / "received"
    argv = [TOOLS[operation], "-lc", str(config), "-S", "-aet", CALLING, "-aec", AE_TITLE]
    if operation == "move":
        argv += ["-aem", DESTINATION]
    else:
        received.mkdir()
        argv += ["-od", str(received)]
    argv += ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}"]
    argv += ["127.0.0.1", str(source.port)]
    errors: list[str] = []
    seconds, peak, cpu = 0.0, 0, 0.0
    try:
        if operation == "move":
            destination.start()
        assert source.process is not None
        process = psutil.Process(source.process.pid)
        sampler = RssSampler(source.process.pid)
        sampler.start()
        cpu = -tree_cpu(process)
        try:
            with tool_log.open("wb") as out:
                done = subprocess.run(
                    argv,
                    env={**os.environ, **NODELAY_ENV},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=TIMEOUT,
                    check=False,
                )
        finally:
            cpu += tree_cpu(process)
            peak = sampler.stop()
        seconds, status = timed(tool_log.read_text(errors="replace"), operation)
        if status != "Success":
            errors.append(f"final {OPERATIONS[operation]} response {status}")
        if done.returncode:
            errors.append(f"{TOOLS[operation]} exited with {done.returncode}")
    except subprocess.TimeoutExpired:
        errors.append(f"{TOOLS[operation]} timed out after {TIMEOUT:.0f}s")
    except BenchError as exc:
        errors.append(str(exc))
    finally:
        destination.stop()
    count, size, problems = check(received, expected)
    errors += problems
    shutil.rmtree(folder, ignore_errors=True)
    if not errors:
        for log in logs.glob(f"{run}-*.log"):
            log.unlink()
    return RetrieveRun(
        source=source.name,
        operation=operation,
        repeat=repeat,
        instances=count,
        bytes=size,
        seconds=seconds,
        peak_rss=peak,
        cpu_seconds=cpu,
        error="; ".join(errors),
        rtt_ms=getattr(source, "rtt_ms", 0),
    )
