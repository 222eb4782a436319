"""Where received instances go: one interface, a local-folder and an S3 implementation.

Keys are relative to the store's prefix and follow docs/CONTRACTS.md:
incoming/{batchId}/{Study}/{Series}/{SOP}.dcm, open/{batchId}.json, batches/{batchId}.json.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
from typing import Any, Protocol

from scp import ScpError
from scp.contracts import S3_MULTIPART_THRESHOLD
from scp.settings import format_size

OWNED_SUBDIR = ".storescp-tmp"  # the only folders the SCP ever empties, inside one the user names
STALE_NAME = re.compile(re.escape(OWNED_SUBDIR) + r"(-[0-9]{1,5})?")
LOCK_NAME = ".lock"
LOG = logging.getLogger("scp.storage")


def owned_name(port: int = 0) -> str:
    """`.storescp-tmp-{port}`: SCPs on one host (other ports) never share a temporary folder."""
    return f"{OWNED_SUBDIR}-{port}" if port else OWNED_SUBDIR


class StorageError(ScpError):
    """Storing failed; nothing was acknowledged and nothing half-written is visible."""


class OwnedFolder:
    """`{parent}/.storescp-tmp-{port}`: created, locked and emptied by this SCP alone. The lock
    (held by the supervisor, inherited by its workers) stops another SCP from emptying it."""

    def __init__(self, parent: str, port: int = 0) -> None:
        self.path = os.path.join(os.path.abspath(parent), owned_name(port))
        self._lock_fd: int | None = None

    def claim(self) -> None:
        """Create the folder, take its lock, remove what a previous run left in it, and remove
        the folders of SCPs that died on other ports (their lock is free)."""
        for _ in range(3):  # a dead SCP's folder being removed by another SCP's start-up
            fd = self._open_lock()
            if fd is None:
                continue
            lock_exclusively(
                fd,
                f"{self.path!r} is in use by another SCP; give each SCP its own TEMP_DIR/STORAGE",
            )
            if _still_linked(fd, self._lock_path):
                break
            os.close(fd)
        else:
            raise StorageError(f"cannot use folder {self.path!r}: it keeps being removed")
        self._lock_fd = fd
        _empty(self.path)
        remove_stale_folders(os.path.dirname(self.path))

    @property
    def _lock_path(self) -> str:
        return os.path.join(self.path, LOCK_NAME)

    def _open_lock(self) -> int | None:
        """The lock file, opened; None when the folder vanished meanwhile."""
        try:
            os.makedirs(self.path, exist_ok=True)
            return os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot use folder {self.path!r}: {exc.strerror}") from None


def lock_exclusively(fd: int, busy: str) -> None:
    """Take an exclusive lock on fd, held until the process ends; StorageError(busy), with fd
    closed, when another process holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StorageError(busy) from None


def _still_linked(fd: int, path: str) -> bool:
    """True when the locked file is still the one at path (not removed meanwhile)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _empty(folder: str) -> None:
    """Remove everything in folder but its lock."""
    for entry in os.scandir(folder):
        if entry.name == ".lock":
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.remove(entry.path)


def check_free_space(folder: str, min_free_disk: int) -> None:
    """StorageError when `folder`'s file system has less than `min_free_disk` bytes free."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise StorageError(f"cannot read the free space of {folder!r}: {exc.strerror}") from None
    if free < min_free_disk:
        raise StorageError(
            f"{folder!r} has {free / 10**9:.1f} GB free, below MIN_FREE_DISK "
            f"({format_size(min_free_disk)}); free space there or lower MIN_FREE_DISK"
        )


def remove_stale_folders(parent: str) -> list[str]:
    """Remove `{parent}/.storescp-tmp[-{port}]` folders whose lock no live process holds (an SCP
    that died, on any port); returns their paths. A live SCP's folder is left alone."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(parent):
            if not (STALE_NAME.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)):
                continue
            try:
                fd = os.open(os.path.join(entry.path, LOCK_NAME), os.O_RDWR)
            except FileNotFoundError:
                fd = None  # died before it took its lock
            except OSError:
                continue
            try:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(entry.path, ignore_errors=True)  # lock held while removing
                removed.append(entry.path)
            except BlockingIOError:
                pass  # a live SCP's
            finally:
                if fd is not None:
                    os.close(fd)
    if removed:
        LOG.info(
            "removed temporary folders of SCPs that are no longer running",
            extra={"fields": {"event": "stale-temp-removed", "folders": removed}},
        )
    return removed


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

    def connect(self) -> None:
        """Make this process's clients (each serving process, before it listens, so the first
        instance or a health check never waits on loading an SDK)."""

    def check(self, min_free_disk: int) -> None:
        """Prove the store takes an object now, leaving nothing behind; StorageError says why
        not (its folders below `min_free_disk` free bytes, not writable, no credentials...)."""

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
    multipart_threshold: int = S3_MULTIPART_THRESHOLD,
    port: int = 0,
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
            port=port,
        )
    from scp.storage.local import LocalStore

    return LocalStore(target, temp_dir=temp_dir, port=port)
