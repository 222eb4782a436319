"""Inline Lambda code: the source CloudFormation puts in `Code.ZipFile`, built from lambdas/.

A function is one handler module under lambdas/ and the lambdas modules it imports, concatenated
in dependency order into one module (`index.py`, handler `index.handler`). Docstrings, comments,
type annotations and imports between our own modules are dropped and blocks are indented by one
space, because CloudFormation takes at most 4,096 characters of inline code. The modules stay
ordinary tested Python; tests run the built source as Lambda would.
"""

from __future__ import annotations

import ast
import builtins
import itertools
import re
import string
from keyword import kwlist
from pathlib import Path

from generator.errors import GeneratorError
from generator.spec import ROOT

PACKAGE = "lambdas"
ZIP_FILE_LIMIT = 4096  # AWS::Lambda::Function Code.ZipFile, Python runtimes
HANDLER = "index.handler"


class _Strip(ast.NodeTransformer):
    """Drop docstrings and annotations."""

    def _body(self, node):
        self.generic_visit(node)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:] or [ast.Pass()]
        node.body = body
        return node

    def visit_FunctionDef(self, node):
        node.returns = None
        for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
            arg.annotation = None
        for arg in (node.args.vararg, node.args.kwarg):
            if arg:
                arg.annotation = None
        return self._body(node)

    visit_ClassDef = _body
    visit_Module = _body

    def visit_AnnAssign(self, node):
        if node.value is None:
            return None
        return ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno)


def _dependencies(module: str, root: Path) -> list[str]:
    """`module` and the lambdas modules it imports, dependencies first."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        tree = ast.parse(_path(name, root).read_text())
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(f"{PACKAGE}."):
                visit(node.module.removeprefix(f"{PACKAGE}."))
        order.append(name)

    visit(module)
    return order


def _path(module: str, root: Path) -> Path:
    path = root / PACKAGE / f"{module}.py"
    if not path.is_file():
        raise GeneratorError(f"{path}: module not found; a function's handler is lambdas/<name>.py")
    return path


def inline_source(module: str, root: Path = ROOT) -> str:
    """The inline source of the function whose handler is `lambdas.{module}.handler`."""
    nodes: list[ast.stmt] = []
    defined: dict[str, str] = {}
    for name in _dependencies(module, root):
        tree = _Strip().visit(ast.parse(_path(name, root).read_text()))
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and (
                node.module == "__future__" or (node.module or "").startswith(PACKAGE)
            ):
                continue
            for target in _defines(node):
                same_import = isinstance(node, ast.Import | ast.ImportFrom)
                if target in defined and name != defined[target] and not same_import:
                    raise GeneratorError(
                        f"lambdas/{name}.py and lambdas/{defined[target]}.py both define "
                        f"{target!r}; inline code is one module, so rename one of them"
                    )
                defined[target] = name
            nodes.append(node)
    if "handler" not in defined:
        raise GeneratorError(f"lambdas/{module}.py defines no handler(event, context)")
    kept = _reachable(nodes)
    _shorten_locals(kept)
    imports = [n for n in kept if isinstance(n, ast.Import | ast.ImportFrom)]
    rest = [n for n in kept if n not in imports]
    lines = list(dict.fromkeys(ast.unparse(n) for n in imports))
    source = "\n".join([*lines, ast.unparse(ast.Module(body=rest, type_ignores=[]))]) + "\n"
    source = re.sub(r"^((?: {4})+)", lambda m: " " * (len(m[1]) // 4), source, flags=re.M)
    source = re.sub(r"\n\n+", "\n", source)
    if len(source) > ZIP_FILE_LIMIT:
        raise GeneratorError(
            f"inline code of lambdas.{module} is {len(source)} characters, over the "
            f"{ZIP_FILE_LIMIT} CloudFormation allows in Code.ZipFile; make its modules smaller"
        )
    return source


def _reachable(nodes: list[ast.stmt]) -> list[ast.stmt]:
    """The statements `handler` needs, in their order: definitions it uses, transitively."""
    uses = {id(n): {x.id for x in ast.walk(n) if isinstance(x, ast.Name)} for n in nodes}
    needed, changed = {"handler"}, True
    while changed:
        changed = False
        for node in nodes:
            names = _defines(node)
            if (set(names) & needed or (not names and uses[id(node)] & needed)) and not (
                uses[id(node)] <= needed
            ):
                needed |= uses[id(node)]
                changed = True
    return [n for n in nodes if set(_defines(n)) & needed or (not _defines(n) and uses[id(n)] & needed)]


def _shorten_locals(nodes: list[ast.stmt]) -> None:
    """Give each function's local names (not parameters passed by keyword) one-letter names."""
    keywords = {k.arg for n in nodes for x in ast.walk(n) if isinstance(x, ast.Call) for k in x.keywords}
    taken = {x.id for n in nodes for x in ast.walk(n) if isinstance(x, ast.Name)}
    taken |= {name for n in nodes for name in _defines(n)} | set(dir(builtins)) | set(kwlist)
    for function in (n for n in nodes if isinstance(n, ast.FunctionDef)):
        local: set[str] = set()
        for x in ast.walk(function):
            if isinstance(x, ast.Name) and isinstance(x.ctx, ast.Store):
                local.add(x.id)
            elif isinstance(x, ast.arg):
                local.add(x.arg)
            elif isinstance(x, ast.ExceptHandler) and x.name:
                local.add(x.name)
            elif isinstance(x, ast.FunctionDef) and x is not function:
                local.add(x.name)
        local -= keywords | {name for n in nodes for name in _defines(n)}
        names = (n for n in _short_names() if n not in taken)
        rename = dict(zip(sorted(local), names, strict=False))
        for x in ast.walk(function):
            if isinstance(x, ast.Name) and x.id in rename:
                x.id = rename[x.id]
            elif isinstance(x, ast.arg) and x.arg in rename:
                x.arg = rename[x.arg]
            elif isinstance(x, ast.ExceptHandler) and x.name in rename:
                x.name = rename[x.name]
            elif isinstance(x, ast.FunctionDef) and x is not function and x.name in rename:
                x.name = rename[x.name]


def _short_names():
    for size in range(1, 3):
        yield from ("".join(p) for p in itertools.product(string.ascii_lowercase, repeat=size))


def _defines(node: ast.stmt) -> list[str]:
    """The top-level names a statement binds."""
    if isinstance(node, ast.FunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    return []
