"""`make demo`: the whole pipeline on this machine until Ctrl-C.

moto server (S3, SQS, DynamoDB, Step Functions running the real ASL), the SCP storing to moto S3,
the workflow's handlers in-process and the HealthImaging fake. A loop plays Lambda's SQS poller
(trigger) and the sweeper's schedule, and prints what happens to each batch.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from tests.fakes.pipeline import Pipeline, environment, local_pipeline
from tests.support.aws import FAKE_AWS_ENV, moto_server
from tests.support.dicom_files import make_dataset, uid, write_part10
from tests.support.scp import ScpProcess

SWEEP_EVERY = 30.0
WORK_DIR = Path(tempfile.gettempdir()) / "storescp-demo"


def write_samples(folder: Path, count: int = 4) -> tuple[Path, str]:
    """A few synthetic CT instances of one study to send; the folder and the Study UID."""
    study, series = uid("demo", time.time()), uid("demo-series", time.time())
    for n in range(count):
        ds = make_dataset(
            study=study, series=series, sop=uid(study, n), rows=32, columns=32, seed=n
        )
        write_part10(ds, folder / f"ct-{n}.dcm")
    return folder, study


def operator_command(tool: str, endpoint: str, *args: str) -> str:
    """A storescp-lookup/-redrive command line that works when pasted into a shell in the
    repository: moto takes any credentials, but boto3 needs some."""
    keys = " ".join(
        f"{k}={FAKE_AWS_ENV[k]}" for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    )
    return f"{keys} .venv/bin/{tool} --endpoint-url {endpoint} --region us-east-1 {' '.join(args)}"


def report(pipeline: Pipeline, seen: set[str]) -> None:
    """Print each job item the first time it appears, with the command that imports its batch
    again."""
    for item in pipeline.job_items():
        job_id = item["jobId"]["S"]
        if job_id in seen:
            continue
        seen.add(job_id)
        names = ("importedCount", "conflictCount", "failedCount", "warningCount")
        counts = {k: int(item[k]["N"]) for k in names if k in item}
        batch = item["batchId"]["S"]
        again = operator_command(
            "storescp-redrive",
            pipeline.moto.endpoint,
            "--state-machine-arn",
            pipeline.state_machine_arn,
            batch,
        )
        print(
            f"batch {batch}: job {job_id} {item['jobStatus']['S']} {counts}\n"
            f"    import it again: {again}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=11112, help="DICOM port (default 11112)")
    parser.add_argument(
        "--sweep-after", type=int, default=120, help="SWEEP_AFTER_SECONDS (default 120)"
    )
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    samples, study = write_samples(WORK_DIR / "samples")
    with moto_server() as moto, local_pipeline(moto, "demo", poll_seconds=2) as pipeline:
        settings = {
            "storage": f"s3://{pipeline.bucket}/",
            "s3_endpoint_url": moto.endpoint,
            "port": args.port,
        }
        with (
            ScpProcess(log_dir=WORK_DIR, **settings) as scp,
            environment({"SWEEP_AFTER_SECONDS": str(args.sweep_after)}),
        ):
            lookup = operator_command(
                "storescp-lookup",
                moto.endpoint,
                *("--table", pipeline.table_name, "--study", study),
            )
            print(
                f"""
Pipeline running. Send DICOM with dcmtk, e.g. the samples written to {samples}:
    storescu -aec STORESCP -aet MODALITY 127.0.0.1 {scp.port} {samples}/*.dcm
Where to look (boto3 or the aws CLI with --endpoint-url {moto.endpoint}, any credentials):
    S3 bucket {pipeline.bucket}: incoming/, open/, batches/;  results bucket demo-results
    DynamoDB table {pipeline.table_name} (indexes sopInstanceUID-index, studyInstanceUID-index)
    Step Functions state machine {pipeline.state_machine_arn}
    SCP log {scp.log_path}
Batches are imported as they close; open batches of a dead SCP are swept after {args.sweep_after} s.
Did the samples' study arrive, and in which image set? (or --sop SOP_INSTANCE_UID)
    {lookup}
Each batch's line below ends with the command that imports it again (storescp-redrive).
Ctrl-C stops everything.
""",
                flush=True,
            )
            seen: set[str] = set()
            next_sweep = time.monotonic() + SWEEP_EVERY
            try:
                while True:
                    pipeline.deliver(wait_seconds=1)
                    if time.monotonic() > next_sweep:
                        pipeline.sweep()
                        next_sweep = time.monotonic() + SWEEP_EVERY
                    report(pipeline, seen)
            except KeyboardInterrupt:
                print("stopping", flush=True)


if __name__ == "__main__":
    main()
