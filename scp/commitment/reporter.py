"""The commitment reporter: a background part that, every POLL seconds, decides which pending
transactions can report, takes the lease of each, delivers, and records the outcome (retries
with backoff until COMMITMENT_DELIVERY_WINDOW, then undeliverable, logged at ERROR and counted
for the alarm)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any

from pynetdicom.association import Association

from scp.commitment import deliver
from scp.commitment.locate import Locator
from scp.commitment.outcome import Report, decide
from scp.commitment.transactions import Held, Transaction, TransactionStore
from scp.contracts import PENDING, REPORTED, UNDELIVERABLE
from scp.settings import Settings
from scp.telemetry import Metrics

LOG = logging.getLogger("scp")
POLL = 1.0  # seconds between looks at the pending transactions
BACKOFF_FIRST, BACKOFF_CAP = 2.0, 300.0  # seconds before a delivery retry: doubling, capped
ERROR_LOG_EVERY = 60.0  # seconds between log lines while passes keep failing


def _busy(assoc: Association) -> bool:
    """The peer is sending on assoc (a message arriving or queued): pynetdicom runs one
    operation at a time, so a report sent now could take the peer's request for its answer."""
    return assoc.dimse.message is not None or not assoc.dimse.msg_queue.empty()


def backoff(attempts: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_FIRST * 2 ** max(0, attempts - 1))


class Reporter:
    """Decides and delivers the reports of one store's transactions, from this process."""

    def __init__(
        self,
        settings: Settings,
        transactions: TransactionStore,
        locator: Locator,
        metrics: Metrics,
        evaluate_every: float = 0.0,
    ) -> None:
        self.settings, self.transactions, self.locator = settings, transactions, locator
        self.metrics = metrics
        self.evaluate_every = evaluate_every  # seconds between looks at one transaction
        self._evaluated: dict[str, float] = {}
        self._lock = threading.Lock()
        self._associations: dict[str, tuple[Association, Any]] = {}  # name -> (assoc, hold)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the association that asked -------------------------------------------------------------
    def asked_on(self, tx: Transaction, assoc: Association) -> None:
        """tx was asked for on assoc (of this process): report there while it is open."""
        try:
            handle = self.transactions.hold(tx)
        except Held:  # a repeat of a request another association still holds
            return
        except Exception as exc:  # the hold only prefers this association: report anyway
            LOG.warning("commitment hold failed", extra={"fields": {
                "event": "commitment-hold-failed", "transactionUID": tx.transaction_uid,
                "error": str(exc)}})  # fmt: skip
            return
        with self._lock:
            self._associations[tx.name] = (assoc, handle)

    def _open_association(self, tx: Transaction) -> Association | None:
        with self._lock:
            entry = self._associations.get(tx.name)
            if entry is None:
                return None
            assoc, handle = entry
            if assoc.is_established:
                return assoc
            del self._associations[tx.name]
        self.transactions.release(handle)
        return None

    def _forget(self, tx: Transaction) -> None:
        with self._lock:
            entry = self._associations.pop(tx.name, None)
        if entry:
            self.transactions.release(entry[1])

    def _refresh_holds(self) -> None:
        with self._lock:
            entries = list(self._associations.values())
        for assoc, handle in entries:
            if assoc.is_established:
                self.transactions.refresh(handle)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="CommitmentReporter", daemon=True)
        self._thread.start()

    def drain(self) -> None:
        """Keep reporting while the associations drain: reports may go on them."""

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        with self._lock:
            entries, self._associations = list(self._associations.values()), {}
        for _, handle in entries:
            self.transactions.release(handle)

    def _run(self) -> None:
        failures, logged = 0, float("-inf")
        while not self._stop.wait(POLL):
            try:
                self.poll()
                failures = 0
            except Exception:  # the store is unreachable: try again next pass, log sparingly
                failures += 1
                if time.monotonic() - logged >= ERROR_LOG_EVERY:
                    logged = time.monotonic()
                    LOG.exception("commitment reporter pass failed; retrying every pass",
                                  extra={"fields": {"event": "reporter-error",
                                                    "failedPasses": failures}})  # fmt: skip

    # -- one pass -------------------------------------------------------------------------------
    def poll(self, now: float | None = None) -> None:
        """Report every pending transaction that can report now."""
        self._refresh_holds()
        pending = self.transactions.pending()
        self.metrics.gauge("CommitmentsPending", len(pending))
        for tx in pending:
            now_ = time.time() if now is None else now
            if tx.next_attempt > now_:
                continue
            last = self._evaluated.get(tx.name, float("-inf"))
            if now_ < tx.deadline and now_ < last + self.evaluate_every:
                continue
            self._evaluated[tx.name] = now_
            assoc = self._open_association(tx)
            if assoc is not None and _busy(assoc):
                if now_ < tx.deadline:
                    continue  # the modality is sending on it: report once it is quiet
                assoc = None  # deadline: report on a new association instead
            if assoc is None and self.transactions.held_elsewhere(tx) and now_ < tx.deadline:
                continue  # another process reports on its open association
            found = self.locator.find(
                [r.sop_instance_uid for r in tx.references], complete=now_ >= tx.deadline
            )
            report = decide(
                tx.transaction_uid, tx.references, found, now_ >= tx.deadline, tx.duplicate
            )
            if report is None:
                continue
            with self.transactions.lease(tx) as current:
                if current is not None:
                    self._deliver(current, report, assoc, now_)

    def _deliver(
        self, tx: Transaction, report: Report, assoc: Association | None, now: float
    ) -> None:
        error = deliver.send(assoc, report) if assoc is not None else ""
        how = "same association"
        if assoc is None or error:
            remote = self.settings.remote_aes.get(tx.calling_ae)
            how = "new association"
            if remote is None:
                error = f"{tx.calling_ae} is not in REMOTE_AES: no address to report to"
            else:
                error = deliver.on_new_association(self.settings, remote, report)
        if not error:
            self._forget(tx)
            self.transactions.save(
                replace(
                    tx,
                    state=REPORTED,
                    attempts=tx.attempts + 1,
                    event_type=report.event_type,
                    failures={r.sop_instance_uid: reason for r, reason in report.failed},
                    reported_at=now,
                    last_error="",
                )
            )
            self.metrics.add("InstancesCommitted", len(report.committed))
            self.metrics.add("CommitmentFailures", len(report.failed))
            _log_delivery(logging.INFO, "commitment-reported", tx, report, how, REPORTED, "")
            return
        attempts = tx.attempts + 1
        state = UNDELIVERABLE if now >= tx.give_up_at else PENDING
        self.transactions.save(
            replace(
                tx,
                state=state,
                attempts=attempts,
                next_attempt=now + backoff(attempts),
                last_error=error,
            )
        )
        if state == UNDELIVERABLE:
            self._forget(tx)
            self.metrics.add("CommitmentsUndeliverable", 1)
            _log_delivery(logging.ERROR, "commitment-undeliverable", tx, report, how, state, error)
        else:
            _log_delivery(logging.WARNING, "commitment-retry", tx, report, how, state, error)


DELIVERY_MESSAGES = {
    "commitment-reported": "commitment reported",
    "commitment-undeliverable": "commitment report undeliverable",
    "commitment-retry": "commitment report not delivered; will retry",
}


def _log_delivery(
    level: int, event: str, tx: Transaction, report: Report, how: str, state: str, error: str
) -> None:
    """One line per delivery attempt: the transaction, the report and how it went."""
    LOG.log(
        level,
        DELIVERY_MESSAGES[event],
        extra={
            "fields": {
                "event": event,
                "transactionUID": tx.transaction_uid,
                "callingAETitle": tx.calling_ae,
                "state": state,
                "instances": len(tx.references),
                "attempts": tx.attempts + 1,
                "eventType": report.event_type,
                "committed": len(report.committed),
                "failed": len(report.failed),
                "delivery": how,
                "lastError": error or None,
                "duplicate": tx.duplicate,
            }
        },
    )
