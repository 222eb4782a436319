"""Malformed input from many peers while a well-behaved modality keeps storing."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.runner import RssSampler
from scp.association import PART_SUFFIX
from scp.storage import OWNED_SUBDIR
from scp.storage.local import PROBE_PREFIX
from tests.reliability.conftest import FULL
from tests.reliability.fuzz import Case, cases
from tests.reliability.instances import dataset_of, folder_objects, iter_instances, make_instances
from tests.reliability.sender import SteadySender
from tests.support import wire
from tests.support.figures import report_figure
from tests.support.scp import ScpProcess

pytestmark = pytest.mark.slow  # real processes; `make reliability` runs them at full size
COUNT = 10_000 if FULL else 800
SEED = 5
# Bounded memory: the second half of the inputs may not raise the peak by more than this over
# the first half (pending connections are capped, so the peak must plateau), and the peak stays
# under an absolute ceiling whatever the sample size.
MEMORY_GROWTH_LIMIT = 64 * 2**20
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
            if case.after_accept:
                kind, _ = wire.read_pdu(sock)
                if kind != wire.A_ASSOCIATE_AC:
                    return f"{case.kind}: association not accepted (PDU type {kind:#04x})"
                sock.sendall(case.after_accept)
        except (OSError, wire.WireError):
            return None  # the server hung up first: acceptable for any malformed input
        if case.expects_refusal:
            return refusal_problem(sock, case)
        sock.settimeout(0.05)
        with contextlib.suppress(OSError):
            sock.recv(65536)
    return None


@dataclass
class FuzzRun:
    """What happened while the malformed inputs were sent."""

    storage: Path
    sender: SteadySender
    problems: list[str]
    acked_during_fuzz: int
    baseline: int
    peaks: list[int]  # peak RSS over the first and over the second half of the inputs
    scp: ScpProcess


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory) -> Iterator[FuzzRun]:
    """Our SCP receives COUNT malformed inputs (8 peers at a time) while one modality stores."""
    folder = tmp_path_factory.mktemp("fuzz")
    scp = ScpProcess(log_path=folder / "scp.log", storage=str(folder / "store")).start()
    try:
        sender = SteadySender(scp.port, iter_instances(series=2), folder, interval=0.02)
        sender.start()
        sender.wait_for_acks(3)
        fuzz_instances = make_instances(series=3, count=16, side=32)
        inputs = list(cases(SEED, COUNT, lambda i: fuzz_instances[i % len(fuzz_instances)]))
        baseline, problems, peaks = scp.rss(), [], []
        with ThreadPoolExecutor(max_workers=8) as pool:
            for half in (inputs[: COUNT // 2], inputs[COUNT // 2 :]):
                sampler = RssSampler(scp.proc.pid)
                sampler.start()
                problems += [p for p in pool.map(lambda c: send_case(scp.port, c), half) if p]
                peaks.append(sampler.stop())
        acked_during_fuzz = len(sender.acked)
        sender.finish()
        yield FuzzRun(folder / "store", sender, problems, acked_during_fuzz, baseline, peaks, scp)
    finally:
        scp.stop()


def test_malformed_input_is_refused_while_a_good_association_is_served(fuzz_run: FuzzRun):
    sender = fuzz_run.sender
    assert fuzz_run.problems == []
    assert not sender.broken, "the well-behaved association was dropped during the fuzzing"
    assert sender.associations == 1
    assert set(sender.statuses.values()) == {0x0000}
    assert fuzz_run.acked_during_fuzz >= 10
    stored = folder_objects(fuzz_run.storage)
    assert set(stored) == sender.acked, "something other than the good instances was stored"
    assert all(dataset_of(raw) == sender.sent[uid].dataset for uid, raw in stored.items())
    report_figure(
        f"fuzz: {COUNT} malformed inputs, {len(sender.acked)} good instances stored meanwhile"
    )


def test_memory_stays_bounded_under_malformed_input(fuzz_run: FuzzRun):
    first, second = fuzz_run.peaks
    report_figure(
        f"fuzz memory: RSS {fuzz_run.baseline / 2**20:.0f} MiB before, peak "
        f"{first / 2**20:.0f} MiB over the first half, {second / 2**20:.0f} MiB over the second"
    )
    assert second - first < MEMORY_GROWTH_LIMIT, "memory grows with the number of inputs"
    assert second < MEMORY_LIMIT


def _left(storage: Path) -> list[Path]:
    """Files in any SCP's temporary folder under storage, other than a lock and the periodic
    storage check's probe (written, fsynced and removed at once: on a loaded machine it can be
    caught in between)."""
    return [
        p
        for p in storage.glob(OWNED_SUBDIR + "*/**/*")
        if p.is_file() and p.name != ".lock" and not p.name.startswith(PROBE_PREFIX)
    ]


def _settle(storage: Path) -> tuple[int, int]:
    """(files, bytes) left once associations still ending have closed their files."""
    deadline = time.monotonic() + 10
    while _left(storage) and time.monotonic() < deadline:
        time.sleep(0.1)
    files = _left(storage)
    return len(files), sum(p.stat().st_size for p in files)


def test_malformed_input_leaves_no_temporary_file(fuzz_run: FuzzRun):
    """After every malformed input and aborted transfer (message orders that reach pynetdicom's
    stock decoder included), while the SCP still runs, its own temporary folder holds nothing
    but its lock (the good sender has finished)."""
    files, size = _settle(fuzz_run.storage)
    report_figure(f"fuzz leftovers: {files} temporary files, {size} bytes after {COUNT} inputs")
    assert (files, size) == (0, 0)


def test_a_restart_on_another_port_removes_the_dead_scps_folder(fuzz_run: FuzzRun, tmp_path):
    """GIVEN the fuzzed SCP SIGKILLed in the middle of a transfer (a half-written part with a
    DICOM preamble in its `.storescp-tmp-{port}`), WHEN an SCP starts on another port over the
    same folder, THEN the dead SCP's folder is gone and no file or byte is left. (Runs last:
    it ends the module's SCP.)"""
    old = fuzz_run.scp
    instance = make_instances(series=1, count=1, side=1024)[0]  # 2 MiB: past write buffers
    assoc = wire.RawAssociation(old.port, [(1, instance.sop_class, [wire.EXPLICIT_LE])])
    pdus = wire.store_pdus(1, instance.sop_class, instance.sop_uid, instance.dataset, 4096, 1)
    for raw in pdus[: len(pdus) // 2]:
        assoc.sock.sendall(raw)
    # The part past its preamble. Other files come and go beside it (the batch's open marker is
    # written through a temporary `.json` in the same folder): wait for the `.part` alone.
    deadline = time.monotonic() + 10
    parts: list[Path] = []
    while time.monotonic() < deadline:
        parts = [p for p in _left(fuzz_run.storage) if p.name.endswith(PART_SUFFIX)]
        if len(parts) == 1 and parts[0].stat().st_size > 132:
            break
        time.sleep(0.05)
    (part,) = parts
    assert part.read_bytes()[128:132] == b"DICM"
    old.kill()
    assoc.close()
    with ScpProcess(log_path=tmp_path / "restarted.log", storage=str(fuzz_run.storage)):
        assert not part.parent.exists(), "the dead SCP's temporary folder was kept"
        files, size = _settle(fuzz_run.storage)
    report_figure(f"fuzz restart on another port: {files} temporary files, {size} bytes left")
    assert (files, size) == (0, 0)
