"""`make docs`: write every generated document to docs/ (Markdown); `bundle()` gives them to the
release as Markdown and HTML, with SECURITY.md. Usage: python -m generator.documents.pages [--check]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from generator.documents import compliance, conformance, cost, runbook
from generator.documents.markdown import to_html
from generator.documents.template_facts import TemplateFacts
from generator.spec import ROOT, Spec, load
from generator.template.build import template_for

DOCS = ROOT / "docs"
SECURITY = ROOT / "SECURITY.md"
Renderer = Callable[[Spec, TemplateFacts], str]
DOCUMENTS: dict[str, Renderer] = {
    "conformance-statement.md": conformance.render,
    "network-flows.md": compliance.network_flows,
    "data-protection.md": compliance.data_protection,
    "shared-responsibility.md": compliance.shared_responsibility,
    "support-policy.md": lambda spec, _: compliance.support_policy(spec),
    "runbook.md": runbook.render,
    "cost-estimate.md": cost.render,
}


def render_all(spec: Spec) -> dict[str, str]:
    """Every generated document by file name, from one build of the template."""
    template = TemplateFacts(template_for(spec))
    return {name: render(spec, template) for name, render in DOCUMENTS.items()}


def bundle(spec: Spec) -> dict[str, bytes]:
    """dist/<version>/docs/: each document as Markdown and HTML, and SECURITY.md."""
    files: dict[str, bytes] = {}
    for name, text in {**render_all(spec), "SECURITY.md": SECURITY.read_text()}.items():
        title = text.split("\n# ", 1)[-1].split("\n", 1)[0] if "\n# " in text else name
        files[f"docs/{name}"] = text.encode()
        files[f"docs/{Path(name).stem}.html"] = to_html(title, text).encode()
    return files


def stale(spec: Spec, folder: Path = DOCS) -> list[str]:
    """Names of the documents in folder that differ from what the code generates now."""
    return [
        name
        for name, text in render_all(spec).items()
        if not (folder / name).exists() or (folder / name).read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.documents", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when docs/ is stale")
    args = parser.parse_args(argv)
    spec = load()
    if args.check:
        names = stale(spec)
        for name in names:
            print(f"docs/{name} is stale: run `make docs`", file=sys.stderr)
        return 1 if names else 0
    DOCS.mkdir(exist_ok=True)
    for name, text in render_all(spec).items():
        (DOCS / name).write_text(text)
        print(f"wrote docs/{name}")
    return 0
