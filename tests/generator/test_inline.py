"""generator/template/inline.py: each function's inline code fits Code.ZipFile and does what its
modules do."""

from __future__ import annotations

import ast
import shutil
import types

import pytest

from generator.errors import GeneratorError
from generator.spec import ROOT
from generator.template.inline import ZIP_FILE_LIMIT, inline_source
from tests.generator.contract import FUNCTIONS


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_fits_and_defines_its_handler(name):
    source = inline_source(name)
    print(f"\nINLINE: {name} {len(source)} characters")
    assert len(source) <= ZIP_FILE_LIMIT
    module = types.ModuleType("index")
    exec(compile(source, "index.py", "exec"), module.__dict__)
    assert callable(module.handler)
    assert "from lambdas" not in source and '"""' not in source


@pytest.fixture
def root(tmp_path):
    """A copy of lambdas/ to build from."""
    shutil.copytree(ROOT / "lambdas", tmp_path / "lambdas")
    return tmp_path


def write(root, name: str, text: str) -> None:
    (root / "lambdas" / f"{name}.py").write_text(text)


def test_keyword_arguments_and_shadowed_globals_survive_the_short_names(root):
    write(root, "one", "TABLE = 'T'\ndef item(name, count=1):\n    return (name, count)\n")
    write(
        root,
        "probe",
        '"""doc"""\nfrom __future__ import annotations\nfrom lambdas.one import TABLE, item\n'
        "def other(items: list) -> int:\n"
        "    return sum(1 for item in items)\n"
        "def handler(event: dict, context: object = None) -> tuple:\n"
        '    """doc"""\n'
        "    made = [item(x, count=2) for x in event['names']]\n"
        "    return (TABLE, made, other(made))\n",
    )
    module = types.ModuleType("index")
    exec(inline_source("probe", root), module.__dict__)
    assert module.handler({"names": ["a"]}) == ("T", [("a", 2)], 1)


def test_unused_definitions_are_left_out(root):
    write(
        root,
        "probe",
        "def unused():\n    return 1\ndef handler(event, context=None):\n    return 2\n",
    )
    tree = ast.parse(inline_source("probe", root))
    assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef)] == ["handler"]


def test_two_modules_defining_one_name_are_refused(root):
    write(root, "one", "def helper():\n    return 1\n")
    write(root, "two", "def helper():\n    return 2\n")
    write(
        root,
        "probe",
        "from lambdas.one import helper\nfrom lambdas.two import helper as other\n"
        "def handler(event, context=None):\n    return helper() + other()\n",
    )
    with pytest.raises(GeneratorError, match="both define 'helper'"):
        inline_source("probe", root)


def test_code_over_the_limit_is_refused(root):
    body = "".join(f"    x{n} = {'1' * 60}\n" for n in range(80))
    write(root, "probe", f"def handler(event, context=None):\n{body}    return x1\n")
    with pytest.raises(GeneratorError, match="over the 4096 CloudFormation allows"):
        inline_source("probe", root)


def test_a_function_without_handler_is_refused(root):
    write(root, "probe", "def run(event):\n    return 1\n")
    with pytest.raises(GeneratorError, match="defines no handler"):
        inline_source("probe", root)


def test_a_name_defined_nowhere_is_refused(root):
    write(root, "probe", "def handler(event, context=None):\n    raise GoneError('x')\n")
    with pytest.raises(GeneratorError, match=r"uses \['GoneError'\], defined nowhere"):
        inline_source("probe", root)


def test_tag_failure_keeps_the_object(root):
    """An object RecordResults cannot tag is logged and kept: the record goes on."""
    write(
        root,
        "probe",
        "from lambdas.results import tag_imported\n"
        "def handler(event, context=None):\n    return tag_imported(event['s3'], 'b', 'k')\n",
    )
    module = types.ModuleType("index")
    exec(inline_source("probe", root), module.__dict__)

    class Refusing:
        def put_object_tagging(self, **kwargs):
            raise PermissionError("AccessDenied")

    assert module.handler({"s3": Refusing()}) is None
