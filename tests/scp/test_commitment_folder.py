"""A folder store's commitment transactions: pending ones in `commitment/`, final ones in
`commitment/done/` (out of the reporter's passes), removed after COMMITMENT_RETENTION_DAYS."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from scp.commitment.request import CommitmentRequest, Reference
from scp.commitment.transactions import FolderTransactions, Transaction, new_transaction

CT = "1.2.840.10008.5.1.4.1.1.2"


def recorded(store: FolderTransactions, uid: str, calling: str = "CT1") -> Transaction:
    request = CommitmentRequest(uid, (Reference(CT, uid + ".1"),))
    tx = new_transaction(request, calling, "STORESCP", 60.0, 60.0)
    return store.record(tx, request.digest(calling))


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_final_transaction_leaves_the_pending_folder_and_its_locks(tmp_path):
    store = FolderTransactions(str(tmp_path))
    tx = recorded(store, "1.2.3")
    with store.lease(tx) as leased:
        assert leased is not None
        store.save(replace(leased, state="REPORTED"))
    assert files(tmp_path) == ["commitment/done/1.2.3.json"]
    assert store.pending() == []
    assert [t.state for t in store.all()] == ["REPORTED"]
    assert store.get("1.2.3").state == "REPORTED"
    with store.lease(tx) as late:  # a process that listed it before: nothing to send
        assert late is None


def test_a_repeated_request_finds_the_final_one_and_reports_it_again(tmp_path):
    store = FolderTransactions(str(tmp_path))
    tx = recorded(store, "1.2.3")
    store.save(replace(tx, state="REPORTED"))
    again = recorded(store, "1.2.3")
    assert again.state == "REPORTED" and not again.duplicate
    store.save(replace(again, state="PENDING"))
    assert [t.transaction_uid for t in store.pending()] == ["1.2.3"]
    assert files(tmp_path) == ["commitment/1.2.3.json"]
    other = recorded(store, "1.2.3", calling="CT2")  # the same UID from another AE
    assert other.duplicate and recorded(store, "1.2.3", calling="CT2").name == other.name


def test_final_transactions_expire_after_the_retention_and_pending_ones_never(tmp_path):
    store = FolderTransactions(str(tmp_path), retention_days=1)
    old, recent = recorded(store, "1.2.1"), recorded(store, "1.2.2")
    waiting = recorded(store, "1.2.3")
    for tx in (old, recent):
        store.save(replace(tx, state="REPORTED"))
    with store.lease(old):  # as a process that listed it before it became final
        pass
    with store.lease(waiting):
        pass
    two_days_ago = time.time() - 2 * 86400
    for name in ("done/1.2.1.json", "1.2.3.json", "1.2.1.lock", "1.2.3.lock"):
        os.utime(tmp_path / "commitment" / name, (two_days_ago, two_days_ago))
    assert [t.transaction_uid for t in store.pending()] == [waiting.transaction_uid]
    assert files(tmp_path) == [
        "commitment/1.2.3.json",
        "commitment/1.2.3.lock",
        "commitment/done/1.2.2.json",
    ]
