"""Reports to a remote AE registered with `:tls` go over TLS 1.2+: the AE's certificate is
checked against TLS_CA_FILE and its address, and the SCP's certificate is its client
certificate (the modality here requires one)."""

from __future__ import annotations

import queue
import ssl
from pathlib import Path

import pytest

from scp.commitment.reporter import Reporter
from scp.commitment.transactions import FolderTransactions
from tests.support.commitment import Modality, folder_reporter
from tests.support.tls import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def modality_tls(pki: Pki) -> ssl.SSLContext:
    """The modality's server side: our test server certificate; clients need a certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.load_verify_locations(pki.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def reporter_for(tmp_path: Path, pki: Pki, entry: str) -> tuple[Reporter, FolderTransactions]:
    """Our reporter with the SCP's certificate, key and CA, and CT1 registered as `entry`."""
    flags = ["--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key)]
    reporter, transactions, _ = folder_reporter(tmp_path, entry, *flags, "--tls-ca", str(pki.ca))
    return reporter, transactions


def test_a_report_to_a_tls_ae_goes_over_mutual_tls(tmp_path, pki) -> None:
    modality = Modality("CT1").listen(modality_tls(pki))
    reporter, transactions = reporter_for(
        tmp_path, pki, f"CT1=127.0.0.1:{modality.port}:commitment:tls"
    )
    try:
        reporter.poll()
        report = modality.next_report(timeout=5)
    finally:
        modality.stop()
    assert report.event_type == 1 and not report.same_association
    assert [tx.state for tx in transactions.all()] == ["REPORTED"]


def test_a_tls_ae_registered_without_tls_gets_nothing_and_the_error_is_kept(tmp_path, pki):
    modality = Modality("CT1").listen(modality_tls(pki))
    reporter, transactions = reporter_for(
        tmp_path, pki, f"CT1=127.0.0.1:{modality.port}:commitment"
    )
    try:
        reporter.poll()
        with pytest.raises(queue.Empty):
            modality.next_report(timeout=1)
    finally:
        modality.stop()
    (tx,) = transactions.all()
    assert tx.state == "PENDING" and tx.attempts == 1
    assert tx.last_error.startswith("no association with CT1")
