"""`make snapshot`: regenerate the template snapshot and the README's generated tables.

The snapshot is built with the placeholder state machine under tests/generator/fixtures, so it
tracks the generator alone; the real definition is checked by the release gates.
"""

from __future__ import annotations

from generator.documents import readme as docs
from generator.release.bundle import render_template
from generator.spec import ROOT, load

FIXTURES = ROOT / "tests" / "generator" / "fixtures"
PLACEHOLDER_DEFINITION = FIXTURES / "import_workflow.asl.json"
SNAPSHOT = ROOT / "tests" / "generator" / "snapshots" / "template.yaml"
README = ROOT / "README.md"


def snapshot_text() -> str:
    return render_template(load(definition_path=PLACEHOLDER_DEFINITION))[0]


def main() -> None:
    SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    SNAPSHOT.write_text(snapshot_text())
    README.write_text(
        docs.update_readme(README.read_text(), load(definition_path=PLACEHOLDER_DEFINITION))
    )
    print(f"wrote {SNAPSHOT.relative_to(ROOT)} and the tables in {README.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
