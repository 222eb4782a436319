"""Local-folder store: atomic rename into place, fsync of the file and its folder."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from typing import Any

from scp.storage import OwnedFolder, StorageError, check_free_space

PROBE = b"storescp-healthimaging storage check\n"
# The storage check's file (+ pid) in the SCP's own folder, there for an instant.
PROBE_PREFIX = ".storage-check-"


class LocalStore:
    """Instances under a folder, laid out like the S3 bucket. The default for laptops."""

    def __init__(self, root: str, temp_dir: str = "", port: int = 0) -> None:
        self.root = os.path.abspath(root)
        # Staging is our own folder inside the root (same filesystem, so a rename puts a file in
        # place atomically), outside incoming/, emptied at start-up. Instances are received
        # there too unless TEMP_DIR says otherwise; then they are copied through staging.
        self._owned = [OwnedFolder(self.root, port)]
        if temp_dir:
            self._owned.append(OwnedFolder(temp_dir, port))
        self._staging = self._owned[0].path
        self._temp_dir = self._owned[-1].path

    @property
    def prefix(self) -> str:
        return ""

    @property
    def temp_dir(self) -> str:
        return self._temp_dir

    def __str__(self) -> str:
        return self.root

    def prepare(self) -> None:
        for folder in self._owned:
            folder.claim()

    def connect(self) -> None:
        pass

    def check(self, min_free_disk: int) -> None:
        for folder in dict.fromkeys([self.root, self._temp_dir]):
            check_free_space(folder, min_free_disk)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"{self.root!r} is not writable by this process")
        # A real write through the path instances take: our own folder, same file system.
        probe = os.path.join(self._staging, f"{PROBE_PREFIX}{os.getpid()}")
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, PROBE)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StorageError(f"cannot write in {self.root!r}: {exc.strerror}") from None
        finally:
            with contextlib.suppress(OSError):
                os.remove(probe)

    def put_file(self, key: str, path: str, size: int) -> None:
        dest = self._path(key)
        try:
            fsync_path(path)
            self._makedirs(os.path.dirname(dest))
            try:
                os.replace(path, dest)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                self._copy_into_place(path, dest)
            fsync_path(os.path.dirname(dest))
        except OSError as exc:
            raise StorageError(f"cannot store {key}: {exc.strerror}") from None

    def put_json(self, key: str, document: dict[str, Any]) -> None:
        dest, tmp = self._path(key), ""
        try:
            self._makedirs(os.path.dirname(dest))
            fd, tmp = tempfile.mkstemp(dir=self._staging, suffix=".json")
            try:
                with os.fdopen(fd, "wb") as fp:
                    fp.write(json.dumps(document, indent=1).encode())
                    fp.flush()
                    os.fsync(fp.fileno())
                os.replace(tmp, dest)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.remove(tmp)  # a full disk leaves no half-written document behind
                raise
            fsync_path(os.path.dirname(dest))
        except OSError as exc:
            if tmp:  # a failed write leaves nothing in staging (each retry would add a file)
                with contextlib.suppress(OSError):
                    os.remove(tmp)
            raise StorageError(f"cannot store {key}: {exc.strerror}") from None

    def delete(self, key: str) -> None:
        try:
            os.remove(self._path(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(f"cannot delete {key}: {exc.strerror}") from None

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))

    def _makedirs(self, folder: str) -> None:
        """Create folder and fsync the parents of what was created, so entries survive a crash."""
        missing = []
        while not os.path.isdir(folder):
            missing.append(folder)
            folder = os.path.dirname(folder)
        for created in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(created)
            fsync_path(os.path.dirname(created))

    def _copy_into_place(self, path: str, dest: str) -> None:
        fd, tmp = tempfile.mkstemp(dir=self._staging, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, open(path, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise


def fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
