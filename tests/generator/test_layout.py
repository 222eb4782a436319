"""generator/ by job: template <- documents <- release, spec and errors shared, no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from generator.spec import ROOT

GENERATOR = ROOT / "generator"
# What each part may import of generator/ (DESIGN: dependencies run one way).
ALLOWED = {
    "spec": {"errors"},
    "contracts": {"spec"},
    "errors": set(),
    "template": {"spec", "errors", "contracts", "template"},
    "documents": {"spec", "errors", "contracts", "template", "documents"},
    "release": {"spec", "errors", "contracts", "template", "documents", "release"},
}


def _part(path: Path) -> str:
    rel = path.relative_to(GENERATOR)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_parts(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            bits = name.split(".")
            if bits[0] == "generator" and len(bits) > 1:
                parts.add(bits[1])
    return parts


MODULES = sorted(
    p for p in GENERATOR.rglob("*.py") if p.name != "__init__.py" or p.parent != GENERATOR
)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(GENERATOR)))
def test_module_imports_only_its_layer_and_below(path):
    part = _part(path)
    assert part in ALLOWED, f"{path}: put it in template/, documents/ or release/"
    wrong = _imported_parts(path) - ALLOWED[part]
    assert not wrong, f"{path.relative_to(ROOT)} ({part}) imports generator.{sorted(wrong)}"


def test_each_package_says_what_it_does():
    for package in ("template", "documents", "release"):
        doc = ast.get_docstring(ast.parse((GENERATOR / package / "__init__.py").read_text()))
        assert doc and len(doc) > 100, f"generator/{package}/__init__.py needs its docstring"
