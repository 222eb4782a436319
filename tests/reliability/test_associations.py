"""300 associations at once, each storing; the 301st is refused as the standard says.

`make test` runs the same with a limit of 30; `make reliability` with 300.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.reliability.conftest import FULL
from tests.reliability.instances import folder_objects, make_instances
from tests.support import wire
from tests.support.figures import report_figure

pytestmark = pytest.mark.slow  # real processes; `make reliability` runs them at full size

LIMIT = 300 if FULL else 30
# A-ASSOCIATE-RJ: rejected-transient (2), service-provider presentation (3), local limit (2).
LOCAL_LIMIT_EXCEEDED = (2, 3, 2)


def test_300_concurrent_associations_store_and_the_301st_is_refused(start_scp, tmp_path: Path):
    storage = tmp_path / "store"
    # Idle associations are not under test here: keep the network timeout out of the way.
    scp = start_scp(str(storage), "--maximum-associations", str(LIMIT), "--network-timeout", "900")
    idle_rss = scp.rss()
    instances = make_instances(series=1, count=LIMIT)
    contexts = [(1, instances[0].sop_class, [wire.EXPLICIT_LE])]
    associations, statuses = [], []
    started = time.monotonic()
    try:
        for instance in instances:
            association = wire.RawAssociation(scp.port, contexts)
            associations.append(association)
            assert association.kind == wire.A_ASSOCIATE_AC, f"association {len(associations)}"
            statuses.append(
                association.store(1, instance.sop_class, instance.sop_uid, instance.dataset)
            )
        opened = time.monotonic() - started
        busy_rss = scp.rss()

        extra = wire.RawAssociation(scp.port, contexts)
        extra.close()
        assert extra.rejection == LOCAL_LIMIT_EXCEEDED
        for association in associations:
            association.release()
    finally:
        for association in associations:
            association.close()

    assert statuses == [0x0000] * LIMIT
    stored = folder_objects(storage)
    assert sorted(stored) == sorted(i.sop_uid for i in instances)
    # Slots are given back: a new association is accepted once the others have released.
    after = wire.RawAssociation(scp.port, contexts)
    assert after.kind == wire.A_ASSOCIATE_AC
    after.release()
    report_figure(
        f"{LIMIT} associations: RSS idle {idle_rss / 2**20:.0f} MiB, "
        f"with {LIMIT} open {busy_rss / 2**20:.0f} MiB; opening and storing took {opened:.1f} s; "
        f"association {LIMIT + 1} rejected with {extra.rejection}"
    )
