"""What the edge SCP holds that S3 has not acknowledged yet: files, bytes, age of the oldest."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from scp.contracts import INCOMING_PREFIX
from scp.edge import FORWARDED_PREFIX, names_in


@dataclass(frozen=True)
class Backlog:
    """Instances not yet forwarded (open batches included) at one moment."""

    files: int = 0
    bytes: int = 0
    oldest: float | None = None  # epoch seconds of the oldest file's modification

    def age(self, now: float) -> float:
        """Seconds since the oldest instance not forwarded arrived; 0 when there is none."""
        return max(0.0, now - self.oldest) if self.oldest is not None else 0.0


def scan_backlog(root: str) -> Backlog:
    """Walk {root}/incoming/, skipping batches already forwarded (kept as a local cache)."""
    forwarded = {
        name.removesuffix(".json") for name in names_in(os.path.join(root, FORWARDED_PREFIX))
    }
    files = size = 0
    oldest: float | None = None
    for batch_id in names_in(os.path.join(root, INCOMING_PREFIX)):
        if batch_id in forwarded:
            continue
        for folder, _, names in os.walk(os.path.join(root, INCOMING_PREFIX, batch_id)):
            for name in names:
                with contextlib.suppress(FileNotFoundError):  # forwarded meanwhile
                    stat = os.stat(os.path.join(folder, name))
                    files += 1
                    size += stat.st_size
                    oldest = stat.st_mtime if oldest is None else min(oldest, stat.st_mtime)
    return Backlog(files, size, oldest)
