"""Both slot implementations, directly: MaximumAssociations is the most a process (LocalSlots, one
worker: every task of 1 vCPU or less) or the workers together (SharedSlots) ever admit."""

from __future__ import annotations

import multiprocessing

import pytest

from scp.slots import LocalSlots, SharedSlots

LIMIT = 3


def test_local_slots_admit_up_to_the_limit_and_not_one_more():
    slots = LocalSlots()
    assert slots.total() == 0
    for live in range(LIMIT):
        assert slots.admit(live, LIMIT), f"refused with {live} live of {LIMIT}"
        assert slots.total() == live + 1
    assert not slots.admit(LIMIT, LIMIT)
    assert slots.total() == LIMIT, "a refusal takes no slot"
    assert not slots.admit(LIMIT + 1, LIMIT)
    slots.update(LIMIT - 1)  # one association ended
    assert slots.total() == LIMIT - 1
    assert slots.admit(LIMIT - 1, LIMIT)
    assert slots.total() == LIMIT


def test_local_slots_with_a_limit_of_one():
    slots = LocalSlots()
    assert slots.admit(0, 1)
    assert not slots.admit(1, 1)
    slots.update(0)
    assert slots.total() == 0


@pytest.fixture
def shared() -> tuple[SharedSlots, SharedSlots]:
    counts = multiprocessing.Array("i", 2)
    return SharedSlots(counts, 0), SharedSlots(counts, 1)


def test_shared_slots_count_every_worker_against_one_limit(shared):
    first, second = shared
    assert first.admit(0, LIMIT)
    assert second.admit(0, LIMIT)
    assert first.admit(1, LIMIT)
    assert (first.total(), second.total()) == (LIMIT, LIMIT)
    assert not second.admit(1, LIMIT), "the workers together went over the limit"
    assert not first.admit(2, LIMIT)
    assert list(first.counts) == [2, 1], "a refusal takes no slot"
    first.update(1)  # an association of the first worker ended
    assert second.total() == LIMIT - 1
    assert second.admit(1, LIMIT)
    assert list(second.counts) == [1, 2]


def test_shared_slots_publish_each_workers_own_count(shared):
    first, second = shared
    first.update(2)
    second.update(0)
    assert list(first.counts) == [2, 0]
    assert not first.admit(2, 2)
    assert list(first.counts) == [2, 0]
    second.update(1)
    assert first.total() == second.total() == 3
