"""A private copy of the sources the release reads."""

from __future__ import annotations

import shutil
from pathlib import Path

from generator.spec import ROOT


def copy_sources(root: Path) -> Path:
    """Copy what the release reads into root, so tests may change it, and so a tree that others
    are editing cannot change under a test."""
    for folder in ("config", "lambdas", "scp", "deploy"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "edge.md", root / "docs" / "edge.md")
    for name in ("Dockerfile", "pyproject.toml", "requirements.lock", "requirements-build.lock"):
        shutil.copy(ROOT / name, root / name)
    return root
