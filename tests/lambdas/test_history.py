"""One execution of the import workflow stays under Step Functions' 25,000 history events on its
worst path (tests/lambdas/history.py computes it from the ASL file), and the per-state event
counts that figure rests on are those an executed history shows (moto's interpreter)."""

from __future__ import annotations

import copy
import json
import uuid
from collections import Counter

import pytest

from tests.fakes.pipeline import ASL_PATH, local_pipeline
from tests.lambdas.batches import write_batch
from tests.lambdas.history import (
    EVENTS,
    HISTORY_QUOTA,
    RETRY_EVENTS,
    TASK_EVENTS,
    counted_loop,
    cycles,
    worst_case_events,
)

MARGIN = 0.8  # the worst path may use at most 80 % of the quota
DAY = 24 * 3600


def definition() -> dict:
    return json.loads(ASL_PATH.read_text())


def test_worst_case_history_fits_the_quota_with_margin():
    worst = worst_case_events(definition())
    print(f"\nHISTORY: worst case {worst:,} events per execution (quota {HISTORY_QUOTA:,})")
    assert worst <= MARGIN * HISTORY_QUOTA


def test_the_figure_follows_the_definition():
    """More retries, or more status checks, show in the figure: it is computed, not stated."""
    asl = definition()
    more_retries = copy.deepcopy(asl)
    more_retries["States"]["StartImport"]["Retry"][0]["MaxAttempts"] += 1
    assert worst_case_events(more_retries) == worst_case_events(asl) + RETRY_EVENTS
    more_polls = copy.deepcopy(asl)
    more_polls["States"]["PollAgain"]["Choices"][0]["NumericGreaterThanEquals"] = 6000
    assert worst_case_events(more_polls) > HISTORY_QUOTA


def test_an_uncounted_loop_is_refused():
    asl = definition()
    asl["States"]["CountPoll"]["Parameters"]["count.$"] = "$.poll.count"
    with pytest.raises(AssertionError, match="does not count"):
        worst_case_events(asl)


def test_status_checks_cover_two_days_whatever_the_first_interval():
    """At the longest, the workflow waits for a job through PollAgain's bound of checks whose
    interval doubles from pollSeconds until it reaches BackOff's threshold."""
    states = definition()["States"]
    (loop,) = [counted_loop(definition(), part) for part in cycles(states)]
    threshold = states["PollAgain"]["Choices"][1]["NumericGreaterThanEquals"]
    for first in range(1, threshold + 1):
        seconds, waited = first, 0
        for _ in range(loop.bound + 1):
            waited += seconds
            seconds = seconds * 2 if seconds < threshold else seconds
        assert waited >= 2 * DAY, first


@pytest.fixture
def pipeline(moto):
    with local_pipeline(moto, f"hist-{uuid.uuid4().hex[:8]}") as p:
        yield p


def test_the_event_counts_per_state_are_those_an_execution_writes(pipeline):
    """GIVEN two throttled starts and a job that needs several status checks, WHEN the batch
    runs, THEN its history has exactly the events the model gives each state it entered."""
    pipeline.fake.throttle_starts = 2
    pipeline.fake.job_seconds = 3
    write_batch(pipeline.moto.client("s3"), pipeline.bucket, 2)
    pipeline.deliver(wait_seconds=5)
    (execution,) = pipeline.wait_for_executions(1)
    history = pipeline.history(execution["executionArn"])
    types = Counter(e["type"] for e in history)
    states = definition()["States"]

    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")
    ]
    attempts = types["TaskScheduled"] + types["LambdaFunctionScheduled"]
    tasks = [n for n in entered if states[n]["Type"] == "Task"]
    expected = 1 + sum(
        TASK_EVENTS if states[n]["Type"] == "Task" else EVENTS[states[n]["Type"]] for n in entered
    )
    expected += RETRY_EVENTS * (attempts - len(tasks))
    print(f"\nHISTORY: {len(history)} events, states entered {Counter(entered)}")
    assert execution["status"] == "SUCCEEDED"
    assert entered.count("CheckStatus") >= 2 and attempts - len(tasks) == 2
    assert len(history) == expected


def test_a_job_that_outlasts_the_status_checks_is_caught_and_recorded(moto):
    """GIVEN a job that never ends and a bound of 1 status check (the real one is 600), WHEN
    the batch runs, THEN RecordFailure records every instance as failed, ImportTimedOut."""
    with local_pipeline(moto, f"hist-{uuid.uuid4().hex[:8]}", max_polls=1) as pipeline:
        pipeline.fake.job_seconds = 3600
        manifest = write_batch(pipeline.moto.client("s3"), pipeline.bucket, 2)
        pipeline.deliver(wait_seconds=5)
        (execution,) = pipeline.wait_for_executions(1)

        assert execution["status"] == "FAILED"
        (job,) = pipeline.job_items()
        assert job["jobStatus"] == {"S": "FAILED"}
        assert job["message"]["S"].startswith("ImportTimedOut: import job ")
        assert "within 1 status checks" in job["message"]["S"]
        for instance in manifest["instances"]:
            (item,) = pipeline.records_for_sop(instance["sopInstanceUID"])
            assert item["importStatus"] == "FAILED" and "ImportTimedOut" in item["reason"]


def test_the_readme_states_the_figures_of_the_definition():
    """The README's sentences on waiting and history are the ASL's numbers."""
    asl = definition()
    states = asl["States"]
    (loop,) = [counted_loop(asl, part) for part in cycles(states)]
    retry = states["StartImport"]["Retry"][0]
    readme = " ".join((ASL_PATH.parents[2] / "README.md").read_text().split())
    for said in (
        f"at most {retry['MaxDelaySeconds']} s between tries",
        f"{retry['MaxAttempts']:,} tries",
        f"after {loop.bound} checks",
        f"the worst path of this one writes {worst_case_events(asl):,}",
        f"fails above {int(MARGIN * HISTORY_QUOTA):,}",
    ):
        assert said in readme, said
