"""Faults mid-run: the S3 server stops and comes back; the SCP is SIGKILLed and restarted.

Afterwards every instance acknowledged with 0x0000 is stored byte for byte, and every object
in the store is a complete instance that was sent (no partial object looks like one).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.reliability.conftest import FULL
from tests.reliability.instances import (
    Instance,
    dataset_of,
    folder_objects,
    iter_instances,
    looks_complete,
    s3_objects,
)
from tests.reliability.sender import SteadySender
from tests.support.aws import moto_server
from tests.support.figures import report_figure

pytestmark = pytest.mark.slow  # real processes; `make reliability` runs them at full size

BUCKET = "reliability-faults"
KILLS = 5 if FULL else 1
SIDE = 1024  # 1 MiB of pixels: a kill lands inside a transfer more often than not


def check_store(stored: dict[str, bytes], sender: SteadySender) -> None:
    """Acknowledged means stored intact; stored means complete and identical to what was sent."""
    missing = sender.acked - set(stored)
    assert not missing, f"{len(missing)} acknowledged instances are missing"
    for uid, raw in stored.items():
        sent: Instance | None = sender.sent.get(uid)
        assert sent is not None, f"{uid} stored but never sent"
        assert looks_complete(raw), f"{uid} is stored incomplete"
        assert dataset_of(raw) == sent.dataset, f"{uid} differs from what was sent"


def test_scp_killed_mid_association_and_restarted(start_scp, tmp_path: Path):
    storage = tmp_path / "store"
    scp = start_scp(str(storage))
    sender = SteadySender(scp.port, iter_instances(series=4, side=SIDE), tmp_path, reassociate=True)
    sender.start()
    for _ in range(KILLS):
        sender.wait_for_acks(len(sender.acked) + 5)
        scp.kill()
        time.sleep(0.3)
        scp.start()
    sender.wait_for_acks(len(sender.acked) + 5)
    sender.finish()

    assert sender.associations >= KILLS + 1
    check_store(folder_objects(storage), sender)
    others = [p for p in storage.rglob("*") if p.is_file() and p.suffix not in (".dcm", ".json")]
    assert not [p for p in others if looks_complete(p.read_bytes())], "a stray file is an instance"
    lost = [uid for uid, status in sender.statuses.items() if status is None]
    report_figure(
        f"SIGKILL: {len(sender.acked)} acknowledged and intact, {len(lost)} sends unanswered, "
        f"{sender.associations} associations"
    )


def test_s3_server_stopped_mid_run_and_restarted(start_scp, tmp_path: Path):
    with moto_server() as moto:
        moto.client("s3").create_bucket(Bucket=BUCKET)
        scp = start_scp(f"s3://{BUCKET}/", "--s3-endpoint-url", moto.endpoint)
        sender = SteadySender(
            scp.port, iter_instances(series=5, side=SIDE), tmp_path, reassociate=True
        )
        sender.start()
        sender.wait_for_acks(5)
        moto.stop()  # objects survive: they live in this process's moto backend
        outage_started = len(sender.statuses)
        time.sleep(2)
        deadline = time.monotonic() + 30  # a loaded machine answers slower: see two at least
        while len(sender.statuses) < outage_started + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        during_outage = dict(list(sender.statuses.items())[outage_started:])  # S3 still down
        with moto_server(moto.port) as again:
            sender.wait_for_acks(len(sender.acked) + 5)
            sender.finish()
            stored = s3_objects(again.client("s3"), BUCKET)

    check_store(stored, sender)
    outage = list(during_outage.values())
    # Storage down is "out of resources" (0xA700: the modality retries later), never a silence,
    # an abort or another failure; and nothing is acknowledged while S3 cannot store it, save
    # the one instance whose upload finished as the server stopped.
    assert len(outage) >= 2, f"only {len(outage)} sends answered during the outage"
    assert set(outage) <= {0x0000, 0xA700}, [hex(s) if s is not None else s for s in outage]
    assert 0xA700 in outage
    assert 0x0000 not in outage[1:], "acknowledged while S3 was down"
    failed = [s for s in outage if s not in (0x0000, None)]
    report_figure(
        f"S3 outage: {len(sender.acked)} acknowledged and intact; during the outage "
        f"{len(during_outage)} sends, statuses {sorted({hex(s or 0) for s in failed})}"
    )
