"""Deterministic release artifacts: Lambda zips and the container build context, in memory."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from generator.errors import GeneratorError
from generator.release import lock

SCHEMA = "config/batch-manifest.schema.json"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _tree(root: Path, package: str) -> dict[str, bytes]:
    """Every file of a source folder, keyed by its path relative to root; no caches."""
    base = root / package
    if not base.is_dir():
        raise GeneratorError(f"{base}: folder not found; the release packages it, so it must exist")
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(base.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    }


def deterministic_zip(files: dict[str, bytes]) -> bytes:
    """A zip whose bytes depend only on the files: sorted, fixed dates and permissions."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name], compresslevel=9)
    return buffer.getvalue()


def lambda_zip(root: Path) -> bytes:
    """The lambdas package and the batch-manifest schema; one such zip per function."""
    return deterministic_zip({**_tree(root, "lambdas"), SCHEMA: (root / SCHEMA).read_bytes()})


MARKETPLACE_FILE = "scp/marketplace.json"


def container_context(root: Path, product_code: str = "") -> dict[str, bytes]:
    """The image build context: Dockerfile, the lock files and their wheels, scp/ and the
    manifest schema; with a Marketplace product code, scp/marketplace.json carries it into the
    image, where the SCP reads it at start-up (the buyer's settings cannot remove it)."""
    context = {
        "Dockerfile": (root / "Dockerfile").read_bytes(),
        **{name: (root / name).read_bytes() for name in (lock.RUNTIME_LOCK, lock.BUILD_LOCK)},
        **{f"wheels/{name}": data for name, data in lock.wheels(root).items()},
        **_tree(root, "scp"),
        SCHEMA: (root / SCHEMA).read_bytes(),
    }
    if product_code:
        context[MARKETPLACE_FILE] = (json.dumps({"productCode": product_code}) + "\n").encode()
    return dict(sorted(context.items()))
