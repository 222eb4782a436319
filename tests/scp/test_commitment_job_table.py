"""Storage commitment's job-table side against DynamoDB (moto server over HTTP): transaction
items, the one-sender lease between two tasks, the hold of an open association, and instance
states read as the import workflow writes them."""

from __future__ import annotations

import threading
import time
import uuid

import boto3
import pytest

from scp.commitment.job_table import JobTableInstances, TableTransactions
from scp.commitment.outcome import COMMITTED, FAILED, WAITING
from scp.commitment.reporter import Reporter
from scp.commitment.request import CommitmentRequest, Reference
from scp.commitment.transactions import Held, new_transaction
from scp.settings import load_settings
from scp.telemetry import Metrics
from tests.fakes.pipeline import create_job_table
from tests.support.aws import REGION
from tests.support.commitment import Modality

CT, MR = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"


@pytest.fixture
def table(moto):
    name = f"jobs-{uuid.uuid4().hex[:8]}"
    create_job_table(moto.client("dynamodb"), name)
    return boto3.resource("dynamodb", endpoint_url=moto.endpoint, region_name=REGION).Table(name)


def instance_item(
    sop: str, status: str, sop_class: str = CT, attempt: int = 1, job: str = "job-1"
) -> dict:
    """An instance item as the workflow's RecordResults writes it (lambdas/job_table.py)."""
    return {"jobId": job, "recordId": f"INSTANCE#{sop}", "sopInstanceUID": sop,
            "sopClassUID": sop_class, "attempt": attempt, "recordedAt": "2026-12-06T00:00:00Z",
            "importStatus": status}  # fmt: skip


def request(n: int, tag: str = "t") -> CommitmentRequest:
    refs = tuple(Reference(CT, f"1.2.826.0.1.{i}") for i in range(n))
    return CommitmentRequest(f"1.2.826.9.{uuid.uuid4().int % 10**12}", refs)


def test_a_transaction_of_5000_instances_fits_an_item_and_reads_back(table) -> None:
    rq = request(5000)
    tx = TableTransactions(table).record(new_transaction(rq, "CT1", "STORESCP", 60, 60), "d")
    again = TableTransactions(table).get(rq.transaction_uid)
    assert again == tx and len(again.references) == 5000
    item = table.get_item(Key={"jobId": f"COMMITMENT#{rq.transaction_uid}",
                               "recordId": "TRANSACTION"})["Item"]  # fmt: skip
    assert item["pendingCommitment"] == "PENDING"
    assert len(bytes(item["references"])) < 100_000


def test_a_repeated_request_is_the_same_transaction_and_another_is_a_duplicate(table) -> None:
    store = TableTransactions(table)
    rq = request(2)
    first = store.record(new_transaction(rq, "CT1", "STORESCP", 60, 60), rq.digest("CT1"))
    assert store.record(new_transaction(rq, "CT1", "STORESCP", 60, 60), rq.digest("CT1")) == first
    other = CommitmentRequest(rq.transaction_uid, rq.references[:1])
    dup = store.record(new_transaction(other, "CT1", "STORESCP", 60, 60), other.digest("CT1"))
    assert dup.duplicate and not first.duplicate
    assert sorted(t.name for t in store.pending()) == sorted([first.name, dup.name])


def test_one_task_holds_the_lease_and_the_pending_index_forgets_reported_ones(table) -> None:
    a, b = TableTransactions(table), TableTransactions(table)
    tx = a.record(new_transaction(request(1), "CT1", "STORESCP", 60, 60), "d")
    with a.lease(tx) as mine:
        assert mine is not None
        with b.lease(tx) as theirs:
            assert theirs is None
        a.save(mine.__class__(**{**mine.__dict__, "state": "REPORTED"}))
    with b.lease(tx) as theirs:
        assert theirs is None  # reported: nothing left to send
    assert a.pending() == []


def test_an_open_association_holds_its_transaction_until_released(table) -> None:
    a, b = TableTransactions(table), TableTransactions(table)
    tx = a.record(new_transaction(request(1), "CT1", "STORESCP", 60, 60), "d")
    handle = a.hold(tx)
    with pytest.raises(Held):
        b.hold(tx)
    (seen,) = b.pending()
    assert b.held_elsewhere(seen) and not a.held_elsewhere(seen)
    a.release(handle)
    (seen,) = b.pending()
    assert not b.held_elsewhere(seen)


def test_instance_states_follow_the_latest_attempt(table) -> None:
    def put(sop: str, attempt: int, status: str, sop_class: str = CT) -> None:
        table.put_item(Item=instance_item(sop, status, sop_class, attempt, f"job-{sop}-{attempt}"))

    put("1.1", 1, "FAILED")
    put("1.1", 2, "IMPORTED")  # redriven: imported
    put("1.2", 1, "CONFLICT")
    put("1.3", 1, "IMPORTED", MR)
    put("1.4", 1, "SOMETHING-NEW")
    found = JobTableInstances(table).find(["1.1", "1.2", "1.3", "1.4", "1.5"])
    assert {k: (v.sop_class_uid, v.state) for k, v in found.items()} == {
        "1.1": (CT, COMMITTED),
        "1.2": (CT, FAILED),
        "1.3": (MR, COMMITTED),
        "1.4": (CT, WAITING),
    }


def test_two_tasks_polling_at_once_send_one_report(table) -> None:
    modality = Modality("CT1").listen()
    settings = load_settings([], {"REMOTE_AES": f"CT1=127.0.0.1:{modality.port}:commitment"})
    sop = "1.2.826.0.1.7"
    table.put_item(Item=instance_item(sop, "IMPORTED"))
    rq = CommitmentRequest("1.2.826.9.77", (Reference(CT, sop),))
    TableTransactions(table).record(new_transaction(rq, "CT1", "STORESCP", 60, 60), "d")
    reporters = [
        Reporter(settings, TableTransactions(table), JobTableInstances(table), Metrics("T"))
        for _ in range(2)
    ]
    start = threading.Barrier(2)

    def run(reporter: Reporter) -> None:
        start.wait()
        reporter.poll()

    threads = [threading.Thread(target=run, args=(r,)) for r in reporters]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        report = modality.next_report(timeout=5)
        time.sleep(1)
        assert modality.reports.empty()
    finally:
        modality.stop()
    assert str(report.info.TransactionUID) == rq.transaction_uid and report.event_type == 1
    assert TableTransactions(table).pending() == []


def test_storescp_lookup_shows_where_a_transaction_stands(moto, table, capsys) -> None:
    from lambdas.operators import lookup_main

    store = TableTransactions(table)
    rq = request(3)
    tx = store.record(new_transaction(rq, "CT1", "STORESCP", 60, 60), "d")
    store.save(tx.__class__(**{**tx.__dict__, "attempts": 2, "last_error": "no association"}))
    args = ["--endpoint-url", moto.endpoint, "--region", REGION, "--table", table.name]
    capsys.readouterr()
    assert lookup_main([*args, "--transaction", rq.transaction_uid]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{rq.transaction_uid}  PENDING")
    assert "from CT1  3 instances, 0 failed" in line and line.endswith("no association")
    assert lookup_main([*args, "--transaction", "1.2.3.4.5"]) == 1


def test_while_waiting_a_pass_stops_at_the_first_instance_not_imported(table) -> None:
    class Counting:
        def __init__(self) -> None:
            self.queries = 0

        def query(self, **kwargs):
            self.queries += 1
            return table.query(**kwargs)

    table.put_item(Item=instance_item("2.1", "IMPORTED"))
    table.put_item(Item=instance_item("2.3", "IMPORTED"))
    counting = Counting()
    locator = JobTableInstances(counting)
    assert set(locator.find(["2.1", "2.2", "2.3"], complete=False)) == {"2.1"}
    assert counting.queries == 2  # 2.1, then 2.2 (not there yet): 2.3 is not asked
    assert set(locator.find(["2.1", "2.2", "2.3"], complete=True)) == {"2.1", "2.3"}
    assert counting.queries == 4  # 2.1 is known committed: only 2.2 and 2.3 are asked


def test_a_dead_tasks_lease_and_hold_expire(table) -> None:
    """A task killed while holding a transaction (association open, or mid-delivery) stops
    refreshing; once its times pass, another task reports."""
    dead, alive = TableTransactions(table), TableTransactions(table)
    tx = dead.record(new_transaction(request(1), "CT1", "STORESCP", 60, 60), "d")
    dead.hold(tx)
    with dead.lease(tx) as taken:
        assert taken is not None
        key = {"jobId": f"COMMITMENT#{tx.transaction_uid}", "recordId": "TRANSACTION"}
        table.update_item(  # the dead task's times, long past
            Key=key,
            UpdateExpression="SET leaseUntil = :past, heldUntil = :past",
            ExpressionAttributeValues={":past": 1},
        )
        (seen,) = alive.pending()
        assert not alive.held_elsewhere(seen)
        with alive.lease(tx) as mine:
            assert mine is not None


def test_a_transaction_expires_only_once_final(table) -> None:
    """Pending: no expiresAt (never deleted while it may still report); reported or
    undeliverable: the final time + the retention; pending again (asked again): none."""
    store = TableTransactions(table, retention_days=7)
    tx = store.record(new_transaction(request(1), "CT1", "STORESCP", 60, 60), "d")
    key = {"jobId": f"COMMITMENT#{tx.transaction_uid}", "recordId": "TRANSACTION"}

    def expires() -> int | None:
        value = table.get_item(Key=key, ConsistentRead=True)["Item"].get("expiresAt")
        return None if value is None else int(value)

    assert expires() is None
    for state in ("REPORTED", "UNDELIVERABLE"):
        before = time.time()
        store.save(tx.__class__(**{**tx.__dict__, "state": state}))
        assert before + 7 * 86400 - 1 <= expires() <= time.time() + 7 * 86400
        assert store.get(tx.transaction_uid).state == state  # reads back despite the attribute
    store.save(tx.__class__(**{**tx.__dict__, "state": "PENDING"}))
    assert expires() is None and [t.name for t in store.pending()] == [tx.name]
