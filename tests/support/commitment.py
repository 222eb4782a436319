"""A storage-commitment requester made of pynetdicom: it sends instances, asks for commitment
(N-ACTION) and receives reports, on the same association or on its own listening AE (SCU of
Storage Commitment, accepting the SCP role the report's association proposes)."""

from __future__ import annotations

import io
import queue
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import CTImageStorage, StorageCommitmentPushModel

from scp.commitment.locate import FolderInstances
from scp.commitment.reporter import Reporter
from scp.commitment.request import CommitmentRequest, Reference
from scp.commitment.transactions import FolderTransactions, new_transaction
from scp.settings import load_settings
from scp.telemetry import Metrics
from tests.support.dicom_files import make_dataset, uid, write_part10
from tests.support.net import free_port

WELL_KNOWN = "1.2.840.10008.1.20.1.1"


@dataclass
class Received:
    """One N-EVENT-REPORT as the modality saw it."""

    event_type: int
    info: Dataset
    same_association: bool
    calling_ae: str
    modality_is_scu: bool  # the role the modality has on the report's presentation context

    def failed(self) -> dict[str, int]:
        return {
            str(i.ReferencedSOPInstanceUID): int(i.FailureReason)
            for i in self.info.get("FailedSOPSequence", [])
        }

    def committed(self) -> list[str]:
        return [str(i.ReferencedSOPInstanceUID) for i in self.info.get("ReferencedSOPSequence", [])]


def action_information(transaction: str, refs: Iterable[tuple[str, str]]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = transaction
    items = []
    for sop_class, sop_instance in refs:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_instance
        items.append(item)
    ds.ReferencedSOPSequence = items
    return ds


def references(paths: Iterable[Path]) -> list[tuple[str, str]]:
    out = []
    for path in paths:
        ds = dcmread(path, stop_before_pixels=True)
        out.append((str(ds.SOPClassUID), str(ds.SOPInstanceUID)))
    return out


class Modality:
    """AE title `ae_title`, listening on 127.0.0.1:`port` for reports (start with `listen`)."""

    def __init__(self, ae_title: str = "MODALITY", port: int = 0) -> None:
        self.ae_title = ae_title
        self.port = port or free_port()
        self.reports: queue.Queue[Received] = queue.Queue()
        self._server = None

    def _on_report(self, event: evt.Event, same: bool) -> tuple[int, None]:
        self.reports.put(
            Received(
                event.request.EventTypeID,
                event.event_information,
                same,
                event.assoc.requestor.ae_title.strip() if not same else "",
                any(
                    cx.as_scu
                    for cx in event.assoc.accepted_contexts
                    if cx.context_id == event.context.context_id
                ),
            )
        )
        return 0x0000, None

    def listen(self, ssl_context: ssl.SSLContext | None = None) -> Modality:
        ae = AE(ae_title=self.ae_title)
        ae.add_supported_context(StorageCommitmentPushModel, scu_role=False, scp_role=True)
        self._server = ae.start_server(
            ("127.0.0.1", self.port),
            block=False,
            evt_handlers=[(evt.EVT_N_EVENT_REPORT, lambda e: self._on_report(e, False))],
            ssl_context=ssl_context,
        )
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def associate(self, port: int, called: str = "STORESCP") -> Association:
        ae = AE(ae_title=self.ae_title)
        ae.add_requested_context(CTImageStorage)
        ae.add_requested_context(StorageCommitmentPushModel)
        ae.dimse_timeout = 10
        assoc = ae.associate(
            "127.0.0.1",
            port,
            ae_title=called,
            evt_handlers=[(evt.EVT_N_EVENT_REPORT, lambda e: self._on_report(e, True))],
        )
        assert assoc.is_established, "the SCP refused the association"
        return assoc

    def request(
        self, assoc: Association, refs: Iterable[tuple[str, str]], transaction: str | None = None
    ) -> tuple[int, str]:
        """N-ACTION; (response status, transaction UID)."""
        transaction = transaction or uid("transaction", threading.get_ident(), id(assoc))
        status, _ = assoc.send_n_action(
            action_information(transaction, refs), 1, StorageCommitmentPushModel, WELL_KNOWN
        )
        return int(status.Status), transaction

    def send_and_ask(self, port: int, files: list[Path]) -> tuple[str, float]:
        """Store `files` (each answered Success), ask for commitment of them and release at
        once; (transaction UID, time.monotonic() of the last C-STORE's answer)."""
        assoc = self.associate(port)
        for path in files:
            assert assoc.send_c_store(str(path)).Status == 0
        last_store = time.monotonic()
        status, transaction = self.request(assoc, references(files))
        assoc.release()
        assert status == 0x0000
        return transaction, last_store

    def next_report(self, timeout: float = 20.0) -> Received:
        return self.reports.get(timeout=timeout)


def folder_reporter(
    folder: Path, remote_aes: str, *flags: str, timeout: float = 60, window: float = 60
) -> tuple[Reporter, FolderTransactions, Metrics]:
    """Our reporter over a folder store holding one stored instance and one pending request of
    CT1 for it, with settings from REMOTE_AES and extra command-line flags; run its passes with
    `poll(now=...)`. Metrics go to a buffer (`metrics.stream`)."""
    settings = load_settings(["--storage", str(folder), "--remote-aes", remote_aes, *flags], {})
    sop = uid(remote_aes, "sop")
    ds = make_dataset(study=uid(remote_aes, "study"), series=uid(remote_aes, "series"), sop=sop)
    write_part10(ds, folder / "incoming/b/st/se" / f"{sop}.dcm")
    transactions = FolderTransactions(str(folder))
    request = CommitmentRequest(uid(remote_aes, "tx"), (Reference(str(ds.SOPClassUID), sop),))
    transactions.record(new_transaction(request, "CT1", "STORESCP", timeout, window), "d")
    metrics = Metrics("Test", io.StringIO())
    return (
        Reporter(settings, transactions, FolderInstances(str(folder)), metrics),
        transactions,
        metrics,
    )
