"""Association slots: how many associations run, in this process or across worker processes."""

from __future__ import annotations

from multiprocessing.sharedctypes import SynchronizedArray


class LocalSlots:
    """One process: the live count is the whole count."""

    def __init__(self) -> None:
        self._live = 0

    def admit(self, live: int, limit: int) -> bool:
        """Given this process's live associations, take a slot if the total stays within limit."""
        if live >= limit:
            self._live = live
            return False
        self._live = live + 1
        return True

    def update(self, live: int) -> None:
        self._live = live

    def total(self) -> int:
        return self._live


class SharedSlots(LocalSlots):
    """Worker `index` of several: each publishes its live count in shared memory, and admission
    checks the sum under one lock, so MaximumAssociations holds across the workers."""

    def __init__(self, counts: SynchronizedArray, index: int) -> None:
        self.counts, self.index = counts, index

    def admit(self, live: int, limit: int) -> bool:
        with self.counts.get_lock():
            others = sum(self.counts) - self.counts[self.index]
            admitted = others + live < limit
            self.counts[self.index] = live + (1 if admitted else 0)
            return admitted

    def update(self, live: int) -> None:
        with self.counts.get_lock():
            self.counts[self.index] = live

    def total(self) -> int:
        with self.counts.get_lock():
            return sum(self.counts)
