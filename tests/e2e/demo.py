"""`make demo`: the whole pipeline on this machine until Ctrl-C.

moto server (S3, SQS, DynamoDB, Step Functions running the real ASL), the SCP storing to moto S3,
the workflow's handlers in-process and the HealthImaging fake. A loop plays Lambda's SQS poller
(trigger) and the sweeper's schedule, and prints what happens to each batch. At start it sends
the sample study as modality DEMOMOD, asks for storage commitment and prints the report when it
arrives (after the import).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from tests.fakes.pipeline import Pipeline, environment, local_pipeline
from tests.support.aws import moto_server
from tests.support.commitment import Modality, references
from tests.support.dicom_files import make_dataset, uid, write_part10
from tests.support.scp import ScpProcess

SWEEP_EVERY = 30.0
WORK_DIR = Path(tempfile.gettempdir()) / "storescp-demo"


def write_samples(folder: Path, count: int = 4) -> Path:
    """A few synthetic CT instances of one study to send."""
    study, series = uid("demo", time.time()), uid("demo-series", time.time())
    for n in range(count):
        ds = make_dataset(
            study=study, series=series, sop=uid(study, n), rows=32, columns=32, seed=n
        )
        write_part10(ds, folder / f"ct-{n}.dcm")
    return folder


def report(pipeline: Pipeline, seen: set[str]) -> None:
    """Print each job item the first time it appears."""
    for item in pipeline.job_items():
        job_id = item["jobId"]["S"]
        if job_id in seen:
            continue
        seen.add(job_id)
        names = ("importedCount", "conflictCount", "failedCount", "warningCount")
        counts = {k: int(item[k]["N"]) for k in names if k in item}
        print(
            f"batch {item['batchId']['S']}: job {job_id} {item['jobStatus']['S']} {counts}",
            flush=True,
        )


def ask_commitment(port: int, samples: Path, modality_port: int) -> tuple[Modality, float]:
    """Send the samples as modality DEMOMOD, ask for commitment, release at once (the report
    comes on an association the SCP opens); the modality and when its last C-STORE was."""
    modality = Modality("DEMOMOD", modality_port).listen()
    files = sorted(samples.glob("*.dcm"))
    assoc = modality.associate(port)
    for path in files:
        assoc.send_c_store(str(path))
    sent = time.monotonic()
    status, transaction = modality.request(assoc, references(files))
    assoc.release()
    print(f"DEMOMOD sent {len(files)} instances, asked commitment {transaction}: 0x{status:04X}")
    return modality, sent


def print_reports(modality: Modality, sent: float) -> None:
    while not modality.reports.empty():
        r = modality.reports.get_nowait()
        print(
            f"storage commitment report {r.info.TransactionUID}: event type {r.event_type}, "
            f"{len(r.committed())} committed, failed {r.failed() or 'none'}, "
            f"{time.monotonic() - sent:.1f} s after the last C-STORE",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=11112, help="DICOM port (default 11112)")
    parser.add_argument(
        "--sweep-after", type=int, default=120, help="SWEEP_AFTER_SECONDS (default 120)"
    )
    parser.add_argument(
        "--modality-port", type=int, default=11113, help="DEMOMOD's port for reports (11113)"
    )
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    samples = write_samples(WORK_DIR / "samples")
    with moto_server() as moto, local_pipeline(moto, "demo", poll_seconds=2) as pipeline:
        settings = {
            "storage": f"s3://{pipeline.bucket}/",
            "s3_endpoint_url": moto.endpoint,
            "port": args.port,
            "job_table": pipeline.table_name,
            "remote_aes": f"DEMOMOD=127.0.0.1:{args.modality_port}:store+commitment",
        }
        dynamodb = {"AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint}
        with (
            ScpProcess(log_dir=WORK_DIR, env=dynamodb, **settings) as scp,
            environment({"SWEEP_AFTER_SECONDS": str(args.sweep_after)}),
        ):
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
Did an instance (or a study) arrive, and in which image set?
    .venv/bin/storescp-lookup --endpoint-url {moto.endpoint} --region us-east-1 \\
        --table {pipeline.table_name} --sop <SOPInstanceUID>     (or --study <StudyInstanceUID>)
Where does a storage-commitment transaction stand?  (same, with --transaction <TransactionUID>)
Import a failed or conflicting batch again (a new attempt):
    .venv/bin/storescp-redrive --endpoint-url {moto.endpoint} --region us-east-1 \\
        --state-machine-arn {pipeline.state_machine_arn} <batchId>
Ctrl-C stops everything.
""",
                flush=True,
            )
            seen: set[str] = set()
            next_sweep = time.monotonic() + SWEEP_EVERY
            modality, sent = ask_commitment(scp.port, samples, args.modality_port)
            try:
                while True:
                    pipeline.deliver(wait_seconds=1)
                    if time.monotonic() > next_sweep:
                        pipeline.sweep()
                        next_sweep = time.monotonic() + SWEEP_EVERY
                    report(pipeline, seen)
                    print_reports(modality, sent)
            except KeyboardInterrupt:
                print("stopping", flush=True)
            finally:
                modality.stop()


if __name__ == "__main__":
    main()
