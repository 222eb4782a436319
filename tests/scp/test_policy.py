"""Association policy against real peers: AE titles, SOP classes, the association limit,
timeouts, and connections that never associate."""

from __future__ import annotations

import contextlib
import socket
import struct
import time

import psutil
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, MRImageStorage, Verification

from tests.scp.test_transfer import echoscu, storescu
from tests.support.waiting import wait_until


def associate(
    port: int,
    calling: str = "MODALITY",
    called: str = "STORESCP",
    contexts: tuple[str, ...] = (Verification,),
):
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.network_timeout = 10
    for cx in contexts:
        ae.add_requested_context(cx)
    return ae.associate("127.0.0.1", port, ae_title=called)


def rejection(assoc) -> tuple[int, int, int]:
    assert assoc.is_rejected, "association was not rejected"
    rj = assoc.acceptor.primitive
    return rj.result, rj.result_source, rj.diagnostic


def rejections_logged(scp, reason: str) -> list[dict]:
    return [
        line
        for line in scp.log_lines()
        if line.get("event") == "association-rejected" and line["reason"] == reason
    ]


def test_wrong_called_ae_title_is_rejected_when_required(start_scp) -> None:
    scp = start_scp(require_called_ae_title=True, ae_title="PACS1")
    assert rejection(associate(scp.port, called="OTHER")) == (0x01, 0x01, 0x07)
    ok = associate(scp.port, called="PACS1")
    assert ok.is_established
    ok.release()
    result = echoscu(scp.port, aec="WRONG")
    assert result.returncode != 0 and "Called AE Title Not Recognized" in result.stderr
    assert len(rejections_logged(scp, "called AE title not recognised")) == 2


def test_any_called_ae_title_is_accepted_by_default(start_scp) -> None:
    scp = start_scp()
    assoc = associate(scp.port, called="ANYTHING")
    assert assoc.is_established
    assoc.release()


def test_calling_ae_title_must_be_in_the_allowlist(start_scp) -> None:
    scp = start_scp(require_calling_ae_title="CT1,MR1")
    assert rejection(associate(scp.port, calling="XRAY9")) == (0x01, 0x01, 0x03)
    for calling in ("CT1", "MR1"):
        assoc = associate(scp.port, calling=calling)
        assert assoc.is_established
        assoc.release()
    (line,) = rejections_logged(scp, "calling AE title not allowed")
    assert line["callingAETitle"] == "XRAY9"


def test_unsupported_sop_class_is_refused(start_scp, instances) -> None:
    scp = start_scp(supported_sop_class_uids=CTImageStorage)
    result = storescu(scp.port, str(instances["mr"]))
    assert result.returncode != 0
    assert "no presentation context" in result.stderr.lower()
    assoc = associate(scp.port, contexts=(CTImageStorage, MRImageStorage))
    assert assoc.is_established
    assert [cx.abstract_syntax for cx in assoc.accepted_contexts] == [CTImageStorage]
    assert [cx.abstract_syntax for cx in assoc.rejected_contexts] == [MRImageStorage]
    assoc.release()
    assert storescu(scp.port, str(instances["explicit"])).returncode == 0
    refusals = [line for line in scp.log_lines() if line.get("event") == "contexts-rejected"]
    assert refusals and all(
        c["reason"] == "SOP class not supported" for line in refusals for c in line["contexts"]
    )


@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "two-workers"])
def test_one_association_over_the_limit_is_rejected_transient_local_limit(
    start_scp, workers
) -> None:
    """One worker (LocalSlots: every task of 1 vCPU or less) and several (SharedSlots)."""
    scp = start_scp(maximum_associations=2, workers=workers)
    held = [associate(scp.port) for _ in range(2)]
    assert all(a.is_established for a in held)
    assert rejection(associate(scp.port)) == (0x02, 0x03, 0x02)
    assert len(rejections_logged(scp, "local limit exceeded")) == 1
    held[0].release()
    assert wait_until(lambda: scp.health()[1]["activeAssociations"] == 1)
    again = associate(scp.port)
    assert again.is_established, "a slot freed by a release is not reusable"
    for a in (held[1], again):
        a.release()


def test_connections_that_never_associate_hold_no_slot_and_are_dropped(start_scp) -> None:
    """Port scanners and load-balancer TCP checks must not lock modalities out."""
    scp = start_scp(maximum_associations=1, acse_timeout=1)
    idle = [socket.create_connection(("127.0.0.1", scp.port)) for _ in range(5)]
    try:
        assoc = associate(scp.port)
        assert assoc.is_established, "idle connections took the only association slot"
        assoc.release()
        for s in idle:
            s.settimeout(5)
            assert s.recv(1) == b"", "an idle connection was kept past the ACSE timeout"
    finally:
        for s in idle:
            s.close()


def test_idle_association_is_aborted_after_the_network_timeout(start_scp) -> None:
    scp = start_scp(network_timeout=1)
    assoc = associate(scp.port)
    assert assoc.is_established
    deadline = time.monotonic() + 10
    while assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.1)
    assert assoc.is_aborted, "the SCP kept an idle association open"
    assert wait_until(lambda: scp.events("association")), "the association's end was not logged"
    assert scp.events("association")[-1]["outcome"] == "aborted"


@pytest.mark.parametrize(
    "junk", [b"\x00" * 10, b"GET / HTTP/1.0\r\n\r\n", b"\x01\x00" + b"\xff" * 8]
)
def test_junk_bytes_do_not_disturb_service(start_scp, junk: bytes) -> None:
    scp = start_scp()
    with socket.create_connection(("127.0.0.1", scp.port)) as s:
        s.sendall(junk)
        s.settimeout(1)  # bytes short of a PDU: the SCP waits for the rest, and so need we not
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            s.recv(100)
    assoc = associate(scp.port)
    assert assoc.is_established
    assoc.release()


@pytest.mark.parametrize(
    ("pdu_type", "length"), [(0x04, 64 * 2**20), (0x01, 2 * 2**20), (0x04, 0xFFFFFFFF)]
)
def test_a_pdu_longer_than_negotiated_closes_the_connection_unread(start_scp, pdu_type, length):
    scp = start_scp(max_pdu_size=1 << 20, workers=1)
    with socket.create_connection(("127.0.0.1", scp.port)) as s:
        s.sendall(struct.pack(">BBL", pdu_type, 0, length) + b"\0" * 1024)
        s.settimeout(5)
        with contextlib.suppress(ConnectionResetError):
            assert s.recv(100) == b""
    assert wait_until(lambda: scp.events("pdu-too-large")), "the refusal was not logged"
    (line,) = scp.events("pdu-too-large")
    assert line["length"] == length


def test_connections_closed_before_associating_release_their_threads_at_once(start_scp):
    scp = start_scp(acse_timeout=60, workers=1)
    proc = psutil.Process(scp.proc.pid)
    idle_threads = proc.num_threads()
    for _ in range(40):
        socket.create_connection(("127.0.0.1", scp.port)).close()
    deadline = time.monotonic() + 15  # a loaded machine's margin, well short of the 60 s
    while proc.num_threads() > idle_threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.num_threads() <= idle_threads, "threads wait for the ACSE timeout"
