"""What the logs hold: config/log-fields.yaml names every field the code logs (read from the log
calls themselves), and LOG_UIDS keeps instance UIDs plain, hashed or out of the SCP's log."""

from __future__ import annotations

import ast

import pytest
import yaml

from lambdas import results
from scp.telemetry import apply_uid_policy, uid_pseudonym
from tests.scp.conftest import STUDY
from tests.scp.test_transfer import storescu
from tests.support.scp import REPO

FIELDS = yaml.safe_load((REPO / "config" / "log-fields.yaml").read_text())
FORMATTER = {"time", "level", "logger", "message", "error"}  # scp.telemetry.JsonFormatter's own


def _sources(package: str) -> list[ast.AST]:
    return [ast.parse(p.read_text()) for p in sorted((REPO / package).rglob("*.py"))]


def scp_fields() -> set[str]:
    """Keys of every extra={"fields": {...}} dict in scp/."""
    found = set()
    for tree in _sources("scp"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "fields":
                        assert isinstance(value, ast.Dict)
                        assert all(isinstance(k, ast.Constant) for k in value.keys)
                        found |= {k.value for k in value.keys}
    return found


def workflow_fields() -> set[str]:
    """Keyword names of every lambdas.log.log(...) call, and what its **counts spread holds."""
    found = {"level", "event"}
    for tree in _sources("lambdas"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "log":
                found |= {k.arg for k in node.keywords if k.arg}
    statuses = (results.IMPORTED, results.CONFLICT, results.FAILED)
    return found | {f"{s.lower()}Count" for s in statuses} | {"warningCount"}


def test_the_field_list_is_exactly_what_the_code_logs():
    assert set(FIELDS["scp"]) == scp_fields() | FORMATTER
    assert set(FIELDS["workflow"]) == workflow_fields()
    for part in FIELDS.values():
        assert all(f["identifies"] in ("instance", "network", "no") for f in part.values())


def test_the_data_protection_page_lists_every_field():
    page = (REPO / "docs" / "data-protection.md").read_text()
    for part, entries in FIELDS.items():
        for name, field in entries.items():
            assert (
                f"| `{name}` | {'SCP' if part == 'scp' else 'workflow'} | {field['meaning']}"
                in page
            )


def test_uids_inside_other_values_follow_the_policy():
    study, sop = "1.2.826.0.1.3680043.10.1087.7", "1.2.826.0.1.3680043.10.1087.7.1"
    line = {
        "reason": f"cannot store s3://b/incoming/x/{study}/{study}.2/{sop}.dcm: Timeout",
        "peer": "10.20.30.40",
        "contexts": ["1.2.840.10008.5.1.4.1.1.2"],
        "version": "0.1.0",
    }
    assert apply_uid_policy(line, "plain") == line
    hashed = apply_uid_policy(line, "hashed")
    assert hashed["reason"] == (
        f"cannot store s3://b/incoming/x/{uid_pseudonym(study)}/{uid_pseudonym(study + '.2')}/"
        f"{uid_pseudonym(sop)}.dcm: Timeout"
    )
    assert {k: hashed[k] for k in ("peer", "contexts", "version")} == {
        k: line[k] for k in ("peer", "contexts", "version")
    }
    assert apply_uid_policy(line, "none")["reason"] == (
        "cannot store s3://b/incoming/x/(uid)/(uid)/(uid).dcm: Timeout"
    )


@pytest.mark.parametrize(
    ("policy", "logged"),
    [("plain", STUDY), ("hashed", uid_pseudonym(STUDY)), ("none", None)],
)
def test_log_uids_decides_how_the_scp_logs_a_study(start_scp, instances, policy, logged):
    scp = start_scp(log_uids=policy, workers=1)
    assert storescu(scp.port, str(instances["explicit"])).returncode == 0
    assert scp.terminate() == 0
    (closed,) = [x for x in scp.log_lines() if x.get("message") == "batch closed"]
    assert closed.get("studyInstanceUID") == logged
    assert (STUDY in scp.output()) == (policy == "plain")
