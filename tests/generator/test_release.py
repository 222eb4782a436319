"""`python -m generator.release --no-image`: the bundle, its manifest, byte-identical rebuilds, and
the gates that stop it with nothing written. The release with its image: tests/image."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from generator.release import bundle as release
from generator.spec import ROOT, load
from tests.generator.contract import FUNCTIONS
from tests.generator.sources import copy_sources

RELEASE = (sys.executable, "-m", "generator.release")


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    return copy_sources(tmp_path_factory.mktemp("root"))


@pytest.fixture(scope="module")
def released(tmp_path_factory, sources) -> tuple[Path, str]:
    """One real release run (every gate but the image's) into a temporary dist/."""
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [*RELEASE, "--root", str(sources), "--out", str(out), "--no-image"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / load().version, proc.stdout


def files_under(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_bundle_contents(released):
    directory, _ = released
    names = set(files_under(directory))
    expected = {
        "template.yaml",
        "template.json",
        "parameters.md",
        "release-manifest.json",
        "container/Dockerfile",
        "container/requirements.lock",
        "container/requirements-build.lock",
        "container/wheels/pip-26.3-py3-none-any.whl",
        "container/config/batch-manifest.schema.json",
        "container/scp/__main__.py",
        "edge/compose.yaml",
        "edge/storescp-edge.service",
        "edge/aws-signing-helper.service",
        "edge/edge.env.example",
        "docs/edge.md",
    }
    assert expected <= names
    assert {"lambda/sources.zip", *(f"lambda/inline/{f}.py" for f in FUNCTIONS)} <= names
    assert not [n for n in names if n.startswith("image/")]


def test_manifest_lists_every_artifact_with_its_hash(released):
    directory, _ = released
    manifest = json.loads((directory / "release-manifest.json").read_text())
    spec = load()
    assert manifest["version"] == spec.version and manifest["image"] == spec.image_uri
    assert "container" not in manifest  # the image's entry: tests/image
    on_disk = files_under(directory)
    del on_disk["release-manifest.json"]
    assert [a["path"] for a in manifest["artifacts"]] == sorted(on_disk)
    for artifact in manifest["artifacts"]:
        data = on_disk[artifact["path"]]
        assert artifact["bytes"] == len(data)
        assert artifact["sha256"] == hashlib.sha256(data).hexdigest()


def test_summary_table_and_gates(released):
    _, stdout = released
    for gate in ("cfn-lint", "checkov", "hadolint"):
        assert f"gate {gate}: pass" in stdout
    assert "lambda/inline/trigger.py" in stdout and "release-manifest.json" in stdout


def test_a_second_build_is_byte_identical(released, sources):
    """A rebuild in another process, from the same sources, gives the very same bytes."""
    directory, _ = released
    assert release.bundle(load(sources / "config" / "product.yaml", sources), sources) == (
        files_under(directory)
    )


def test_bad_spec_stops_the_release_and_writes_nothing(tmp_path, capsys):
    root = copy_sources(tmp_path)
    spec = root / "config" / "product.yaml"
    spec.write_text(spec.read_text().replace("tag: 0.1.0", "tag: ':bad'"))
    assert release.main(["--root", str(root), "--out", str(tmp_path / "dist"), "--no-image"]) == 2
    assert not (tmp_path / "dist").exists()
    error = capsys.readouterr().err
    assert f"release failed: {spec}: $.image.tag: ':bad' does not match" in error


def test_failed_gate_stops_the_release_and_writes_nothing(tmp_path, capsys):
    root = copy_sources(tmp_path)
    (root / "Dockerfile").write_text('FROM python\nCMD ["python", "-m", "scp"]\n')
    assert release.main(["--root", str(root), "--out", str(tmp_path / "dist"), "--no-image"]) == 1
    assert not (tmp_path / "dist").exists()
    captured = capsys.readouterr()
    assert "gate hadolint: FAIL" in captured.out and "gate cfn-lint: pass" in captured.out
    assert "DL3006" in captured.err and "nothing written" in captured.err
