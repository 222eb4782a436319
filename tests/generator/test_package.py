"""Lambda zips and the container build context: complete, self-contained and deterministic."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from generator.errors import GeneratorError
from generator.release import lock, package
from tests.generator.contract import FUNCTIONS
from tests.generator.sources import copy_sources
from tests.support.aws import FAKE_AWS_ENV


@pytest.fixture
def source_root(tmp_path: Path) -> Path:
    return copy_sources(tmp_path)


def test_lambda_zip_holds_the_package_and_the_schema(source_root):
    archive = zipfile.ZipFile(io.BytesIO(package.lambda_zip(source_root)))
    names = archive.namelist()
    assert names == sorted(names)
    assert package.SCHEMA in names
    for module in FUNCTIONS:
        assert f"lambdas/{module}.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    for info in archive.infolist():
        assert info.date_time == package.ZIP_DATE
        assert info.external_attr >> 16 == 0o644


def test_lambda_zip_is_byte_identical_whatever_the_timestamps(source_root):
    first = package.lambda_zip(source_root)
    for path in source_root.rglob("*.py"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
    (source_root / "lambdas" / "__pycache__").mkdir(exist_ok=True)
    (source_root / "lambdas" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"cache")
    assert package.lambda_zip(source_root) == first


def test_lambda_zip_runs_on_its_own(source_root, tmp_path):
    """Unzipped alone (boto3 as in the Lambda runtime), every handler imports."""
    target = tmp_path / "unzipped"
    zipfile.ZipFile(io.BytesIO(package.lambda_zip(source_root))).extractall(target)
    code = (
        "import importlib, lambdas\n"
        f"assert lambdas.__file__.startswith({str(target)!r}), lambdas.__file__\n"
        f"for m in {FUNCTIONS!r}:\n"
        "    assert callable(importlib.import_module('lambdas.' + m).handler)\n"
    )
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(target), **FAKE_AWS_ENV}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=target, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_container_context(source_root):
    """Everything the image build reads, and nothing the image does not need."""
    context = package.container_context(source_root)
    expected = {"Dockerfile", lock.RUNTIME_LOCK, lock.BUILD_LOCK, package.SCHEMA, "scp/__main__.py"}
    assert expected <= set(context)
    assert not [p for p in context if p.startswith(("lambdas/", "generator/", "tests/"))]
    assert package.MARKETPLACE_FILE not in context
    pins = lock.read(source_root, lock.RUNTIME_LOCK) + lock.read(source_root, lock.BUILD_LOCK)
    wheels = {k: v for k, v in context.items() if k.startswith("wheels/")}
    assert sorted(hashlib.sha256(w).hexdigest() for w in wheels.values()) == sorted(
        p.sha256 for p in pins
    )


def test_product_code_is_built_into_the_context(source_root):
    context = package.container_context(source_root, "abcdefghijklmnopqrstuvwxy")
    assert json.loads(context[package.MARKETPLACE_FILE]) == {
        "productCode": "abcdefghijklmnopqrstuvwxy"
    }


def test_lock_files_match_pyproject_and_carry_every_hash(source_root):
    """pyproject's pins and pip are locked, each with the sha256 of its wheel, transitive
    dependencies included (botocore under boto3)."""
    assert lock.stale(source_root) == []
    pins = {p.key: p for p in lock.read(source_root, lock.RUNTIME_LOCK)}
    assert {"boto3", "botocore", "s3transfer", "pydicom", "pynetdicom", "urllib3"} <= set(pins)
    text = (source_root / lock.RUNTIME_LOCK).read_text()
    assert text.count("--hash=sha256:") == len(pins) == len(text.splitlines()[1:]) // 2


def test_stale_lock_is_reported(source_root):
    pyproject = source_root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pydicom==3.0.2"', '"pydicom==3.0.1"'))
    assert lock.stale(source_root) == ["pydicom==3.0.1"]


def test_unpinned_runtime_dependency_is_refused(source_root):
    pyproject = source_root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pydicom==3.0.2"', '"pydicom>=3"'))
    with pytest.raises(GeneratorError, match=r"\['pydicom>=3'\] are not pinned"):
        lock.stale(source_root)


def test_a_cached_wheel_with_another_hash_is_not_used(tmp_path):
    pin = lock.Pin("six", "1.17.0", hashlib.sha256(b"the real wheel").hexdigest())
    (tmp_path / "six-1.17.0-py2.py3-none-any.whl").write_bytes(b"tampered")
    assert lock._cached(tmp_path, [pin]) == {}
    (tmp_path / "six-1.17.0-py2.py3-none-any.whl").write_bytes(b"the real wheel")
    assert list(lock._cached(tmp_path, [pin])) == ["six-1.17.0-py2.py3-none-any.whl"]


def test_missing_package_folder(source_root):
    shutil.rmtree(source_root / "lambdas")
    with pytest.raises(GeneratorError, match="lambdas: folder not found"):
        package.lambda_zip(source_root)
