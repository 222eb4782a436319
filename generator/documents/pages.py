"""`make docs`: write every generated document (docs/*.md and SECURITY.md); `bundle()` gives them
to the release as Markdown and HTML in one folder, with CHANGELOG.md and an index page.
Usage: python -m generator.documents.pages [--check]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from generator.documents import (
    compliance,
    conformance,
    cost,
    deployment,
    runbook,
    security,
    troubleshooting,
)
from generator.documents.markdown import header, table, to_html
from generator.documents.template_facts import TemplateFacts
from generator.spec import ROOT, Spec, load
from generator.template.build import template_for

DOCS = ROOT / "docs"
SECURITY = ROOT / "SECURITY.md"
CHANGELOG = ROOT / "CHANGELOG.md"
Renderer = Callable[[Spec, TemplateFacts], str]
# docs/ by file name: the renderer, and what the page says (the index page lists it).
DOCUMENTS: dict[str, tuple[Renderer, str]] = {
    "deployment-guide.md": (
        deployment.render,
        "Prerequisites, launch, a first test, update and delete",
    ),
    "troubleshooting.md": (
        troubleshooting.render,
        "Each symptom a hospital sees, its cause and its fix",
    ),
    "conformance-statement.md": (
        conformance.render,
        "SOP classes, transfer syntaxes, AE titles, statuses, TLS, settings",
    ),
    "network-flows.md": (
        compliance.network_flows,
        "Every flow: from, to, port, encryption, the rule that allows it",
    ),
    "data-protection.md": (
        compliance.data_protection,
        "Each store: encryption at rest and in transit, retention",
    ),
    "shared-responsibility.md": (
        compliance.shared_responsibility,
        "What AWS, the stack and the hospital each do; what leaves your account",
    ),
    "runbook.md": (runbook.render, "Every alarm: what it means, what to do"),
    "cost-estimate.md": (cost.render, "Monthly cost per hospital profile, with dated prices"),
    "support-policy.md": (
        lambda spec, _: compliance.support_policy(spec),
        "Supported releases, regions, how to get help",
    ),
}
# The repository's root, by file name; the bundle puts them beside the others.
ROOT_DOCUMENTS: dict[str, tuple[Callable[[Spec], str], str]] = {
    "SECURITY.md": (security.security_policy, "Reporting a vulnerability privately"),
}
HAND_WRITTEN = {CHANGELOG: "What changed in each release"}


def render_all(spec: Spec) -> dict[str, str]:
    """Every generated document of docs/ by file name, from one build of the template."""
    template = TemplateFacts(template_for(spec))
    return {name: render(spec, template) for name, (render, _) in DOCUMENTS.items()}


def render_root(spec: Spec) -> dict[str, str]:
    """The generated documents of the repository's root (SECURITY.md) by file name."""
    return {name: render(spec) for name, (render, _) in ROOT_DOCUMENTS.items()}


def _flat_links(text: str) -> str:
    """Links between the repository's docs/ and its root, for one folder (the bundle's)."""
    return re.sub(r"\]\((?:\.\./|docs/)([\w.-]+\.md(?:#[\w-]*)?)\)", r"](\1)", text)


def _title(name: str, text: str) -> str:
    """The page's first level-1 heading, else its file name."""
    heading = next((line for line in text.splitlines() if line.startswith("# ")), None)
    return heading[2:] if heading else name


def index(spec: Spec, pages: dict[str, str]) -> str:
    """docs/index.md of the bundle: every page with its title and what it says."""
    described = {
        **{n: d for n, (_, d) in DOCUMENTS.items()},
        **{n: d for n, (_, d) in ROOT_DOCUMENTS.items()},
        **{p.name: d for p, d in HAND_WRITTEN.items()},
    }
    rows = [
        (f"[{_title(name, text)}]({name})", described[name])
        for name, text in pages.items()
        if name in described
    ]
    return "\n".join(
        [
            header("generator/documents/pages.py", "the documents it lists"),
            f"# {spec.name} {spec.version}: documents",
            "",
            "Each page is here as HTML and as Markdown (same name, `.md`). Generated from the "
            "code, the spec and the template of this release, except the changelog.",
            "",
            *table(("Document", "What it says"), rows),
        ]
    )


def bundle(spec: Spec) -> dict[str, bytes]:
    """dist/<version>/docs/: each document as Markdown and HTML, SECURITY.md, CHANGELOG.md and
    an index page, with links between them that work in that one folder."""
    pages = {
        **render_all(spec),
        **render_root(spec),
        **{p.name: p.read_text() for p in HAND_WRITTEN},
    }
    pages = {name: _flat_links(text) for name, text in pages.items()}
    pages["index.md"] = index(spec, pages)
    files: dict[str, bytes] = {}
    for name, text in pages.items():
        files[f"docs/{name}"] = text.encode()
        files[f"docs/{Path(name).stem}.html"] = to_html(_title(name, text), text).encode()
    return files


def _targets(spec: Spec, docs: Path, root: Path) -> dict[Path, str]:
    return {
        **{docs / name: text for name, text in render_all(spec).items()},
        **{root / name: text for name, text in render_root(spec).items()},
    }


def stale(spec: Spec, folder: Path = DOCS, root: Path = ROOT) -> list[str]:
    """Paths (relative to root) of the generated documents that differ from what the code
    generates now."""
    return [
        str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
        for path, text in _targets(spec, folder, root).items()
        if not path.exists() or path.read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.documents", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when docs/ is stale")
    args = parser.parse_args(argv)
    spec = load()
    if args.check:
        names = stale(spec)
        for name in names:
            print(f"{name} is stale: run `make docs`", file=sys.stderr)
        return 1 if names else 0
    DOCS.mkdir(exist_ok=True)
    for path, text in _targets(spec, DOCS, ROOT).items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0
