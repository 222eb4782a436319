"""An in-memory Store for in-process tests of the SCP's storing and batch closing; it fails
(StorageError) on demand, or blocks until released, to reach the durability branches."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from scp.storage import StorageError


class MemoryStore:
    """Objects in a dict. `fail(operation, prefix, times)` makes the next calls of put_file,
    put_json or delete on keys starting with prefix raise StorageError; `block()` makes every
    call wait until `unblock()`."""

    def __init__(self, temp_dir: Path) -> None:
        self.temp_dir = str(temp_dir)
        self.prefix = ""
        self.objects: dict[str, bytes] = {}
        self.calls: list[tuple[str, str]] = []
        self._failures: list[list[Any]] = []
        self._open = threading.Event()
        self._open.set()

    def fail(self, operation: str, prefix: str = "", times: int = 1) -> None:
        self._failures.append([operation, prefix, times])

    def block(self) -> None:
        self._open.clear()

    def unblock(self) -> None:
        self._open.set()

    def _call(self, operation: str, key: str) -> None:
        self._open.wait()
        self.calls.append((operation, key))
        for failure in self._failures:
            if failure[0] == operation and key.startswith(failure[1]) and failure[2] > 0:
                failure[2] -= 1
                raise StorageError(f"{operation} {key}: failing on demand")

    def prepare(self) -> None:
        pass

    def connect(self) -> None:
        pass

    def put_file(self, key: str, path: str, size: int) -> None:
        self._call("put_file", key)
        self.objects[key] = Path(path).read_bytes()

    def put_json(self, key: str, document: dict[str, Any]) -> None:
        self._call("put_json", key)
        self.objects[key] = json.dumps(document).encode()

    def delete(self, key: str) -> None:
        self._call("delete", key)
        self.objects.pop(key, None)

    def document(self, key: str) -> dict[str, Any]:
        return json.loads(self.objects[key])
