"""A cache outside the repository for slow, content-keyed build inputs (wheels, base rootfs).

Only an optimisation: every entry is checked (hash) or keyed by what made it, and an empty or
missing cache only makes the build slower. STORESCP_CACHE moves it.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """$STORESCP_CACHE or ~/.cache/storescp-healthimaging, joined with parts (created)."""
    base = os.environ.get("STORESCP_CACHE") or Path.home() / ".cache" / "storescp-healthimaging"
    path = Path(base, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
