"""Healthy means able to store: a periodic proof that the store takes an object.

One process runs the check (the only one, or the first worker) and records its verdict in shared
memory, which /health reads in whichever process serves it: a check that hangs on the network
never delays an answer to the load balancer.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading

from scp.storage import StorageError, Store

LOG = logging.getLogger("scp")
REASON_BYTES = 512  # room for the reason in shared memory; longer reasons are cut


class StoreCheck:
    """The last verdict: not checked yet (None), able to store (''), or why not."""

    def __init__(self) -> None:
        self._checked = multiprocessing.Value("b", 0)
        self._reason = multiprocessing.Array("c", REASON_BYTES)

    @property
    def problem(self) -> str | None:
        """None until the first check ends, then '' when the store took an object, else why not."""
        with self._checked.get_lock():
            if not self._checked.value:
                return None
            return self._reason.value.decode(errors="replace")

    def record(self, problem: str) -> None:
        """Keep a verdict; log it when it changes (a failure at WARNING, once until it clears)."""
        previous = self.problem
        data = problem.encode()[: REASON_BYTES - 1]
        with self._checked.get_lock():
            self._reason.value = data
            self._checked.value = 1
        if problem and problem != previous:
            LOG.warning(
                "storage check failed: unhealthy until it passes",
                extra={"fields": {"event": "storage-unavailable", "error": problem}},
            )
        elif not problem and previous:
            LOG.info("storage check passed", extra={"fields": {"event": "storage-available"}})

    def run_once(self, store: Store, min_free_disk: int) -> None:
        try:
            store.check(min_free_disk)
        except StorageError as exc:
            self.record(str(exc))
        else:
            self.record("")

    def start(
        self, store: Store, min_free_disk: int, interval: float, stop: threading.Event
    ) -> threading.Thread:
        """Check now, then every `interval` seconds until `stop` is set."""

        def loop() -> None:
            while True:
                self.run_once(store, min_free_disk)
                if stop.wait(interval):
                    return

        thread = threading.Thread(target=loop, name="StoreCheck", daemon=True)
        thread.start()
        return thread
