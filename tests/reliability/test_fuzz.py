"""Malformed input from many peers while a well-behaved modality keeps storing."""

from __future__ import annotations

import contextlib
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.runner import RssSampler
from tests.reliability import wire
from tests.reliability.conftest import FULL, report
from tests.reliability.fuzz import Case, cases
from tests.reliability.instances import dataset_of, folder_objects, iter_instances, make_instances
from tests.reliability.sender import SteadySender

COUNT = 10_000 if FULL else 800
SEED = 5
# Absolute ceiling for the SCP's resident memory while under attack: it must not grow with the
# number of malformed inputs (pending connections are capped), whatever the sample size.
MEMORY_LIMIT = 512 * 2**20


def refusal_problem(sock: socket.socket, case: Case) -> str | None:
    """Read until the server closes; say what is wrong if a C-STORE got a success status."""
    try:
        while True:
            kind, body = wire.read_pdu(sock)
            if kind == wire.P_DATA_TF and wire.status_of(body) == 0x0000:
                return f"{case.kind}: C-STORE answered 0x0000"
    except (OSError, wire.WireError):
        return None


def send_case(port: int, case: Case) -> str | None:
    """Send one case on a fresh connection; None when the server's reaction is acceptable."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(case.payload)
        except OSError:
            return None  # the server hung up first: acceptable for any malformed input
        if case.expects_refusal:
            return refusal_problem(sock, case)
        sock.settimeout(0.05)
        with contextlib.suppress(OSError):
            sock.recv(65536)
    return None


def test_malformed_input_is_refused_while_a_good_association_is_served(start_scp, tmp_path: Path):
    storage = tmp_path / "store"
    scp = start_scp(str(storage))
    sender = SteadySender(scp.port, iter_instances(series=2), tmp_path, interval=0.02)
    sender.start()
    sender.wait_for_acks(3)
    fuzz_instances = make_instances(series=3, count=16, side=32)
    sampler = RssSampler(scp.process.pid)
    baseline = scp.rss()
    sampler.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        inputs = cases(SEED, COUNT, lambda i: fuzz_instances[i % len(fuzz_instances)])
        problems = [p for p in pool.map(lambda c: send_case(scp.port, c), inputs) if p]
    peak = sampler.stop()
    acked_during_fuzz = len(sender.acked)
    sender.finish()

    assert problems == []
    assert not sender.broken, "the well-behaved association was dropped during the fuzzing"
    assert sender.associations == 1
    assert set(sender.statuses.values()) == {0x0000}
    assert acked_during_fuzz >= 10
    stored = folder_objects(storage)
    assert set(stored) == sender.acked, "something other than the good instances was stored"
    assert all(dataset_of(raw) == sender.sent[uid].dataset for uid, raw in stored.items())
    assert peak < MEMORY_LIMIT
    report(
        f"fuzz: {COUNT} malformed inputs, {len(sender.acked)} good instances stored meanwhile; "
        f"RSS {baseline / 2**20:.0f} MiB before, peak {peak / 2**20:.0f} MiB"
    )
