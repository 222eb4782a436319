"""Where a referenced instance is: the folder store's files (stored = committed: a folder has no
import), or the job table (scp/commitment/job_table.py)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Protocol

from pydicom.filereader import read_file_meta_info

from scp.commitment.outcome import COMMITTED, Found
from scp.contracts import INCOMING_PREFIX


class Locator(Protocol):
    def find(self, sop_instance_uids: Iterable[str], complete: bool = True) -> dict[str, Found]:
        """The instances the store knows, by SOP Instance UID; unknown ones are left out.
        Unless `complete`, it may stop at the first instance without a final state (the report
        waits for it anyway)."""


class FolderInstances:
    """Instances under `{root}/incoming/{batch}/{study}/{series}/{sop}.dcm`. The paths seen are
    kept, so a poll re-walks only when an instance is not known yet."""

    def __init__(self, root: str) -> None:
        self.incoming = os.path.join(os.path.abspath(root), INCOMING_PREFIX)
        self._paths: dict[str, str] = {}

    def _walk(self) -> None:
        for folder, _, files in os.walk(self.incoming):
            for name in files:
                if name.endswith(".dcm"):
                    self._paths[name[:-4]] = os.path.join(folder, name)

    def find(self, sop_instance_uids: Iterable[str], complete: bool = True) -> dict[str, Found]:
        wanted = list(sop_instance_uids)
        if any(uid not in self._paths for uid in wanted):
            self._walk()
        out = {}
        for uid in wanted:
            path = self._paths.get(uid)
            if path is None:
                continue
            try:
                meta = read_file_meta_info(path)
            except (OSError, ValueError):
                self._paths.pop(uid, None)
                continue
            out[uid] = Found(str(meta.get("MediaStorageSOPClassUID", "")), COMMITTED)
        return out
