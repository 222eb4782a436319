"""`python -m bench.retrieve`: retrieve throughput of a CT study moved (C-MOVE) to a dcmtk
storescp, and pulled (C-GET), from our Query/Retrieve SCP over HealthImaging's DICOMweb stand-in
(Orthanc behind the SigV4-verifying proxy) and from dcmtk's dcmqrscp serving the same study from
disk. Writes bench/results/retrieve.md and .json; exits 1 when a run did not deliver the study.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from contextlib import ExitStack
from importlib.metadata import version
from pathlib import Path

from pydicom import dcmread

from bench.context import machine, now, tool_version
from bench.datasets import SPECS, generate
from bench.errors import BenchError
from bench.retrieve.report import render, splice
from bench.retrieve.runs import OPERATIONS, RetrieveRun, instances_of, retrieve
from bench.retrieve.sources import Dcmqrscp, OursQR, delayed, load_orthanc
from bench.servers import Server
from tests.support.net import free_port

HERE = Path(__file__).resolve().parents[1]
DATASET = "ct"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.retrieve", description=__doc__)
    p.add_argument(
        "--slices",
        type=int,
        default=SPECS[DATASET].count,
        help=f"slices of the CT study (1 to {SPECS[DATASET].count}; default all)",
    )
    p.add_argument(
        "--repeat", type=int, default=3, help="runs per source and operation (default 3)"
    )
    p.add_argument(
        "--operations",
        default=",".join(OPERATIONS),
        help="comma-separated: move (C-MOVE to storescp), get (C-GET); default both",
    )
    p.add_argument(
        "--rtt-ms",
        default="100",
        help="comma-separated round trips (ms) to add between another instance of our SCP and "
        "the DICOMweb side, one source each (ours+100ms); 0 or empty: none",
    )
    p.add_argument("--cache", type=Path, default=HERE / ".cache", help="generated datasets")
    p.add_argument(
        "--output",
        type=Path,
        default=HERE / "results" / "retrieve.md",
        help="the Markdown section (default bench/results/retrieve.md); the runs go beside it "
        "as .json, the servers' logs (and failed runs' tool logs) in retrieve-logs/",
    )
    p.add_argument(
        "--report",
        type=Path,
        help="also put the section into this Markdown file, replacing its Retrieve section "
        "(e.g. bench/REPORT.md)",
    )
    args = p.parse_args(argv)
    args.operations = [op for op in args.operations.split(",") if op]
    if not args.operations or set(args.operations) - set(OPERATIONS):
        p.error(f"--operations: choose from {', '.join(OPERATIONS)}")
    if not 0 < args.slices <= SPECS[DATASET].count:
        p.error(f"--slices: 1 to {SPECS[DATASET].count}")
    try:
        args.rtt_ms = [int(ms) for ms in args.rtt_ms.split(",") if ms and int(ms)]
    except ValueError:
        p.error("--rtt-ms: whole milliseconds, comma-separated")
    if any(ms < 0 for ms in args.rtt_ms):
        p.error("--rtt-ms: not negative")
    if args.repeat < 1:
        p.error("--repeat: at least 1")
    return args


def about(args: argparse.Namespace, argv: list[str]) -> dict[str, str]:
    return {
        "Date": now(),
        "Machine": machine(),
        "Peers": f"{tool_version(['dcmqrscp', '--version'])}; "
        f"{tool_version(['Orthanc', '--version'])}; pynetdicom {version('pynetdicom')}",
        "Command": f"`{' '.join(['python -m bench.retrieve', shlex.join(argv)]).strip()}`",
        "Run": f"repeat {args.repeat}, interleaved; dcmtk tools with TCP_NODELAY=1",
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    study = generate(DATASET, args.cache, args.slices)
    expected = instances_of(study)
    study_uid = str(dcmread(study.files[0], stop_before_pixels=True).StudyInstanceUID)
    tmpfs = "/dev/shm" if Path("/dev/shm").is_dir() else None
    logs = args.output.parent / "retrieve-logs"
    logs.mkdir(parents=True, exist_ok=True)
    runs: list[RetrieveRun] = []
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=tmpfs, prefix="bench-")))
        destination_port = free_port()
        endpoint = load_orthanc(stack, root / "dicomweb", study)
        sources: list[Server] = [
            OursQR(root / "ours", free_port(), logs / "ours.log", endpoint, destination_port),
            *(
                OursQR(
                    root / f"ours-{ms}",
                    free_port(),
                    logs / f"ours-{ms}ms.log",
                    delayed(stack, endpoint, ms),
                    destination_port,
                    ms,
                )
                for ms in args.rtt_ms
            ),
            Dcmqrscp(
                root / "dcmqrscp", free_port(), logs / "dcmqrscp.log", study, destination_port
            ),
        ]
        for source in sources:
            stack.callback(source.stop)
            source.start()
        for repeat in range(1, args.repeat + 1):
            for operation in args.operations:
                for source in sources:
                    run = retrieve(
                        source, operation, repeat, study_uid, expected, destination_port, root, logs
                    )
                    runs.append(run)
                    status = (
                        run.error or f"{run.instances_per_s:,.1f} inst/s {run.mb_per_s:,.1f} MB/s"
                    )
                    print(
                        f"{source.name:>9} {OPERATIONS[operation]} #{repeat}: {status}", flush=True
                    )
    section = render(runs, about(args, argv), study)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(section)
    args.output.with_suffix(".json").write_text(json.dumps([r.to_json() for r in runs], indent=1))
    if args.report:
        document = args.report.read_text() if args.report.exists() else ""
        args.report.write_text(splice(document, section))
    print(section)
    if failed := [r for r in runs if r.error]:
        print(
            f"bench.retrieve: {len(failed)} of {len(runs)} runs failed (see above)", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        sys.exit(f"bench.retrieve: {e}")
