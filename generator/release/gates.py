"""Release gates: cfn-lint (with the project rules), checkov and hadolint. Each returns findings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cfnlint.api import lint
from cfnlint.config import ManualArgs

from generator.errors import GateError
from generator.spec import ROOT, Spec
from generator.template.service import ecr_repository_arn

LINT_RULES = Path(__file__).resolve().parents[1] / "template" / "lint_rules"
CHECKOV_VERSION = "3.3.30"
CHECKOV_VENV = ROOT / ".venv" / "checkov"
HADOLINT = Path(sys.executable).parent / "hadolint"


def cfn_lint(template: str, spec: Spec) -> list[str]:
    """Errors and warnings (informational findings excluded) with the project rules."""
    # The Marketplace registry's image URI, repository ARN and Region (the Rule
    # InterfaceEndpointsInImageRegion compares the stack's Region with it).
    allowed = [spec.image_uri, ecr_repository_arn(spec).to_dict()["Fn::Sub"], spec.image.region]
    config = ManualArgs(
        regions=list(spec.regions),  # every Region the SupportedRegion Rule admits
        append_rules=[str(LINT_RULES)],
        ignore_checks=[s.id for s in spec.lint.cfn_lint_ignore],
        configure_rules={"E9002": {"allowed": allowed, "regionRules": ["SupportedRegion"]}},
    )
    return [
        f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})"
        for m in lint(template, config=config)
        if m.rule.severity in ("error", "warning")
    ]


def checkov_command() -> Path:
    """checkov in its own virtualenv (its pins conflict with moto/boto3), installed on demand."""
    exe = CHECKOV_VENV / "bin" / "checkov"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True)
        subprocess.run(
            [
                str(CHECKOV_VENV / "bin" / "pip"),
                "install",
                "--quiet",
                f"checkov=={CHECKOV_VERSION}",
            ],
            check=True,
        )
    return exe


def checkov(template: str, spec: Spec) -> list[str]:
    """Failed checks not skipped in the spec."""
    skips = ",".join(s.id for s in spec.lint.checkov_skips)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "template.yaml").write_text(template)
        cmd = [
            str(checkov_command()),
            "-d",
            tmp,
            "--framework",
            "cloudformation",
            "--skip-download",
            "--quiet",
            "--compact",
            "-o",
            "json",
        ]
        if skips:
            cmd += ["--skip-check", skips]
        env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    try:
        report = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise GateError(
            f"checkov gave no JSON report (exit {proc.returncode}): {proc.stderr[-2000:]}"
        ) from exc
    reports = report if isinstance(report, list) else [report]
    if not any(r.get("summary", {}).get("resource_count") for r in reports):
        raise GateError(
            f"checkov scanned no resources (exit {proc.returncode}): {proc.stderr[-1000:]}"
        )
    return [
        f"{c['check_id']} {c['check_name']} ({c['resource']})"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]


def hadolint(dockerfile: Path) -> list[str]:
    """hadolint findings at warning level and above."""
    proc = subprocess.run(
        [
            str(HADOLINT),
            "--no-color",
            "--failure-threshold",
            "warning",
            "--format",
            "tty",
            str(dockerfile),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode == 0:
        return []
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
