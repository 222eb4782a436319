"""The edge host's files in the release (edge/): the compose file, the systemd units and the
settings example from deploy/edge/, naming this release's image, and docs/edge.md."""

from __future__ import annotations

from pathlib import Path

from generator.spec import Spec

PLACEHOLDER = "@IMAGE@"


def files(spec: Spec, root: Path) -> dict[str, bytes]:
    """edge/{name} for every file of deploy/edge/, the image filled in; docs/edge.md."""
    out = {
        f"edge/{path.name}": path.read_text().replace(PLACEHOLDER, spec.image_uri).encode()
        for path in sorted((root / "deploy" / "edge").iterdir())
    }
    out["docs/edge.md"] = (root / "docs" / "edge.md").read_bytes()
    return out
