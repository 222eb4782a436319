"""tests/support/scheduling.py: which tests share a worker, and what it relies on in xdist."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import xdist
from xdist.dsession import DSession
from xdist.scheduler import LoadScopeScheduling

from tests.support.scheduling import CACHE_MODULES, RELEASE_CACHES, scope_of
from tests.support.scp import REPO

# What fills the build caches: the image build context (wheels), the image, a release run.
CACHE_USE = re.compile(r"container_context\(|with_image\(|image\.build\(|\"generator\.release\"")


def test_a_modules_tests_share_a_scope_and_the_cache_modules_one_between_them():
    assert scope_of("tests/scp/test_policy.py::test_a[x::y]") == "tests/scp/test_policy.py"
    assert scope_of("tests/scp/test_policy.py::test_b") == "tests/scp/test_policy.py"
    assert {scope_of(f"{m}::test_x[1-2]") for m in CACHE_MODULES} == {RELEASE_CACHES}


def _fills_the_caches(module: Path) -> bool:
    """The module, or the fixtures of its folder's conftest.py, fill the caches."""
    conftest = module.parent / "conftest.py"
    sources = [module, conftest] if conftest.exists() else [module]
    return any(CACHE_USE.search(p.read_text()) for p in sources)


def test_the_cache_modules_are_exactly_those_that_fill_the_caches():
    modules = (REPO / "tests").rglob("test_*.py")
    found = {p.relative_to(REPO).as_posix() for p in modules if _fills_the_caches(p)}
    assert found == CACHE_MODULES


def test_xdist_still_asks_the_hook_for_its_scheduler_and_the_scheduler_for_scopes():
    """The two seams scheduling.py uses, as pytest-xdist 3.8.0 has them."""
    assert xdist.__version__ == "3.8.0", "check tests/support/scheduling.py against this xdist"
    assert "pytest_xdist_make_scheduler(" in inspect.getsource(DSession.pytest_runtestloop)
    assert "self._split_scope(nodeid)" in inspect.getsource(LoadScopeScheduling.schedule)
