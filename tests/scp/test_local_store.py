"""The folder store: its durability order observed (a file is fsynced before it is renamed into
place, and its folder after, so what a C-STORE success acknowledged survives a power cut), its
own folders, its errors, and the copy when TEMP_DIR is on another file system."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from scp.storage import OWNED_SUBDIR, StorageError
from scp.storage.local import LocalStore


class Journal:
    """Records fsync (of the path behind the descriptor) and rename calls, then makes them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, str]] = []
        fsync, replace = os.fsync, os.replace

        def journaled_fsync(fd: int) -> None:
            self.events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
            fsync(fd)

        def journaled_replace(src: str, dst: str) -> None:
            self.events.append(("rename", f"{src} -> {dst}"))
            replace(src, dst)

        monkeypatch.setattr(os, "fsync", journaled_fsync)
        monkeypatch.setattr(os, "replace", journaled_replace)

    def index(self, event: tuple[str, str]) -> int:
        assert event in self.events, f"{event} never happened: {self.events}"
        return self.events.index(event)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    store = LocalStore(str(tmp_path / "store"))
    store.prepare()
    return store


def test_an_instance_is_fsynced_before_its_rename_and_its_folder_after(store, monkeypatch):
    received = Path(store.temp_dir) / "x.part"
    received.write_bytes(b"instance bytes")
    dest = os.path.join(store.root, "incoming", "b", "s", "r", "x.dcm")
    journal = Journal(monkeypatch)

    store.put_file("incoming/b/s/r/x.dcm", str(received), 14)

    rename = journal.index(("rename", f"{received} -> {dest}"))
    assert journal.index(("fsync", str(received))) < rename
    assert journal.index(("fsync", os.path.dirname(dest))) > rename
    # Each folder created on the way is made durable in its parent.
    for created in ("incoming", "incoming/b", "incoming/b/s", "incoming/b/s/r"):
        parent = os.path.dirname(os.path.join(store.root, created))
        assert ("fsync", parent) in journal.events, created
    assert Path(dest).read_bytes() == b"instance bytes"


def test_a_manifest_is_fsynced_before_its_rename_and_its_folder_after(store, monkeypatch):
    journal = Journal(monkeypatch)

    store.put_json("batches/b.json", {"batchId": "b"})

    dest = os.path.join(store.root, "batches", "b.json")
    (rename,) = [i for i, (kind, what) in enumerate(journal.events) if kind == "rename"]
    staged = journal.events[rename][1].split(" -> ")[0]
    assert journal.events[rename][1] == f"{staged} -> {dest}"
    assert journal.index(("fsync", staged)) < rename
    assert journal.index(("fsync", os.path.dirname(dest))) > rename


def test_a_store_that_cannot_fsync_reports_a_storage_error_and_renames_nothing(store, monkeypatch):
    received = Path(store.temp_dir) / "x.part"
    received.write_bytes(b"instance bytes")
    journal = Journal(monkeypatch)

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StorageError, match=r"cannot store incoming/b/x\.dcm: Input/output error"):
        store.put_file("incoming/b/x.dcm", str(received), 14)
    assert not [e for e in journal.events if e[0] == "rename"]
    assert not (Path(store.root) / "incoming" / "b" / "x.dcm").exists()


def test_staging_and_the_temporary_folder_are_folders_the_store_owns(tmp_path):
    root, temp = tmp_path / "store", tmp_path / "temp"
    alone = LocalStore(str(root))
    assert (alone.prefix, str(alone), alone.temp_dir) == ("", str(root), str(root / OWNED_SUBDIR))
    with_temp = LocalStore(str(root), temp_dir=str(temp), port=104)
    assert with_temp.temp_dir == str(temp / f"{OWNED_SUBDIR}-104")


def test_a_manifest_that_cannot_be_written_is_a_storage_error(store):
    Path(store.root, "batches").write_bytes(b"a file where the folder goes")
    with pytest.raises(StorageError, match=r"cannot store batches/b\.json"):
        store.put_json("batches/b.json", {"batchId": "b"})
    assert os.listdir(store.temp_dir) == [".lock"]


def test_deleting_a_missing_object_is_not_an_error_but_a_failed_delete_is(store):
    store.delete("open/never-written.json")
    Path(store.root, "open", "folder.json").mkdir(parents=True)
    with pytest.raises(StorageError, match=r"cannot delete open/folder\.json"):
        store.delete("open/folder.json")


@pytest.fixture
def other_file_system(tmp_path: Path) -> Iterator[Path]:
    """A TEMP_DIR on another file system than the store (tmpfs at /dev/shm)."""
    temp = Path("/dev/shm") / f"scp-test-{os.getpid()}"
    temp.mkdir(exist_ok=True)
    try:
        if os.stat(temp).st_dev == os.stat(tmp_path).st_dev:
            pytest.skip("/dev/shm is on the same file system as the test folder")
        yield temp
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def test_the_folder_store_copies_across_file_systems(tmp_path, other_file_system):
    """The instance is copied through staging, fsynced and renamed into place; staging keeps
    nothing, and a file that is gone, or cannot be read, is a StorageError."""
    store = LocalStore(str(tmp_path / "store"), temp_dir=str(other_file_system))
    store.prepare()
    received = Path(store.temp_dir) / "x.part"
    received.write_bytes(b"instance bytes")
    store.put_file("incoming/b/s/r/x.dcm", str(received), 14)
    assert (tmp_path / "store/incoming/b/s/r/x.dcm").read_bytes() == b"instance bytes"
    with pytest.raises(StorageError):
        store.put_file("incoming/b/s/r/y.dcm", str(Path(store.temp_dir) / "gone"), 1)
    unreadable = Path(store.temp_dir) / "z.part"
    unreadable.mkdir()  # renamed across devices it must be copied, and reading it fails
    with pytest.raises(StorageError, match=r"cannot store incoming/b/s/r/z\.dcm"):
        store.put_file("incoming/b/s/r/z.dcm", str(unreadable), 1)
    assert os.listdir(tmp_path / "store" / OWNED_SUBDIR) == [".lock"], "a partial copy stayed"
    assert not (tmp_path / "store/incoming/b/s/r/z.dcm").exists()
