"""`python -m bench`: run the Store SCP benchmark and write bench/results/latest.md.

Every server x dataset x parallelism runs `--repeat` times, interleaved so that noise from other
load on the machine falls on every server alike.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from contextlib import ExitStack
from importlib.metadata import version
from pathlib import Path

from bench.context import machine, now, tool_version
from bench.datasets import SPECS, generate
from bench.errors import BenchError
from bench.report import render
from bench.runner import Measurement, measure, moto_put_rate
from bench.servers import SERVERS, MotoS3, OursDirect, OursS3, dicomweb_standin
from tests.support.net import free_port

HERE = Path(__file__).resolve().parent


def _csv(kind, choices=None):
    def parse(text: str) -> list:
        values = [kind(v) for v in text.split(",") if v]
        bad = [v for v in values if choices and v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(choices or [])}")
        return values

    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--datasets", type=_csv(str, SPECS), default=list(SPECS))
    p.add_argument("--servers", type=_csv(str, SERVERS), default=list(SERVERS))
    p.add_argument("--parallel", type=_csv(int), default=[1, 4, 16])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--cache", type=Path, default=HERE / ".cache", help="generated datasets")
    p.add_argument("--output", type=Path, default=HERE / "results" / "latest.md")
    p.add_argument("--ours-args", default="", help="extra flags for `python -m scp`, quoted")
    p.add_argument(
        "--fargate",
        action="store_true",
        help="Fargate sizing of the image instead (bench/fargate.py)",
    )
    return p.parse_args(argv)


def about(args: argparse.Namespace, moto_rates: dict[str, str]) -> dict[str, str]:
    """The context a reader needs to compare this report with another."""
    rates = ", ".join(f"{name} {rate}" for name, rate in moto_rates.items())
    return {
        "Date": now(),
        "Machine": machine(),
        "Peers": f"{tool_version(['storescp', '--version'])}; "
        f"{tool_version(['Orthanc', '--version'])}; pynetdicom {version('pynetdicom')}",
        "Run": f"repeat {args.repeat}, parallel {args.parallel}, ours with "
        f"`{args.ours_args or 'default flags'}`; storescu with TCP_NODELAY=1; output on tmpfs",
        **({"moto alone, PutObject from one thread": rates} if rates else {}),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.fargate:
        from bench.fargate import main as fargate

        return fargate(args.repeat, args.cache)
    tmpfs = "/dev/shm" if Path("/dev/shm").is_dir() else None
    datasets = {name: generate(name, args.cache) for name in args.datasets}
    extra = {name: args.ours_args.split() for name in ("ours", "ours-s3", "ours-direct")}
    results: list[Measurement] = []
    moto_rates: dict[str, str] = {}
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=tmpfs, prefix="bench-")))
        logs = args.output.parent / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
        if "ours-direct" in args.servers:
            OursDirect.dicomweb = dicomweb_standin(stack, root / "dicomweb")[1]
        if {"ours-s3", "ours-direct"} & set(args.servers):
            moto = MotoS3(logs / "moto.log", free_port())
            stack.callback(moto.stop)
            OursS3.endpoint = moto.endpoint
            moto_rates = {
                name: moto_put_rate(data, moto.endpoint, OursS3.bucket)
                for name, data in datasets.items()
            }
        for data in datasets.values():
            for parallel in args.parallel:
                for repeat in range(1, args.repeat + 1):
                    for name in args.servers:
                        m = measure(
                            SERVERS[name], data, parallel, repeat, root, logs, extra.get(name)
                        )
                        results.append(m)
                        status = m.error or f"{m.mb_per_s:.1f} MB/s"
                        print(
                            f"{name:>10} {data.name:>5} x{parallel:<2} #{repeat}: {status}",
                            flush=True,
                        )
    report = render(results, about(args, moto_rates), datasets)
    args.output.write_text(report)
    args.output.with_suffix(".json").write_text(
        json.dumps([m.to_json() for m in results], indent=1)
    )
    print(report)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        sys.exit(f"bench: {e}")
