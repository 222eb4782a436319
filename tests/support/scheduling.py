"""How `make test` shares the tests between its two pytest-xdist workers (`-n 2`).

A module's tests run on one worker, in order, so that its module-scoped fixtures (an Orthanc, an
SCP, the fuzz run) are made once. The modules that fill the build caches outside the repository
(generator/release/cache.py: pip's wheel downloads, the mmdebstrap base, podman's storage) all
run on one worker, one after another: two workers filling an empty cache at once (a fresh CI
machine) would each read the other's half-written files.

xdist's own `--dist loadgroup` cannot do the second with pytest 9 (it renames items through an
attribute pytest 9 no longer reads), so tests/conftest.py hands xdist this scheduler through its
`pytest_xdist_make_scheduler` hook; tests/test_scheduling.py holds xdist to what it relies on.
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling

RELEASE_CACHES = "release-caches"
CACHE_MODULES = frozenset(
    {
        "tests/generator/test_package.py",
        "tests/generator/test_release.py",
        "tests/image/test_fargate.py",
        "tests/image/test_image.py",
    }
)


def scope_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its module, or the build caches' one group."""
    module = nodeid.split("::", 1)[0]
    return RELEASE_CACHES if module in CACHE_MODULES else module


class ModuleScheduling(LoadScopeScheduling):
    """xdist's scope scheduling, with scope_of as the scope."""

    def _split_scope(self, nodeid: str) -> str:
        return scope_of(nodeid)
