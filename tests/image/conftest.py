"""The SCP image, built once per test session the way `make release` builds it.

Skipped, with the reason, only where no container engine can run at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from generator.release import bundle as release
from generator.release import image, oci
from generator.spec import ROOT, load


@dataclass(frozen=True)
class Released:
    """The release's files with the image, the image gate's findings, and the local tag."""

    files: dict[str, bytes]
    findings: list[str]
    tag: str
    image: oci.Image


@pytest.fixture(scope="session")
def engine() -> image.Engine:
    found, reason = image.detect()
    if found is None:
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def released(engine: image.Engine) -> Iterator[Released]:
    spec = load()
    files, findings = release.with_image(spec, ROOT, release.bundle(spec, ROOT), engine)
    tag = f"localhost/{spec.image.repository}:{spec.image.tag}"
    yield Released(files, findings, tag, oci.read(files[release.image_archive(spec)]))
