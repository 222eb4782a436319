"""Direct TLS and mutual TLS with dcmtk's storescu/echoscu as the peer."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.scp.conftest import stored_files
from tests.scp.test_transfer import storescu
from tests.support.tls import Pki, make_pki
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_storescu_over_tls_is_stored(start_scp, pki, instances, tmp_path: Path) -> None:
    scp = start_scp(tls_cert=pki.server_cert, tls_key=pki.server_key)
    result = storescu(scp.port, str(instances["explicit"]), flags=("+tla", "+cf", str(pki.ca)))
    assert result.returncode == 0, result.stderr
    plain = storescu(scp.port, str(instances["mr"]))
    assert plain.returncode != 0, "a plain TCP peer got through a TLS port"
    scp.terminate()
    assert len(stored_files(tmp_path / "store")) == 1


def test_mutual_tls_accepts_a_client_certificate_and_refuses_none(
    start_scp, pki, instances, tmp_path: Path
) -> None:
    scp = start_scp(tls_cert=pki.server_cert, tls_key=pki.server_key, tls_ca=pki.ca)
    with_cert = storescu(
        scp.port,
        str(instances["explicit"]),
        flags=("+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(pki.ca)),
    )
    assert with_cert.returncode == 0, with_cert.stderr
    without = storescu(scp.port, str(instances["mr"]), flags=("+tla", "+cf", str(pki.ca)))
    assert without.returncode != 0, "a client without a certificate got through"
    assert wait_until(lambda: scp.events("tls-refused")), "the refused handshake was not logged"
    scp.terminate()
    assert len(stored_files(tmp_path / "store")) == 1


def test_a_stalled_tls_handshake_does_not_block_other_peers(start_scp, pki, instances) -> None:
    scp = start_scp(tls_cert=pki.server_cert, tls_key=pki.server_key, acse_timeout=6)
    stalled = socket.create_connection(("127.0.0.1", scp.port))  # connects, never says hello
    try:
        started = time.monotonic()
        result = storescu(scp.port, str(instances["explicit"]), flags=("+tla", "+cf", str(pki.ca)))
        assert result.returncode == 0, result.stderr
        assert time.monotonic() - started < 4, "the handshake waited behind a stalled peer"
    finally:
        stalled.close()
