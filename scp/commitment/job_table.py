"""Storage commitment with an S3 store: instance states from DicomImportJobTable (the truth of
where an instance is, DESIGN section 9; its contract is config/contracts.json) and transactions
recorded in the same table as items of their own (jobId COMMITMENT#{TransactionUID}).

pendingCommitment exists only while a transaction is pending, so its index holds only pending
transactions (a GSI is sparse: only items with its key attributes appear in it; DynamoDB developer
guide, "Take advantage of sparse indexes"). Leases are conditional updates: `leaseUntil` (one
sender, for LEASE seconds) and `heldUntil` (the task whose association asked keeps it while that
association is open, refreshed every pass). A task that dies lets both expire, so another task
reports.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from scp.commitment.outcome import COMMITTED, FAILED, WAITING, Found
from scp.commitment.transactions import Held, Transaction
from scp.contracts import (
    COMMITMENT_RECORD_PREFIX,
    CONFLICT,
    EXPIRES_AT,
    IMPORTED,
    INSTANCE_RECORD_PREFIX,
    LATEST_WINS,
    PENDING,
    PENDING_COMMITMENT_INDEX,
    SOP_INSTANCE_INDEX,
    STORED,
)
from scp.contracts import FAILED as IMPORT_FAILED
from scp.job_records import expires_at

TRANSACTION = "TRANSACTION"
LEASE = 120.0  # seconds one task may take to deliver a report before another may
HOLD = 30.0  # seconds a hold lasts without a refresh
PACKED = ("references", "failures")  # gzip'd JSON: 5,000 references stay far below 400 KB
KEYS = ("jobId", "recordId", "pendingCommitment", "leaseOwner", "leaseUntil", EXPIRES_AT)
CLAIMED = ("heldBy", "heldUntil")  # written by hold/refresh/release only, never by save


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class SharedTable:
    """One DynamoDB Table resource for the threads of a process (associations record requests,
    the reporter polls), one call at a time: boto3 resources are not thread-safe, clients are
    (Boto3 guide, "Resources" and "Low-level clients", sections on multithreading). Commitment
    calls are few (a request per study, a poll a second), so the lock costs nothing the C-STORE
    path feels."""

    def __init__(self, table: Any) -> None:
        self._table, self._lock = table, threading.Lock()
        self.name = table.name

    def _call(self, action: str, **kwargs: Any) -> Any:
        with self._lock:
            return getattr(self._table, action)(**kwargs)

    def query(self, **kwargs: Any) -> Any:
        return self._call("query", **kwargs)

    def get_item(self, **kwargs: Any) -> Any:
        return self._call("get_item", **kwargs)

    def put_item(self, **kwargs: Any) -> Any:
        return self._call("put_item", **kwargs)

    def update_item(self, **kwargs: Any) -> Any:
        return self._call("update_item", **kwargs)


class JobTableInstances:
    """Where instances are, from the job table's SOP Instance UID index (latest attempt wins).
    IMPORTED is final and kept; the others are asked again on the next pass. With
    `commit_on_stored` (COMMITMENT_COMMIT_ON=stored) the SCP's STORED item counts as committed
    too, unless an import attempt already says otherwise (it wins: attempt 0 < 1)."""

    def __init__(self, table: Any, commit_on_stored: bool = False) -> None:
        self.table = table
        self._final = (IMPORTED, STORED) if commit_on_stored else (IMPORTED,)
        self._committed: dict[str, Found] = {}

    def _latest(self, uid: str) -> dict[str, Any] | None:
        items = self.table.query(
            IndexName=SOP_INSTANCE_INDEX, KeyConditionExpression=Key("sopInstanceUID").eq(uid)
        )["Items"]
        items = [i for i in items if str(i.get("recordId", "")).startswith(INSTANCE_RECORD_PREFIX)]
        return max(items, key=lambda i: tuple(i.get(k) for k in LATEST_WINS), default=None)

    def find(self, sop_instance_uids: Iterable[str], complete: bool = True) -> dict[str, Found]:
        """One query per instance not known committed; while waiting (not `complete`) it stops
        at the first instance not imported yet, so a pending study costs about one query a
        pass, not one per instance."""
        out = {}
        for uid in sop_instance_uids:
            if uid in self._committed:
                out[uid] = self._committed[uid]
                continue
            item = self._latest(uid)
            if item is None:
                if not complete:
                    break
                continue
            status = item.get("importStatus")
            state = (
                COMMITTED
                if status in self._final
                else FAILED
                if status in (CONFLICT, IMPORT_FAILED)
                else WAITING
            )
            found = Found(str(item.get("sopClassUID", "")), state, str(status or ""))
            if state == COMMITTED:
                self._committed[uid] = found
            out[uid] = found
            if state == WAITING and not complete:
                break
        return out


def _to_item(tx: Transaction) -> dict[str, Any]:
    doc = tx.to_json()
    item: dict[str, Any] = {}
    for name, value in doc.items():
        if name in CLAIMED:
            continue
        if name in PACKED:
            item[name] = gzip.compress(json.dumps(value).encode())
        elif isinstance(value, float):
            item[name] = Decimal(repr(value))
        else:
            item[name] = value
    return item


def _from_item(item: dict[str, Any]) -> Transaction:
    doc: dict[str, Any] = {}
    for name, value in item.items():
        if name in KEYS:
            continue
        if name in PACKED:
            doc[name] = json.loads(gzip.decompress(bytes(value)))
        elif isinstance(value, Decimal):
            doc[name] = int(value) if name in ("attempts", "eventType") else float(value)
        else:
            doc[name] = value
    return Transaction.from_json(doc)


class TableTransactions:
    """Transactions as items of the job table (see the module docstring). A transaction that
    is no longer pending expires `retention_days` after it was saved so (the table's TTL
    attribute); a pending one never expires."""

    def __init__(self, table: Any, retention_days: int = 365) -> None:
        self.table = table
        self.retention_days = retention_days
        self.me = _owner()

    def __str__(self) -> str:
        return f"dynamodb:{self.table.name}"

    @staticmethod
    def _key(tx: Transaction) -> dict[str, str]:
        record = TRANSACTION if not tx.duplicate else tx.name.split(".dup-")[1]
        if tx.duplicate:
            record = "DUPLICATE#" + record
        return {"jobId": COMMITMENT_RECORD_PREFIX + tx.transaction_uid, "recordId": record}

    def _put_new(self, tx: Transaction) -> bool:
        item = {**self._key(tx), **_to_item(tx), "pendingCommitment": PENDING}
        try:
            self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(jobId)")
            return True
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise

    def record(self, tx: Transaction, digest: str) -> Transaction:
        first = replace(tx, name=tx.transaction_uid)
        if self._put_new(first):
            return first
        recorded = self.get(tx.transaction_uid)
        if recorded is not None and (
            recorded.calling_ae == tx.calling_ae and set(recorded.references) == set(tx.references)
        ):
            return recorded
        dup = replace(tx, name=f"{tx.transaction_uid}.dup-{digest}", duplicate=True)
        if self._put_new(dup):
            return dup
        item = self.table.get_item(Key=self._key(dup), ConsistentRead=True).get("Item")
        return _from_item(item) if item else dup

    def save(self, tx: Transaction) -> None:
        values = _to_item(tx)
        names = {f"#a{i}": k for i, k in enumerate(values)}
        sets = [f"#a{i} = :a{i}" for i in range(len(values))]
        attrs = {f":a{i}": v for i, v in enumerate(values.values())}
        expression = "SET " + ", ".join(sets)
        names["#expires"] = EXPIRES_AT
        if tx.state == PENDING:
            expression += ", pendingCommitment = :pending REMOVE #expires"
            attrs[":pending"] = PENDING
        else:
            expression += ", #expires = :expires REMOVE pendingCommitment"
            attrs[":expires"] = expires_at(self.retention_days)
        self.table.update_item(
            Key=self._key(tx),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=attrs,
        )

    def get(self, transaction_uid: str) -> Transaction | None:
        key = {"jobId": COMMITMENT_RECORD_PREFIX + transaction_uid, "recordId": TRANSACTION}
        item = self.table.get_item(Key=key, ConsistentRead=True).get("Item")
        return _from_item(item) if item else None

    def pending(self) -> list[Transaction]:
        out, start = [], None
        while True:
            kwargs: dict[str, Any] = {
                "IndexName": PENDING_COMMITMENT_INDEX,
                "KeyConditionExpression": Key("pendingCommitment").eq(PENDING),
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            page = self.table.query(**kwargs)
            out += [_from_item(i) for i in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                return out

    def _claim(self, tx: Transaction, field: str, seconds: float, pending: bool) -> dict | None:
        """Conditionally set {field}By/Until to us; the item after, or None if someone else."""
        now = Decimal(repr(time.time()))
        condition = "(attribute_not_exists(#u) OR #u < :now OR #b = :me)"
        values: dict[str, Any] = {
            ":me": self.me,
            ":now": now,
            ":until": now + Decimal(repr(seconds)),
        }
        if pending:
            condition += " AND #s = :pending"
            values[":pending"] = PENDING
        try:
            return self.table.update_item(
                Key=self._key(tx),
                UpdateExpression="SET #b = :me, #u = :until",
                ConditionExpression=condition,
                ExpressionAttributeNames={
                    "#b": field + "By" if field == "held" else "leaseOwner",
                    "#u": field + "Until",
                    **({"#s": "state"} if pending else {}),
                },
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise

    def _unclaim(self, tx: Transaction, field: str) -> None:
        owner = field + "By" if field == "held" else "leaseOwner"
        with contextlib.suppress(ClientError):
            self.table.update_item(
                Key=self._key(tx),
                UpdateExpression="REMOVE #b, #u",
                ConditionExpression="#b = :me",
                ExpressionAttributeNames={"#b": owner, "#u": field + "Until"},
                ExpressionAttributeValues={":me": self.me},
            )

    @contextlib.contextmanager
    def lease(self, tx: Transaction) -> Iterator[Transaction | None]:
        item = self._claim(tx, "lease", LEASE, pending=True)
        try:
            yield _from_item(item) if item else None
        finally:
            if item:
                self._unclaim(tx, "lease")

    def hold(self, tx: Transaction) -> Transaction:
        if self._claim(tx, "held", HOLD, pending=False) is None:
            raise Held(tx.name)
        return tx

    def refresh(self, handle: Transaction) -> None:
        self._claim(handle, "held", HOLD, pending=False)

    def release(self, handle: Transaction) -> None:
        self._unclaim(handle, "held")

    def held_elsewhere(self, tx: Transaction) -> bool:
        return bool(tx.held_by) and tx.held_by != self.me and tx.held_until > time.time()
