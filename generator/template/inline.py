"""Inline Lambda code: the source CloudFormation puts in `Code.ZipFile`, built from lambdas/.

A function is one handler module under lambdas/ and the lambdas modules it imports, concatenated
in dependency order into one module (`index.py`, handler `index.handler`). Docstrings, comments,
type annotations and imports between our own modules are dropped (the template stays small);
every name stays as written, so a traceback in a function's log names the function and variable
of the source. The modules stay ordinary tested Python; tests run the built source as Lambda would.

The limit: CloudFormation zips the inline code into a file named `index` and "this zip file cannot
exceed 4MB" (CloudFormation reference, AWS::Lambda::Function Code, ZipFile; the same words are in
the resource schema cfn-lint ships, which sets no maxLength). The old limit of 4,096 characters
was removed in 2022 (the AWS CDK dropped its own check then, aws-cdk PR 20624).
"""

from __future__ import annotations

import ast
import builtins
import io
import zipfile
from collections.abc import Mapping
from pathlib import Path

from generator.errors import GeneratorError
from generator.spec import ROOT, Spec

PACKAGE = "lambdas"
# AWS::Lambda::Function Code.ZipFile: the zip CloudFormation makes "cannot exceed 4MB" (read as
# 4,000,000 bytes, the stricter of MB and MiB).
ZIP_FILE_LIMIT = 4_000_000
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


def inline_code(spec: Spec, root: Path = ROOT) -> Mapping[str, str]:
    """Each workflow function's inline source, by function name: the input build_template
    takes beside the spec, so that it does no I/O."""
    return {name: inline_source(name, root) for name in spec.workflow.functions}


def inline_source(module: str, root: Path = ROOT) -> str:
    """The inline source of the function whose handler is `lambdas.{module}.handler`."""
    nodes: list[ast.stmt] = []
    defined: dict[str, str] = {}
    modules = _dependencies(module, root)
    for name in modules:
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
    known = {name for n in kept for name in _defines(n)} | set(dir(builtins))
    undefined = sorted({name for n in kept for name in _free_names(n)} - known)
    if undefined:
        raise GeneratorError(f"lambdas.{module}'s inline code uses {undefined}, defined nowhere")
    imports = [n for n in kept if isinstance(n, ast.Import | ast.ImportFrom)]
    rest = [n for n in kept if n not in imports]
    joined = ",".join(modules)
    header = f"# lambdas.{module}: lambdas/{{{joined}}}.py joined by generator/template/inline.py"
    lines = [header, *_merged_imports(imports)]
    source = "\n".join([*lines, ast.unparse(ast.Module(body=rest, type_ignores=[]))]) + "\n"
    size = zipped_size(source)
    if size > ZIP_FILE_LIMIT:
        raise GeneratorError(
            f"inline code of lambdas.{module} zips to {size:,} bytes, over the "
            f"{ZIP_FILE_LIMIT:,} CloudFormation allows for Code.ZipFile; make its modules smaller"
        )
    return source


def zipped_size(source: str) -> int:
    """Bytes of the deployment package CloudFormation makes of inline code: a zip holding
    `index.py`, counted stored (uncompressed), the largest it can be."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as package:
        package.writestr("index.py", source)
    return buffer.tell()


def _merged_imports(imports: list[ast.stmt]) -> list[str]:
    """One line per module: `import x` lines, then `from x import a,b`."""
    plain = dict.fromkeys(
        ast.unparse(a) for n in imports if isinstance(n, ast.Import) for a in n.names
    )
    names: dict[str, dict[str, None]] = {}
    for node in imports:
        if isinstance(node, ast.ImportFrom):
            names.setdefault(node.module, {}).update(
                dict.fromkeys(ast.unparse(a) for a in node.names)
            )
    return [
        *([f"import {', '.join(plain)}"] if plain else []),
        *(f"from {m} import {', '.join(n)}" for m, n in names.items()),
    ]


def _reachable(nodes: list[ast.stmt]) -> list[ast.stmt]:
    """The statements `handler` needs, in their order: definitions it uses, transitively."""
    uses = {id(n): _free_names(n) for n in nodes}
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
    return [
        n for n in nodes if set(_defines(n)) & needed or (not _defines(n) and uses[id(n)] & needed)
    ]


def _free_names(node: ast.stmt) -> set[str]:
    """Names a statement reads that it does not bind itself (an over-approximation)."""
    loaded = {
        x.id for x in ast.walk(node) if isinstance(x, ast.Name) and isinstance(x.ctx, ast.Load)
    }
    bound = {
        x.id for x in ast.walk(node) if isinstance(x, ast.Name) and isinstance(x.ctx, ast.Store)
    }
    bound |= {x.arg for x in ast.walk(node) if isinstance(x, ast.arg)}
    bound |= {
        x.name
        for x in ast.walk(node)
        if isinstance(x, ast.ExceptHandler | ast.FunctionDef | ast.ClassDef) and x.name
    }
    return loaded - bound


def _defines(node: ast.stmt) -> list[str]:
    """The top-level names a statement binds."""
    if isinstance(node, ast.FunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        targets = [e for t in node.targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
        return [t.id for t in targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    return []
