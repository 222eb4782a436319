"""Edge mode: the SCP in the hospital acknowledges after an fsync on the local disk (the folder
store) and a forwarder uploads each closed batch to the stack's DICOM bucket with the keys the
cloud SCP writes: instances first, the manifest last, so the import workflow starts only on a
complete batch.

Local layout below STORAGE (the folder store's, plus one folder of the forwarder's):
  incoming/{batchId}/...dcm, open/{batchId}.json, batches/{batchId}.json  (the folder store)
  forwarded/{batchId}.json  the manifest once S3 acknowledged it; its instances are removed
                            then, or after EDGE_KEEP_DAYS
  unforwardable/{batchId}.json  a manifest that cannot be forwarded (an instance file is
                                missing or it does not parse); kept, counted in the backlog
"""

from __future__ import annotations

import os

FORWARDED_PREFIX = "forwarded/"
UNFORWARDABLE_PREFIX = "unforwardable/"


def names_in(folder: str) -> list[str]:
    """The entries of folder; none when it does not exist (yet)."""
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []
