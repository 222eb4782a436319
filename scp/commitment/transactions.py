"""The durable record of commitment transactions in a folder store, and who may send a report.

`{root}/commitment/{TransactionUID}.json` (a repeated request with other instances or another
calling AE: `{TransactionUID}.dup-{digest}.json`), written with fsync of the file and its folder
before the N-ACTION response. Several SCP processes may share the folder (workers of one task,
or two SCPs on one host); exactly one sends each report:
- `{name}.lock`, an exclusive flock, is the lease: whoever holds it may deliver, re-reads the
  record first and marks it REPORTED before letting go;
- `{name}.assoc`, an flock held by the process whose association asked, for as long as that
  association is open: the others leave the transaction to it (the report goes on that
  association). The kernel drops both locks when a process dies, so a crash hands over.

A transaction no longer pending (REPORTED, UNDELIVERABLE) moves to `{root}/commitment/done/`, out
of the reporter's pass over the pending ones, and is removed there `retention_days` after it was
saved so (COMMITMENT_RETENTION_DAYS): an edge SCP's folder does not grow, nor its passes slow,
with every study ever committed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from scp.commitment.request import CommitmentRequest, Reference
from scp.contracts import PENDING
from scp.storage import StorageError
from scp.storage.local import fsync_path

FOLDER = "commitment"
DONE = "done"  # below FOLDER: transactions no longer pending
SWEEP_EVERY = 3600.0  # seconds between removals of expired transactions from DONE


@dataclass(frozen=True)
class Transaction:
    """One storage-commitment request and where its report stands."""

    transaction_uid: str
    calling_ae: str
    called_ae: str
    references: tuple[Reference, ...]
    received_at: float
    deadline: float  # report with what is known from then on
    give_up_at: float  # undeliverable from then on
    name: str = ""  # record name in the store
    duplicate: bool = False
    state: str = PENDING
    attempts: int = 0
    next_attempt: float = 0.0
    last_error: str = ""
    event_type: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # SOP Instance UID -> reason
    reported_at: float = 0.0
    held_by: str = ""  # the process whose association asked, while it is open (job table)
    held_until: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The record, camelCase as the job table's attributes are."""
        doc = {_camel(k): v for k, v in asdict(self).items()}
        doc["references"] = [[r.sop_class_uid, r.sop_instance_uid] for r in self.references]
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Transaction:
        values = {_snake(k): v for k, v in doc.items()}
        values["references"] = tuple(Reference(c, i) for c, i in values["references"])
        return cls(**values)

    def summary(self) -> dict[str, Any]:
        """What an operator sees (storescp-lookup, the log): UIDs, AE titles, counts, state."""
        return {
            "transactionUID": self.transaction_uid,
            "callingAETitle": self.calling_ae,
            "state": self.state,
            "instances": len(self.references),
            "failed": len(self.failures),
            "eventType": self.event_type or None,
            "attempts": self.attempts,
            "lastError": self.last_error or None,
            "duplicate": self.duplicate,
        }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(_CAMEL.get(part, part.title()) for part in rest)


def _snake(name: str) -> str:
    return re.sub(r"(UID|AETitle|[A-Z])", lambda m: "_" + _SNAKE.get(m[1], m[1].lower()), name)


_CAMEL = {"uid": "UID", "ae": "AETitle"}
_SNAKE = {v: k for k, v in _CAMEL.items()}


def new_transaction(
    request: CommitmentRequest,
    calling_ae: str,
    called_ae: str,
    timeout: float,
    window: float,
    now: float | None = None,
) -> Transaction:
    now = time.time() if now is None else now
    return Transaction(
        request.transaction_uid,
        calling_ae,
        called_ae,
        request.references,
        received_at=now,
        deadline=now + timeout,
        give_up_at=now + timeout + window,
    )


class Held(Exception):
    """Another association (in this or another process) holds the transaction."""


class TransactionStore(Protocol):
    """Where transactions are recorded (a folder, or the job table), and the two locks: the
    lease (one sender) and the hold (the asking association is still open)."""

    def record(self, tx: Transaction, digest: str) -> Transaction: ...

    def save(self, tx: Transaction) -> None: ...

    def get(self, transaction_uid: str) -> Transaction | None: ...

    def pending(self) -> list[Transaction]: ...

    def lease(self, tx: Transaction) -> contextlib.AbstractContextManager[Transaction | None]: ...

    def hold(self, tx: Transaction) -> Any: ...

    def refresh(self, handle: Any) -> None: ...

    def release(self, handle: Any) -> None: ...

    def held_elsewhere(self, tx: Transaction) -> bool: ...


class FolderTransactions:
    """Transactions as JSON files in `{root}/commitment/` (pending) and its `done/` (final),
    flock leases beside the pending ones."""

    def __init__(self, root: str, retention_days: int = 365) -> None:
        self.folder = os.path.join(os.path.abspath(root), FOLDER)
        self.done = os.path.join(self.folder, DONE)
        self.retention = retention_days * 86400.0
        self._next_sweep = 0.0

    def __str__(self) -> str:
        return self.folder

    def _path(self, name: str, suffix: str = ".json", final: bool = False) -> str:
        return os.path.join(self.done if final else self.folder, name + suffix)

    def record(self, tx: Transaction, digest: str) -> Transaction:
        """Write tx durably unless it repeats a recorded request (then return that one). A
        request reusing a recorded Transaction UID for anything else is recorded as a
        duplicate, whose report fails every instance (0x0131)."""
        try:
            os.makedirs(self.done, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {self.done}: {exc.strerror}") from None
        first = self.get(tx.transaction_uid)
        if first is None:
            tx = replace(tx, name=tx.transaction_uid)
        elif first.calling_ae == tx.calling_ae and set(first.references) == set(tx.references):
            return first
        else:
            name = f"{tx.transaction_uid}.dup-{digest}"
            found = self._find(name)
            if found is not None:
                return found
            tx = replace(tx, name=name, duplicate=True)
        self.save(tx)
        return tx

    def save(self, tx: Transaction) -> None:
        """Replace tx's record atomically, in the pending folder or (final) in done/; returns
        once the file and its folder are synced, then drops the copy in the other folder."""
        final = tx.state != PENDING
        folder = self.done if final else self.folder
        try:
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "wb") as fp:
                fp.write(json.dumps(tx.to_json(), indent=1).encode())
                fp.flush()
                os.fsync(fp.fileno())
            os.replace(tmp, self._path(tx.name, final=final))
            fsync_path(folder)  # the rename survives a crash
        except OSError as exc:
            raise StorageError(f"cannot record commitment {tx.name}: {exc.strerror}") from None
        # A process that listed it as pending finds no record under its lease (lease()).
        leftovers = [self._path(tx.name, final=not final)]
        if final:
            leftovers += [self._path(tx.name, suffix) for suffix in (".lock", ".assoc")]
        for path in leftovers:
            with contextlib.suppress(OSError):
                os.remove(path)

    def _read(self, name: str, final: bool = False) -> Transaction:
        with open(self._path(name, final=final)) as fp:
            return Transaction.from_json(json.load(fp))

    def _find(self, name: str) -> Transaction | None:
        """The record, pending or final; None when there is none."""
        for final in (False, True):
            with contextlib.suppress(FileNotFoundError):
                return self._read(name, final)
        return None

    def get(self, transaction_uid: str) -> Transaction | None:
        return self._find(transaction_uid)

    def pending(self) -> list[Transaction]:
        """The pending transactions (only they are read); expired final ones are removed first,
        at most every SWEEP_EVERY seconds."""
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_EVERY
            self._remove_expired()
        return [tx for tx in self._read_all(final=False) if tx.state == PENDING]

    def all(self) -> list[Transaction]:
        """Every transaction recorded, pending then final (operators, tests)."""
        return self._read_all(final=False) + self._read_all(final=True)

    def _read_all(self, final: bool) -> list[Transaction]:
        folder = self.done if final else self.folder
        try:
            names = sorted(n[:-5] for n in os.listdir(folder) if n.endswith(".json"))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            with contextlib.suppress(FileNotFoundError, ValueError):
                out.append(self._read(name, final))
        return out

    def _remove_expired(self) -> None:
        """Final transactions saved more than retention seconds ago (their file's mtime), and
        lock files an hour old whose transaction is no longer pending (a process that listed
        it just before it became final may have created its lock again)."""
        now = time.time()
        for folder, expired in (
            (self.done, lambda name, age: name.endswith(".json") and age > self.retention),
            (self.folder, lambda name, age: self._orphan_lock(name) and age > SWEEP_EVERY),
        ):
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(folder):
                    with contextlib.suppress(OSError):
                        if expired(entry.name, now - entry.stat().st_mtime):
                            os.remove(entry.path)

    def _orphan_lock(self, name: str) -> bool:
        stem, suffix = os.path.splitext(name)
        return suffix in (".lock", ".assoc") and not os.path.exists(self._path(stem))

    @contextlib.contextmanager
    def lease(self, tx: Transaction) -> Iterator[Transaction | None]:
        """tx as recorded now if this process got the lease and it is still pending; else None."""
        fd = os.open(self._path(tx.name, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            try:
                current = self._read(tx.name)
            except FileNotFoundError:  # final since it was listed: moved to done/
                yield None
                return
            yield current if current.state == PENDING else None
        finally:
            os.close(fd)

    def hold(self, tx: Transaction) -> int:
        """Mark tx as asked on an open association of this process (an flock the kernel drops
        with the process); raises Held if another one holds it."""
        fd = os.open(self._path(tx.name, ".assoc"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Held(tx.name) from None
        return fd

    def refresh(self, handle: int) -> None:
        pass  # an flock lasts as long as its file descriptor

    def release(self, handle: int) -> None:
        os.close(handle)

    def held_elsewhere(self, tx: Transaction) -> bool:
        """Whether another process still holds the association that asked for tx."""
        try:
            fd = os.open(self._path(tx.name, ".assoc"), os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
