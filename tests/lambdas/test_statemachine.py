"""Static checks of the ASL file: the contract's placeholders, retries and catches on every Task."""

from __future__ import annotations

import json
import re

from tests.fakes.pipeline import ASL_PATH

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
