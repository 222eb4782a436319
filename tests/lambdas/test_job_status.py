"""Import status while a job runs: the state machine writes the job item (SUBMITTED) when the job
starts, storescp-lookup lists the batch as importing, and RecordResults replaces the item with the
final state."""

from __future__ import annotations

import time
import uuid

from lambdas.operators import lookup_main
from tests.fakes.pipeline import local_pipeline
from tests.lambdas.batches import write_batch


def wait_for(find, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.2)
    raise TimeoutError("nothing found")


def test_a_running_job_shows_as_submitted_then_its_final_state(moto, capsys):
    with local_pipeline(moto, f"js-{uuid.uuid4().hex[:8]}") as pipeline:
        pipeline.fake.job_seconds = 3
        manifest = write_batch(pipeline.moto.client("s3"), pipeline.bucket, 3)
        pipeline.deliver(wait_seconds=5)
        study = manifest["studyInstanceUID"]
        lookup = [
            "--table",
            pipeline.table_name,
            "--study",
            study,
            "--endpoint-url",
            pipeline.moto.endpoint,
            "--region",
            "us-east-1",
        ]

        (job,) = wait_for(pipeline.job_items)
        capsys.readouterr()
        assert lookup_main(lookup) == 0
        running = capsys.readouterr().out

        assert job["jobStatus"] == {"S": "SUBMITTED"}
        assert job["batchId"] == {"S": manifest["batchId"]}
        assert job["attempt"] == {"N": "1"} and job["instanceCount"] == {"N": "3"}
        assert job["studyInstanceUID"] == {"S": study}
        assert job["jobId"]["S"] in pipeline.fake.jobs and job["submittedAt"]["S"]
        assert job["executionArn"]["S"].endswith(f":{manifest['batchId']}")
        assert running == (
            f"batch {manifest['batchId']} attempt 1  IMPORTING  job {job['jobId']['S']} "
            f"submitted {job['submittedAt']['S']}  3 instances\n"
        )

        (execution,) = pipeline.wait_for_executions(1)
        (final,) = pipeline.job_items()
        capsys.readouterr()
        assert lookup_main(lookup) == 0
        done = capsys.readouterr().out.splitlines()

        assert execution["status"] == "SUCCEEDED"
        assert final["jobId"] == job["jobId"] and final["jobStatus"] == {"S": "COMPLETED"}
        assert final["submittedAt"] == job["submittedAt"]
        assert final["importedCount"] == {"N": "3"}
        assert len(done) == 3 and all(" IMPORTED " in line for line in done)
