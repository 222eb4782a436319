"""Fixtures for the generator tests: the spec, the template as a dict, one checkov run."""

from __future__ import annotations

import json
from typing import Any

import pytest

from generator.release import gates
from generator.release.bundle import render_template
from generator.release.snapshot import PLACEHOLDER_DEFINITION
from generator.spec import Spec, load
from generator.template.build import template_for


@pytest.fixture(scope="session")
def spec() -> Spec:
    """The real spec with the placeholder state machine (the snapshot's inputs)."""
    return load(definition_path=PLACEHOLDER_DEFINITION)


@pytest.fixture(scope="session")
def real_spec() -> Spec:
    """The spec with the real state machine, as `make docs` and `make release` read it."""
    return load()


@pytest.fixture(scope="session")
def template_dict(real_spec: Spec) -> dict[str, Any]:
    """The template built from real_spec, as the generated documents read it."""
    return json.loads(template_for(real_spec).to_json())


@pytest.fixture(scope="session")
def rendered(spec: Spec) -> tuple[str, str]:
    return render_template(spec)


@pytest.fixture(scope="session")
def template(rendered: tuple[str, str]) -> dict[str, Any]:
    """The template as CloudFormation sees it (parsed from the emitted JSON)."""
    return json.loads(rendered[1])


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


@pytest.fixture(scope="session")
def checkov_findings(rendered: tuple[str, str], spec: Spec) -> list[str]:
    """checkov is slow (seconds): one run per session."""
    return gates.checkov(rendered[0], spec)
