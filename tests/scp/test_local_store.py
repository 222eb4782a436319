"""The folder store's durability order, observed: a file is fsynced before it is renamed into
place, and its folder after, so what a C-STORE success acknowledged survives a power cut."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scp.storage import StorageError
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
