"""A well-behaved modality: pynetdicom storing instances one by one, every status recorded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path

from pynetdicom import AE
from pynetdicom.association import Association

from bench.datasets import SC_IMAGE
from tests.reliability.instances import Instance
from tests.support.wire import EXPLICIT_LE


class SteadySender(threading.Thread):
    """Stores `instances` in order on one association, or re-associating after a drop.

    Runs until `instances` ends or `finish()` is called; `sent` keeps every instance tried.
    `statuses` maps each SOP Instance UID tried to its C-STORE status, or None when no response
    came (association lost or refused). With reassociate=False a lost association ends the run
    and sets `broken`.
    """

    def __init__(
        self,
        port: int,
        instances: Iterable[Instance],
        folder: Path,
        reassociate: bool = False,
        interval: float = 0.0,
    ) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.instances = instances
        self.folder = folder
        self.sent: dict[str, Instance] = {}
        self.reassociate = reassociate
        self.interval = interval
        self.statuses: dict[str, int | None] = {}
        self.associations = 0
        self.broken = False
        self.done = threading.Event()  # set by the test to stop early

    @property
    def acked(self) -> set[str]:
        return {uid for uid, status in self.statuses.items() if status == 0x0000}

    def wait_for_acks(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count:
            if time.monotonic() > deadline or not self.is_alive():
                raise AssertionError(f"{len(self.acked)} of {count} instances acknowledged")
            time.sleep(0.01)

    def _associate(self, ae: AE) -> Association | None:
        assoc = ae.associate("127.0.0.1", self.port, ae_title="STORESCP")
        if assoc.is_established:
            self.associations += 1
            return assoc
        time.sleep(0.1)
        return None

    def run(self) -> None:
        ae = AE(ae_title="RELIABILITY")
        ae.add_requested_context(SC_IMAGE, EXPLICIT_LE)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
        assoc = None
        try:
            for instance in self.instances:
                if self.done.is_set():
                    break
                self.sent[instance.sop_uid] = instance
                if assoc is None or not assoc.is_established:
                    if assoc is not None and not self.reassociate:
                        self.broken = True
                        break
                    assoc = self._associate(ae)
                    if assoc is None:
                        self.statuses[instance.sop_uid] = None
                        continue
                try:
                    response = assoc.send_c_store(instance.write(self.folder))
                except RuntimeError:  # the association dropped between the check and the send
                    response = None
                self.statuses[instance.sop_uid] = response.get("Status") if response else None
                if self.interval:
                    time.sleep(self.interval)
        finally:
            if assoc is not None and assoc.is_established:
                assoc.release()
            self.done.set()

    def finish(self, timeout: float = 60.0) -> None:
        """Stop after the store in flight and wait for the thread."""
        self.done.set()
        self.join(timeout)
        assert not self.is_alive(), "the sender did not stop"
