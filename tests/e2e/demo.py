"""`make demo`: the whole pipeline on this machine until Ctrl-C.

moto server (S3, SQS, DynamoDB, Step Functions running the real ASL), the SCP storing to moto S3,
the workflow's handlers in-process and the HealthImaging fake. A loop plays Lambda's SQS poller
(trigger) and the sweeper's schedule, and prints what happens to each batch.

HealthImaging's DICOMweb is Orthanc behind the SigV4-verifying proxy: the SCP stores instances
from the calling AE title URGENT there directly (StoreDICOM), and the import fake hands what it
imports as primary to the same Orthanc. At start the demo sends one urgent and one routine study
and prints, for each, the seconds from its last C-STORE acknowledgement to QIDO-RS finding it.
It also sends the sample study as modality DEMOMOD, asks for storage commitment and prints the
report when it arrives (after the import), and does the same as URGENT (direct path: the
report follows the StoreDICOM records, with no import).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from scp.healthimaging.client import DicomWebClient
from tests.fakes.dicomweb_proxy import DATASTORE_ID, KNOWN, DicomWebProxy
from tests.fakes.pipeline import Pipeline, environment, local_pipeline
from tests.scp.test_transfer import storescu
from tests.support.aws import FAKE_AWS_ENV, REGION, moto_server
from tests.support.commitment import Modality, references
from tests.support.dicom_files import make_dataset, uid, write_part10
from tests.support.orthanc import orthanc
from tests.support.scp import ScpProcess

SWEEP_EVERY = 30.0
WORK_DIR = Path(tempfile.gettempdir()) / "storescp-demo"
URGENT = "URGENT"


def write_samples(folder: Path, count: int = 4, name: str = "demo") -> str:
    """A few synthetic CT instances of one study to send; returns its Study Instance UID."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    study, series = uid(name, time.time()), uid(name, "series", time.time())
    for n in range(count):
        ds = make_dataset(
            study=study, series=series, sop=uid(study, n), rows=32, columns=32, seed=n
        )
        write_part10(ds, folder / f"ct-{n}.dcm")
    return study


class Viewable:
    """Studies sent, waiting for QIDO-RS to find them: path name -> (study, acknowledged at)."""

    def __init__(self, client: DicomWebClient) -> None:
        self.client = client
        self.waiting: dict[str, tuple[str, float]] = {}

    def sent(self, path: str, study: str) -> None:
        self.waiting[path] = (study, time.monotonic())

    def check(self) -> None:
        for path, (study, acked) in list(self.waiting.items()):
            if next(iter(self.client.search("/studies", {"StudyInstanceUID": study})), None):
                seconds = time.monotonic() - acked
                print(
                    f"{path} path: study found by QIDO-RS {seconds:.2f} s after its last "
                    "C-STORE acknowledgement",
                    flush=True,
                )
                del self.waiting[path]

    def send(self, port: int, folder: Path, study: str, path: str, aet: str) -> None:
        result = storescu(port, *map(str, sorted(folder.glob("*.dcm"))), aet=aet)
        if result.returncode:
            print(f"{path} path: storescu failed: {result.stderr.strip()}", flush=True)
            return
        self.sent(path, study)


def operator_command(tool: str, endpoint: str, *args: str) -> str:
    """A storescp-lookup/-redrive command line that works when pasted into a shell in the
    repository: moto takes any credentials, but boto3 needs some."""
    keys = " ".join(
        f"{k}={FAKE_AWS_ENV[k]}" for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    )
    return f"{keys} .venv/bin/{tool} --endpoint-url {endpoint} --region us-east-1 {' '.join(args)}"


def report(pipeline: Pipeline, seen: set[tuple[str, str]]) -> None:
    """Print each job item the first time it appears in a state (SUBMITTED, then its final
    state), with the command that imports its batch again."""
    for item in pipeline.job_items():
        job_id = item["jobId"]["S"]
        if (job_id, item["jobStatus"]["S"]) in seen:
            continue
        seen.add((job_id, item["jobStatus"]["S"]))
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


def ask_commitment(
    port: int, samples: Path, ae_title: str, modality_port: int
) -> tuple[Modality, float]:
    """Send the samples as modality `ae_title`, ask for commitment, release at once (the report
    comes on an association the SCP opens); the modality and when its last C-STORE was."""
    modality = Modality(ae_title, modality_port).listen()
    files = sorted(samples.glob("*.dcm"))
    assoc = modality.associate(port)
    for path in files:
        assoc.send_c_store(str(path))
    sent = time.monotonic()
    status, transaction = modality.request(assoc, references(files))
    assoc.release()
    print(f"{ae_title} sent {len(files)} instances, asked commitment {transaction}: 0x{status:04X}")
    return modality, sent


def print_reports(modality: Modality, sent: float, path: str) -> None:
    while not modality.reports.empty():
        r = modality.reports.get_nowait()
        print(
            f"storage commitment report {r.info.TransactionUID} ({path} path): event type "
            f"{r.event_type}, {len(r.committed())} committed, failed {r.failed() or 'none'}, "
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
        "--modality-port",
        type=int,
        default=11113,
        help="DEMOMOD's port for reports (11113); URGENT's is the next one",
    )
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    samples = WORK_DIR / "samples"
    study = write_samples(samples)
    urgent, routine = WORK_DIR / "urgent", WORK_DIR / "routine"
    with ExitStack() as stack:
        moto = stack.enter_context(moto_server())
        pipeline = stack.enter_context(local_pipeline(moto, "demo", poll_seconds=2))
        dicomweb = stack.enter_context(orthanc(WORK_DIR / f"orthanc-{time.time():.0f}"))
        proxy = stack.enter_context(DicomWebProxy(dicomweb.dicomweb))
        pipeline.fake.on_primary = dicomweb.store
        settings = {
            "storage": f"s3://{pipeline.bucket}/",
            "s3_endpoint_url": moto.endpoint,
            "port": args.port,
            "direct_store": "selected",
            "direct_store_calling_ae_titles": URGENT,
            **proxy.scp_settings(),
            "job_table": pipeline.table_name,
            "remote_aes": f"DEMOMOD=127.0.0.1:{args.modality_port}:store+commitment,"
            f"{URGENT}=127.0.0.1:{args.modality_port + 1}:store+commitment",
        }
        dynamodb = {"AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint}
        scp = stack.enter_context(ScpProcess(log_dir=WORK_DIR, env=dynamodb, **settings))
        stack.enter_context(environment({"SWEEP_AFTER_SECONDS": str(args.sweep_after)}))
        viewable = Viewable(DicomWebClient(REGION, DATASTORE_ID, lambda: KNOWN, proxy.endpoint))
        lookup = operator_command(
            "storescp-lookup", moto.endpoint, *("--table", pipeline.table_name, "--study", study)
        )
        print(
            f"""
Pipeline running. Send DICOM with dcmtk, e.g. the samples written to {samples}:
    storescu -aec STORESCP -aet MODALITY 127.0.0.1 {scp.port} {samples}/*.dcm
Calling AE title {URGENT} goes straight to HealthImaging's DICOMweb (Orthanc behind the proxy at
{proxy.endpoint}, Orthanc's own UI at {dicomweb.url}):
    storescu -aec STORESCP -aet {URGENT} 127.0.0.1 {scp.port} {samples}/*.dcm
Where to look (boto3 or the aws CLI with --endpoint-url {moto.endpoint}, any credentials):
    S3 bucket {pipeline.bucket}: incoming/, open/, batches/;  results bucket demo-results
    DynamoDB table {pipeline.table_name} (indexes sopInstanceUID-index, studyInstanceUID-index)
    Step Functions state machine {pipeline.state_machine_arn}
    SCP log {scp.log_path}
Batches are imported as they close; open batches of a dead SCP are swept after {args.sweep_after} s.
Did the samples' study arrive, and in which image set? (or --sop SOP_INSTANCE_UID; where does a
storage-commitment transaction stand: --transaction TRANSACTION_UID)
    {lookup}
Each batch's line below ends with the command that imports it again (storescp-redrive).
Ctrl-C stops everything.
""",
            flush=True,
        )
        viewable.send(scp.port, urgent, write_samples(urgent, name="urgent"), "direct", URGENT)
        deadline = time.monotonic() + 30
        while viewable.waiting and time.monotonic() < deadline:
            viewable.check()
            time.sleep(0.05)
        routine_study = write_samples(routine, name="routine")
        viewable.send(scp.port, routine, routine_study, "batch", "MODALITY")
        seen: set[tuple[str, str]] = set()
        next_sweep = time.monotonic() + SWEEP_EVERY
        direct_samples = WORK_DIR / "urgent-commit"
        write_samples(direct_samples, name="urgent-commit")
        asked = {
            "batch": ask_commitment(scp.port, samples, "DEMOMOD", args.modality_port),
            "direct": ask_commitment(scp.port, direct_samples, URGENT, args.modality_port + 1),
        }
        for modality, _ in asked.values():
            stack.callback(modality.stop)
        try:
            while True:
                pipeline.deliver(wait_seconds=1)
                if time.monotonic() > next_sweep:
                    pipeline.sweep()
                    next_sweep = time.monotonic() + SWEEP_EVERY
                report(pipeline, seen)
                viewable.check()
                for path, (modality, sent) in asked.items():
                    print_reports(modality, sent, path)
        except KeyboardInterrupt:
            print("stopping", flush=True)


if __name__ == "__main__":
    main()
