"""Static checks of the ASL file: the contract's placeholders, HealthImaging calls as AWS SDK
integrations that wait out quotas, catches on every Task."""

from __future__ import annotations

import json
import re

from cfnlint.api import lint

from tests.fakes.pipeline import ACCOUNT, ASL_PATH, FUNCTIONS

PLACEHOLDERS = {*FUNCTIONS, "DatastoreId", "DataAccessRoleArn", "OutputS3Uri", "JobTableName"}
# Step Functions names AWS SDK integration errors ServiceName.ErrorName, in PascalCase (Step
# Functions developer guide, "AWS SDK service integrations").
THROTTLED = "MedicalImaging.ThrottlingException"
QUOTA = "MedicalImaging.ServiceQuotaExceededException"


def definition() -> dict:
    return json.loads(ASL_PATH.read_text())


def test_placeholders_are_those_of_the_contract():
    assert set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text())) == {
        "DatastoreId",
        "DataAccessRoleArn",
        "OutputS3Uri",
        "JobTableName",
        "RecordResultsFunctionArn",
        "RecordFailureFunctionArn",
    }


def test_every_transition_names_an_existing_state():
    states = definition()["States"]
    targets = {definition()["StartAt"]}
    for state in states.values():
        targets |= {state.get("Next"), state.get("Default")} - {None}
        targets |= {c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])}
    assert targets <= set(states)
    assert set(states) - targets == set()


def test_healthimaging_calls_are_sdk_integrations():
    states = definition()["States"]
    assert states["StartImport"]["Resource"] == (
        "arn:aws:states:::aws-sdk:medicalimaging:startDICOMImportJob"
    )
    assert states["CheckStatus"]["Resource"] == (
        "arn:aws:states:::aws-sdk:medicalimaging:getDICOMImportJob"
    )


def waited(retry: dict) -> float:
    """Seconds a retrier waits at most over all its attempts (full jitter halves the mean)."""
    delay, total = retry["IntervalSeconds"], 0.0
    for _ in range(retry["MaxAttempts"]):
        total += min(delay, retry.get("MaxDelaySeconds", delay))
        delay *= retry["BackoffRate"]
    return total


def test_a_batch_waits_out_quotas_for_days_and_everything_else_is_caught():
    """StartImport waits out the quotas for two days; every other failure of a Task goes to
    RecordFailure (RecordSubmitted's goes on to the status checks: the job runs anyway; a
    throttled status check counts as one, tests/lambdas/test_history.py)."""
    states = definition()["States"]
    (start,) = [
        r for r in states["StartImport"]["Retry"] if {THROTTLED, QUOTA} <= set(r["ErrorEquals"])
    ]
    assert start["JitterStrategy"] == "FULL" and start["MaxDelaySeconds"] <= 300
    assert waited(start) / 2 > 48 * 3600  # even with the mean of full jitter: two days
    for name, state in states.items():
        if state["Type"] == "Task" and name != "RecordFailure":
            after = "StartPolling" if name == "RecordSubmitted" else "RecordFailure"
            assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"]
            assert state["Catch"][-1]["Next"] == after, name
    throttled = states["CheckStatus"]["Catch"][0]
    assert THROTTLED in throttled["ErrorEquals"] and throttled["Next"] == "PollAgain"


def lint_errors(asl: dict) -> list[str]:
    """cfn-lint findings for a template that embeds `asl` as the generator does."""
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:f"
    properties = {
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/workflow",
        "Definition": asl,
        "DefinitionSubstitutions": {name: arn for name in PLACEHOLDERS},
    }
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Workflow": {"Type": "AWS::StepFunctions::StateMachine", "Properties": properties}
        },
    }
    return [str(match) for match in lint(json.dumps(template), regions=["us-east-1"])]


def test_cfn_lint_accepts_the_definition_and_would_reject_a_broken_one():
    broken = definition()
    broken["States"]["StartImport"]["Retry"][0]["BackoffRate"] = "fast"

    assert lint_errors(definition()) == []
    assert lint_errors(broken)


# Lambda's own transient failures, as Step Functions names them ("Handle Lambda service
# exceptions", Step Functions developer guide, bp-lambda-serviceexception.html): the four 500s
# its example retries, and TooManyRequestsException when Lambda hits its invocation limit.
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


def test_every_lambda_task_retries_lambdas_service_errors():
    """A throttled or briefly failing Lambda must not turn an imported batch into a failure."""
    tasks = {
        name: state
        for name, state in definition()["States"].items()
        if state["Type"] == "Task" and re.fullmatch(r"\$\{\w+FunctionArn\}", state["Resource"])
    }
    assert set(tasks) == {"RecordResults", "RecordFailure"}
    for name, state in tasks.items():
        for error in LAMBDA_SERVICE_ERRORS:
            retried = [
                r
                for r in state["Retry"]
                if {error, "States.ALL"} & set(r["ErrorEquals"]) and r["MaxAttempts"] >= 3
            ]
            assert retried, f"{name} does not retry {error}"
            assert all(r["BackoffRate"] > 1 for r in retried), (name, error)


# The retry policy as a table: each Task -> the errors it retries before its Catch records a
# failure. HealthImaging's: its API reference's throttling, quota and 500 errors. The functions':
# Lambda's service errors, and the throttling and 500 error codes of DynamoDB and S3 (boto3 has
# retried those itself first; a Python function's error name is its exception's class name).
RETRIED = {
    "StartImport": {THROTTLED, QUOTA, "MedicalImaging.InternalServerException"},
    "CheckStatus": {THROTTLED, "MedicalImaging.InternalServerException"},
    "RecordResults": LAMBDA_SERVICE_ERRORS
    | {"ProvisionedThroughputExceededException", "ThrottlingException", "SlowDown"}
    | {"InternalServerError"},
    "RecordFailure": {"States.ALL"},
    # Best effort: the job item that shows a running import; its failure continues the import
    # (Catch -> StartPolling), so a few tries are enough.
    "RecordSubmitted": {"States.ALL"},
}
# Fewer tries where something else retries: RecordSubmitted is best effort (above), and a
# CheckStatus that runs out of tries counts as one of the poll loop's checks, which goes on.
FEW_TRIES = {"RecordSubmitted", "CheckStatus"}


def test_the_retry_policy_is_the_table_and_every_retrier_backs_off_with_jitter():
    states = definition()["States"]
    retriers = {name: state["Retry"] for name, state in states.items() if state["Type"] == "Task"}
    assert {name: {e for r in rs for e in r["ErrorEquals"]} for name, rs in retriers.items()} == (
        RETRIED
    )
    for name, retry in ((n, r) for n, rs in retriers.items() for r in rs):
        assert retry["JitterStrategy"] == "FULL", name  # batches throttled together spread out
        assert retry["BackoffRate"] >= 2, name
        assert retry["MaxAttempts"] >= (2 if name in FEW_TRIES else 6), name
