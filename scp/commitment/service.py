"""The Storage Commitment service: the N-ACTION handler and the reporter, declared to the
services registry (scp/services.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydicom.dataset import Dataset
from pynetdicom import evt

from scp.commitment import SOP_CLASS
from scp.commitment.locate import FolderInstances, Locator
from scp.commitment.reporter import Reporter
from scp.commitment.request import InvalidRequest, parse_request
from scp.commitment.transactions import (
    FolderTransactions,
    Transaction,
    TransactionStore,
    new_transaction,
)
from scp.contracts import PENDING
from scp.remote_aes import COMMITMENT
from scp.services import Context, Handler, Part, Service
from scp.settings import Settings
from scp.storage import StorageError
from scp.telemetry import Metrics

LOG = logging.getLogger("scp")
PROCESSING_FAILURE = 0x0110
TABLE_EVALUATE_EVERY = 2.0  # seconds between job-table looks at one pending transaction


def _status(code: int, comment: str = "") -> Dataset:
    ds = Dataset()
    ds.Status = code
    if comment:
        ds.ErrorComment = comment[:64]
    return ds


class CommitmentService(Service):
    """N-ACTION (request commitment) as SCP; N-EVENT-REPORT sent as SCP, on the requesting
    association or on one we open (role selection)."""

    name = "Storage Commitment Push Model"
    permission = COMMITMENT

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        if settings.storage.startswith("s3://"):
            import boto3

            from scp.commitment.job_table import JobTableInstances, SharedTable, TableTransactions

            # The endpoint may be overridden by AWS_ENDPOINT_URL_DYNAMODB (tests: moto; AWS SDKs
            # and Tools reference guide, "Service-specific endpoints").
            table = SharedTable(boto3.resource("dynamodb").Table(settings.job_table))
            self.transactions: TransactionStore = TableTransactions(
                table, settings.commitment_retention_days
            )
            locator: Locator = JobTableInstances(table, settings.commits_on_stored_in_table)
            evaluate_every = TABLE_EVALUATE_EVERY
        else:
            self.transactions = FolderTransactions(
                settings.storage, settings.commitment_retention_days
            )
            locator, evaluate_every = FolderInstances(settings.storage), 0.0
        self.reporter = Reporter(settings, self.transactions, locator, metrics, evaluate_every)

    @classmethod
    def contexts(cls, settings: Settings) -> list[Context]:
        """Offered with a folder store, and with S3 when JOB_TABLE_NAME names the job table."""
        if settings.storage.startswith("s3://") and not settings.job_table:
            return []
        return [Context(SOP_CLASS)]

    def handlers(self) -> list[Handler]:
        return [(evt.EVT_N_ACTION, self.on_action)]

    def parts(self) -> list[Part]:
        return [self.reporter]

    def on_action(self, event: evt.Event) -> tuple[Dataset, Dataset | None]:
        """Validate, record durably, then answer Success (the report comes later)."""
        rq = event.request
        assoc = event.assoc
        calling = assoc.requestor.ae_title.strip()
        called = assoc.acceptor.ae_title.strip()
        try:
            request = parse_request(
                str(rq.RequestedSOPInstanceUID), rq.ActionTypeID, _information(event)
            )
        except InvalidRequest as exc:
            LOG.warning("commitment request refused", extra={"fields": {
                "event": "commitment-refused", "callingAETitle": calling,
                "status": f"0x{exc.status:04X}", "reason": exc.comment}})  # fmt: skip
            return _status(exc.status, exc.comment), None
        tx = new_transaction(
            request,
            calling,
            called,
            self.settings.commitment_timeout,
            self.settings.commitment_delivery_window,
        )
        try:
            tx = self.transactions.record(tx, request.digest(calling))
            if tx.state != PENDING and not tx.duplicate:
                tx = self._again(tx)
        except (StorageError, ClientError, BotoCoreError) as exc:
            LOG.error("commitment request not recorded", extra={"fields": {
                "event": "commitment-not-recorded", "callingAETitle": calling,
                "transactionUID": request.transaction_uid, "error": str(exc)}})  # fmt: skip
            return _status(PROCESSING_FAILURE, "request not recorded; send it again"), None
        self.reporter.asked_on(tx, assoc)
        LOG.info("commitment requested", extra={"fields": {
            "event": "commitment-requested", "transactionUID": tx.transaction_uid,
            "callingAETitle": tx.calling_ae, "state": tx.state,
            "instances": len(tx.references), "duplicate": tx.duplicate}})  # fmt: skip
        return _status(0x0000), None

    def _again(self, tx: Transaction) -> Transaction:
        """An identical request for a transaction already reported (or undeliverable): the
        modality did not get, or lost, the report; report it again."""
        now = time.time()
        tx = replace(
            tx,
            state=PENDING,
            attempts=0,
            next_attempt=0.0,
            last_error="",
            give_up_at=now + self.settings.commitment_delivery_window,
        )
        self.transactions.save(tx)
        return tx


def _information(event: evt.Event) -> Any:
    try:
        return event.action_information
    except Exception:  # undecodable Action Information: parse_request refuses None
        return None
