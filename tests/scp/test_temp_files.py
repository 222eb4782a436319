"""Nothing left behind, nothing of the user's touched, no write when the disk is nearly full,
and a health endpoint that answers at once while S3 is down."""

from __future__ import annotations

import time
from pathlib import Path

from pydicom.uid import CTImageStorage

from scp.storage import OWNED_SUBDIR, owned_name
from tests.support import wire
from tests.support.dicom_files import dataset_bytes, make_dataset, uid, write_part10
from tests.support.net import free_port
from tests.support.waiting import wait_until

CONTEXTS = [(1, CTImageStorage, [wire.EXPLICIT_LE])]


def leftovers(folder: Path) -> list[Path]:
    """Files in the SCPs' own temporary folders in folder, other than their locks."""
    return [p for p in folder.glob(OWNED_SUBDIR + "*/**/*") if p.name != ".lock"]


def _dataset(tmp_path: Path, name: str, side: int = 512) -> tuple[str, bytes]:
    sop = uid("tmp", name)
    ds = make_dataset(study=uid("tmp"), series=uid("tmp", 1), sop=sop, rows=side, columns=side)
    return sop, dataset_bytes(write_part10(ds, tmp_path / f"{name}.dcm"))


def test_transfers_cut_off_mid_dataset_leave_no_temporary_file(start_scp, tmp_path):
    """GIVEN C-STOREs whose connection ends (closed, or aborted) after half the dataset, and one
    refused instance, WHEN the associations end, THEN the SCP's temporary folder is empty."""
    scp = start_scp(max_pdu_size=16384)
    store = tmp_path / "store"
    sop, data = _dataset(tmp_path, "cut")
    for ending in ("close", "abort"):
        assoc = wire.RawAssociation(scp.port, CONTEXTS)
        pdus = wire.store_pdus(1, CTImageStorage, sop, data, assoc.accepted.max_pdu, 1)
        for raw in pdus[: len(pdus) // 2]:
            assoc.sock.sendall(raw)
        assert wait_until(lambda: len(leftovers(store)) == 1), "no temporary file while receiving"
        (part,) = leftovers(store)
        assert part.suffix == ".part", "a temporary file looks like an instance"
        if ending == "abort":
            assoc.sock.sendall(wire.pdu(wire.A_ABORT, b"\0" * 4))
        assoc.close()
        assert wait_until(lambda: not leftovers(store), 5), f"{ending}: temporary file left"
    assoc = wire.RawAssociation(scp.port, CONTEXTS)
    assert assoc.store(1, CTImageStorage, sop, data[:-100]) == 0xC210
    assoc.release()
    assert not leftovers(store)
    assert not list((store / "incoming").rglob("*.dcm"))


def test_only_the_scps_own_folder_inside_temp_dir_is_emptied(start_scp, tmp_path):
    """GIVEN TEMP_DIR naming a folder with the user's files, THEN they survive start-up, and the
    SCP receives in a folder of its own inside it, which a second SCP may not share."""
    temp = tmp_path / "user-temp"
    (temp / "keep").mkdir(parents=True)
    (temp / "keep" / "mine.dcm").write_bytes(b"user data")
    (temp / "notes.txt").write_text("user data")
    port = free_port()
    (temp / owned_name(port)).mkdir()
    (temp / owned_name(port) / "stale.part").write_bytes(b"left by a crash")
    scp = start_scp(temp_dir=str(temp), port=port)
    assert (temp / "keep" / "mine.dcm").read_bytes() == b"user data"
    assert (temp / "notes.txt").read_text() == "user data"
    assert not leftovers(temp), "leftovers of a previous run were kept"
    sop, data = _dataset(tmp_path, "ok", side=64)
    assoc = wire.RawAssociation(scp.port, CONTEXTS)
    assert assoc.store(1, CTImageStorage, sop, data) == 0x0000
    assoc.release()
    assert not leftovers(temp)
    try:
        start_scp(temp_dir=str(temp), storage=str(tmp_path / "other"), port=port)
    except RuntimeError as exc:
        assert "in use by another SCP" in str(exc)
    else:
        raise AssertionError("a second SCP started on the same TEMP_DIR")


def test_low_disk_refuses_before_writing_and_logs_once(start_scp, tmp_path):
    scp = start_scp(min_free_disk=2**50, workers=1, healthy=False)
    sop, data = _dataset(tmp_path, "full", side=64)
    for _ in range(2):  # logged once per process, not per association
        assoc = wire.RawAssociation(scp.port, CONTEXTS)
        assert [assoc.store(1, CTImageStorage, sop, data) for _ in range(3)] == [0xA701] * 3
        assoc.release()
    scp.terminate()
    assert not leftovers(tmp_path / "store")
    assert [x["event"] for x in scp.log_lines() if x.get("event") == "disk-low"] == ["disk-low"]


def test_health_answers_at_once_while_s3_is_down(start_scp, tmp_path):
    """GIVEN an S3 endpoint that accepts connections and never answers, and associations
    whose batches must be closed through it (each S3 call waits out its 60 s read timeout),
    WHEN /health is asked 40 times, THEN 95 % answer within 50 ms, none waits on S3, and each
    says the SCP is not ready (its storage check is still waiting on S3 too). (The
    rest is this shared 2-core machine's scheduling, which a worst-case bound cannot assume.)"""
    import socket

    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(100)
    endpoint = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
    try:
        scp = start_scp(storage="s3://bucket/", s3_endpoint_url=endpoint, workers=1, healthy=False)
        sop, data = _dataset(tmp_path, "s3", side=64)
        for _ in range(3):  # each opens a batch (its marker hangs on S3), then is aborted
            assoc = wire.RawAssociation(scp.port, CONTEXTS, timeout=2)
            assoc.sock.sendall(b"".join(wire.store_pdus(1, CTImageStorage, sop, data, 0, 1)))
            assoc.sock.sendall(wire.pdu(wire.A_ABORT, b"\0" * 4))
            assoc.close()
        latencies = []
        for _ in range(40):
            started = time.monotonic()
            code, body = scp.health(timeout=5)
            latencies.append(time.monotonic() - started)
            assert (code, body["status"]) == (503, "starting"), body
            time.sleep(0.05)
        latencies.sort()
        p95, worst = latencies[int(len(latencies) * 0.95) - 1], latencies[-1]
        print(f"/health with S3 down: p95 {p95 * 1000:.1f} ms, worst {worst * 1000:.1f} ms")
        assert p95 < 0.05, f"/health p95 {p95 * 1000:.0f} ms with S3 down"
        assert worst < 1.0, f"/health waited {worst:.1f} s: on S3?"
    finally:
        blackhole.close()


def test_malformed_message_orders_leave_no_file_while_the_scp_runs(start_scp, tmp_path):
    """GIVEN message orders a hostile peer sends on an accepted association (a C-ECHO that
    announces a dataset followed by a C-STORE-RQ, which stock pynetdicom decodes into its own
    tmp*.dcm; two C-STORE-RQ commands before one dataset; the stock decoder's C-STORE-RQ),
    WHEN each association is cut off or released, THEN while the SCP keeps running its
    temporary folder holds nothing."""
    scp = start_scp(workers=1)
    store = tmp_path / "store"
    sop, data = _dataset(tmp_path, "orders", side=64)
    command = wire.p_data(wire.pdv(1, wire.c_store_rq(1, CTImageStorage, sop), True, True))
    stock_rq = wire.c_store_rq(1, CTImageStorage, sop, b"COMMENT ")
    stock = wire.p_data(wire.pdv(1, stock_rq, True, True))
    echo_rq = wire.command_announcing_a_dataset(0x0030, "1.2.840.10008.1.1")
    echo = wire.p_data(wire.pdv(1, echo_rq, True, True))
    first = wire.p_data(wire.pdv(1, data[: len(data) // 2], False, False))
    last = wire.p_data(wire.pdv(1, data, False, True))
    orders = [[echo, command, first], [echo, command, last], [command, command, first]]
    orders += [[command, command, last], [stock, first], [echo, stock, first]]
    for order in orders:
        for release in (False, True):
            assoc = wire.RawAssociation(scp.port, CONTEXTS, timeout=5)
            for raw in order:
                assoc.sock.sendall(raw)
            if release:
                assoc.sock.sendall(wire.pdu(wire.A_RELEASE_RQ, b"\0" * 4))
            time.sleep(0.1)
            assoc.close()
    assert wait_until(lambda: not leftovers(store), 5), [p.name for p in leftovers(store)]
    assert scp.proc.poll() is None


def test_start_up_removes_the_folders_of_dead_scps_only(start_scp, tmp_path):
    """GIVEN `.storescp-tmp-{port}` folders of an SCP that died (a half-written part with a
    DICOM preamble, its lock free) and of a live one (its lock held), WHEN an SCP starts on
    another port, THEN the dead one's folder is removed and the live one's is untouched."""
    import fcntl
    import os

    store = tmp_path / "store"
    dead, live = store / owned_name(free_port()), store / owned_name(free_port())
    for folder in (dead, live):
        folder.mkdir(parents=True)
        (folder / ".lock").touch()
        (folder / "a1b2.part").write_bytes(b"\0" * 128 + b"DICM" + b"\2\0" * 100)
    fd = os.open(live / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        scp = start_scp()
        assert not dead.exists(), "a dead SCP's temporary folder was kept"
        assert (live / "a1b2.part").exists(), "a live SCP's temporary folder was emptied"
        removed = [x for x in scp.log_lines() if x.get("event") == "stale-temp-removed"]
        assert [x["folders"] for x in removed] == [[str(dead)]]
    finally:
        os.close(fd)
