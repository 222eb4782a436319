"""Static checks of the ASL file: the contract's placeholders, retries and catches on every Task."""

from __future__ import annotations

import json
import re

from cfnlint.api import lint

from tests.fakes.pipeline import ACCOUNT, ASL_PATH, FUNCTIONS

PLACEHOLDERS = set(FUNCTIONS)
RETRIED = {"ThrottlingException", "ServiceQuotaExceededException", "InternalServerException"}


def definition() -> dict:
    return json.loads(ASL_PATH.read_text())


def test_placeholders_are_the_four_of_the_contract():
    assert set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text())) == {
        "StartImportFunctionArn",
        "CheckStatusFunctionArn",
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


def test_healthimaging_calls_back_off_on_throttling_and_everything_else_is_caught():
    states = definition()["States"]
    for name in ("StartImport", "CheckStatus"):
        (retry,) = [r for r in states[name]["Retry"] if set(r["ErrorEquals"]) >= RETRIED]
        assert retry["BackoffRate"] > 1 and retry["MaxAttempts"] >= 5
    for name, state in states.items():
        if state["Type"] == "Task" and name != "RecordFailure":
            assert state["Catch"] == [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}
            ]


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
