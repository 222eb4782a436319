"""Where received instances go: one interface, a local-folder and an S3 implementation.

Keys are relative to the store's prefix and follow docs/CONTRACTS.md:
incoming/{batchId}/{Study}/{Series}/{SOP}.dcm, open/{batchId}.json, batches/{batchId}.json.
"""

from __future__ import annotations

from typing import Any, Protocol

from scp import ScpError


class StorageError(ScpError):
    """Storing failed; nothing was acknowledged and nothing half-written is visible."""


class Store(Protocol):
    """A durable object store. Every method returns only once its write is durable."""

    @property
    def prefix(self) -> str:
        """Key prefix in the bucket ('' or ending in '/'), for manifests' inputPrefix."""

    @property
    def temp_dir(self) -> str:
        """Folder where instances being received are written before put_file."""

    def prepare(self) -> None:
        """Create what the store needs and remove leftovers of a previous crash."""

    def put_file(self, key: str, path: str, size: int) -> None:
        """Store the file at path under key; the file may be moved or consumed."""

    def put_json(self, key: str, document: dict[str, Any]) -> None:
        """Store a small JSON document under key."""

    def delete(self, key: str) -> None:
        """Remove key if it exists."""


def open_store(
    target: str,
    *,
    endpoint_url: str = "",
    temp_dir: str = "",
    multipart_threshold: int = 64 * 2**20,
) -> Store:
    """A Store for a folder path or an s3://bucket/prefix URI."""
    if target.startswith("s3://"):
        from scp.storage.s3 import S3Store

        bucket, _, prefix = target[5:].partition("/")
        return S3Store(
            bucket,
            prefix,
            endpoint_url=endpoint_url,
            temp_dir=temp_dir,
            multipart_threshold=multipart_threshold,
        )
    from scp.storage.local import LocalStore

    return LocalStore(target, temp_dir=temp_dir)
