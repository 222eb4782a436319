"""generator/template/inline.py: each function's inline code fits Code.ZipFile, keeps its names and
does what its modules do."""

from __future__ import annotations

import ast
import json
import shutil
import traceback
import types
from pathlib import Path

import cfnlint
import pytest

from generator.errors import GeneratorError
from generator.spec import ROOT
from generator.template.inline import ZIP_FILE_LIMIT, inline_source, zipped_size
from tests.generator.contract import FUNCTIONS


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_fits_and_defines_its_handler(name):
    source = inline_source(name)
    print(f"\nINLINE: {name} {len(source)} characters, {zipped_size(source)} bytes zipped")
    assert zipped_size(source) <= ZIP_FILE_LIMIT
    module = types.ModuleType("index")
    exec(compile(source, "index.py", "exec"), module.__dict__)
    assert callable(module.handler)
    assert "from lambdas" not in source and '"""' not in source
    assert source.startswith(f"# lambdas.{name}: lambdas/")


def test_the_limit_is_the_one_cfn_lint_knows():
    """cfn-lint's AWS::Lambda::Function schema (from CloudFormation's resource schema) sets no
    maxLength on Code.ZipFile and says the zip "cannot exceed 4MB": ZIP_FILE_LIMIT follows it."""
    schemas = Path(cfnlint.__file__).parent / "data" / "schemas" / "resources"
    (schema,) = [
        s
        for s in map(json.loads, (p.read_text() for p in schemas.glob("*.json")))
        if s.get("typeName") == "AWS::Lambda::Function"
    ]
    zip_file = schema["definitions"]["Code"]["properties"]["ZipFile"]
    assert "maxLength" not in zip_file
    assert "cannot exceed 4MB" in zip_file["description"]
    assert ZIP_FILE_LIMIT == 4_000_000


def test_names_stay_as_written_so_tracebacks_name_the_source(root):
    write(root, "one", "def check_batch(batch_size):\n    return 10 // batch_size\n")
    write(
        root,
        "probe",
        "from lambdas.one import check_batch\n"
        "def handler(event, context=None):\n    return check_batch(event['size'])\n",
    )
    source = inline_source("probe", root)
    module = types.ModuleType("index")
    exec(compile(source, "index.py", "exec"), module.__dict__)
    with pytest.raises(ZeroDivisionError) as raised:
        module.handler({"size": 0})
    frames = [frame.name for frame in traceback.extract_tb(raised.tb)]
    assert frames[-2:] == ["handler", "check_batch"]
    assert "def check_batch(batch_size):" in source


@pytest.fixture
def root(tmp_path):
    """A copy of lambdas/ to build from."""
    shutil.copytree(ROOT / "lambdas", tmp_path / "lambdas")
    return tmp_path


def write(root, name: str, text: str) -> None:
    (root / "lambdas" / f"{name}.py").write_text(text)


def test_keyword_arguments_and_shadowed_globals_survive(root):
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


def probe_of_size(root, filler: int) -> None:
    write(root, "probe", f"def handler(event, context=None):\n    return '{'x' * filler}'\n")


def test_code_at_the_limit_is_taken_and_a_byte_more_is_refused(root):
    probe_of_size(root, 0)
    overhead = zipped_size(inline_source("probe", root))
    probe_of_size(root, ZIP_FILE_LIMIT - overhead)
    assert zipped_size(inline_source("probe", root)) == ZIP_FILE_LIMIT

    probe_of_size(root, ZIP_FILE_LIMIT - overhead + 1)
    with pytest.raises(GeneratorError, match="over the 4,000,000 CloudFormation allows"):
        inline_source("probe", root)


def test_a_function_without_handler_is_refused(root):
    write(root, "probe", "def run(event):\n    return 1\n")
    with pytest.raises(GeneratorError, match="defines no handler"):
        inline_source("probe", root)


def test_a_name_defined_nowhere_is_refused(root):
    write(root, "probe", "def handler(event, context=None):\n    raise GoneError('x')\n")
    with pytest.raises(GeneratorError, match=r"uses \['GoneError'\], defined nowhere"):
        inline_source("probe", root)


def test_an_object_that_cannot_be_marked_is_kept(root):
    """An object RecordResults cannot copy (or, over 5 GB, tag) is logged and kept: the record
    goes on."""
    write(
        root,
        "probe",
        "from lambdas.results import mark_imported\n"
        "def handler(event, context=None):\n"
        "    return mark_imported(event['s3'], 'b', 'k', event['size'], 'job')\n",
    )
    module = types.ModuleType("index")
    exec(inline_source("probe", root), module.__dict__)

    calls: list[str] = []

    class Refusing:
        def copy_object(self, **kwargs):
            calls.append("copy")
            raise PermissionError("AccessDenied")

        def put_object_tagging(self, **kwargs):
            calls.append("tag")
            raise PermissionError("AccessDenied")

    assert module.handler({"s3": Refusing(), "size": 10}) is None
    assert module.handler({"s3": Refusing(), "size": 5 * 1024**3 + 1}) is None
    assert calls == ["copy", "tag"]
