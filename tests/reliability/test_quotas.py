"""Batches against HealthImaging's quotas, enforced by the fake: the real ASL, the fake's clock
30 times faster than real time and the ASL's retry waits scaled alike (capped at 300 / 30 s).

`make test` sends 120 batches, past the 100 jobs in flight the quota allows; `make reliability`
sends 300. Figures are reported at the end of the run: batches sent, jobs started, the highest
start rate and jobs in flight seen by the fake, what it refused, and the time to drain, in
HealthImaging's (the fake's) minutes and in real seconds.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.fakes.healthimaging import MAX_JOBS_IN_FLIGHT, START_BURST, START_RATE
from tests.fakes.pipeline import local_pipeline
from tests.lambdas.batches import write_batch
from tests.reliability.conftest import FULL
from tests.support.figures import report_figure

pytestmark = pytest.mark.slow

BATCHES = 300 if FULL else 120  # more than MAX_JOBS_IN_FLIGHT either way
SCALE = 30  # fake seconds per real second
JOB_SECONDS = 900  # fake seconds each job runs: 100 start before the first ends, even slowly
WINDOW = 60  # fake seconds over which the start rate is measured


def test_batches_all_imported_within_the_quotas(moto):
    with local_pipeline(
        moto, f"q-{uuid.uuid4().hex[:8]}", clock_scale=SCALE, retry_cap=300 // SCALE
    ) as pipeline:
        pipeline.fake.job_seconds = JOB_SECONDS
        s3 = pipeline.moto.client("s3")
        for _ in range(BATCHES):
            write_batch(s3, pipeline.bucket, 1)
        started = time.monotonic()
        while pipeline.deliver(wait_seconds=1):
            pass
        executions = pipeline.wait_for_executions(BATCHES, timeout=600)
        real_seconds = time.monotonic() - started
        fake = pipeline.fake
        starts = fake.start_times()
        drained = fake.clock.now() - starts[0]

        report_figure(
            f"quotas: batches sent {BATCHES}, jobs started {len(fake.jobs)}, "
            f"highest start rate {fake.highest_start_rate(WINDOW):.2f}/s over {WINDOW} s "
            f"(quota {START_RATE:g}/s, burst {START_BURST}), jobs in flight at most "
            f"{fake.max_in_flight} (quota {MAX_JOBS_IN_FLIGHT}), refused {fake.refused}, "
            f"drained in {drained / 60:.1f} HealthImaging minutes ({real_seconds:.0f} s real "
            f"at {SCALE}x), executions {sorted({e['status'] for e in executions})}"
        )
        assert sorted({e["status"] for e in executions}) == ["SUCCEEDED"]
        assert len(fake.jobs) == BATCHES
        assert len(pipeline.job_items()) == BATCHES
        assert fake.max_in_flight <= MAX_JOBS_IN_FLIGHT
        assert fake.highest_start_rate(WINDOW) <= (START_BURST + START_RATE * WINDOW) / WINDOW
        assert fake.refused["ThrottlingException"] > 0  # the quotas were met, and waited out
        assert fake.refused["ServiceQuotaExceededException"] > 0
