"""The associations this process accepted: their state, and how many run (for admission,
health and metrics). Reading the count never waits on anything but a lock."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from pynetdicom.association import Association

from scp.batches import AssociationBatches
from scp.slots import LocalSlots


@dataclass
class AssociationState:
    """What the SCP tracks for one accepted association."""

    calling_ae: str
    called_ae: str
    peer: str
    batches: AssociationBatches
    started: float = field(default_factory=time.monotonic)
    instances: int = 0
    bytes: int = 0
    failures: int = 0
    finished: bool = False


class AssociationRegistry:
    """Accepted associations and their states; publishes the live count to the slots."""

    def __init__(self, slots: LocalSlots | None = None) -> None:
        self.slots = slots or LocalSlots()
        self._lock = threading.Lock()
        self._states: dict[Association, AssociationState] = {}

    def _live(self) -> int:
        """Accepted associations whose thread still runs. Call with the lock held."""
        return sum(1 for a in self._states if a.is_alive())

    def admit(self, assoc: Association, state: AssociationState, limit: int) -> bool:
        """Register assoc if a slot is free (across worker processes)."""
        with self._lock:
            if not self.slots.admit(self._live(), limit):
                return False
            self._states[assoc] = state
            return True

    def get(self, assoc: Association) -> AssociationState | None:
        return self._states.get(assoc)

    def associations(self) -> list[Association]:
        with self._lock:
            return list(self._states)

    def ended(self) -> list[Association]:
        """Associations whose thread ended but whose batches are not closed yet."""
        with self._lock:
            return [a for a, st in self._states.items() if not st.finished and not a.is_alive()]

    def claim(self, assoc: Association) -> AssociationState | None:
        """The state of assoc for whoever finishes it first; None for everyone else."""
        with self._lock:
            state = self._states.get(assoc)
            if state is None or state.finished:
                return None
            state.finished = True
            return state

    def forget(self, assoc: Association) -> None:
        with self._lock:
            self._states.pop(assoc, None)
            self.slots.update(self._live())

    def refresh(self) -> None:
        """Publish the live count (associations end without telling us)."""
        with self._lock:
            self.slots.update(self._live())

    def active_count(self) -> int:
        """Associations running now, across worker processes, as last published."""
        return self.slots.total()
