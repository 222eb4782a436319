"""Closing an association's batches once it has ended, always on threads of this module's own:
a closer per ended association, and a reaper for associations whose thread died without a
connection-closed event (pynetdicom's DUL dies on some protocol errors). Health and metrics never
wait on S3 through here."""

from __future__ import annotations

import logging
import threading
import time

from pynetdicom.association import Association

from scp.registry import AssociationRegistry

LOG = logging.getLogger("scp")
REAP_INTERVAL = 0.5  # seconds between looks for associations that ended unannounced


class BatchCloser:
    """Closes batches of ended associations and logs one line per association."""

    def __init__(self, registry: AssociationRegistry, join_timeout: float) -> None:
        self.registry = registry
        self.join_timeout = join_timeout
        self.shutting_down = False  # drain deadline passed: batches close as "shutdown"
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._reap_loop, name="Reaper", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _reap_loop(self) -> None:
        while not self._stop.wait(REAP_INTERVAL):
            self.reap()

    def reap(self) -> None:
        for assoc in self.registry.ended():
            self.finish(assoc, join=False)
        self.registry.refresh()

    def ended(self, assoc: Association) -> None:
        """The connection closed (DUL thread): close batches on a thread of their own once the
        association's thread ends, so no C-STORE is still being stored when a manifest is
        written."""
        if self.registry.get(assoc) is None:
            return
        closer = threading.Thread(target=self.finish, args=(assoc,), daemon=True, name="Closer")
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [closer]
        closer.start()

    def finish(self, assoc: Association, join: bool = True) -> None:
        if join:
            assoc.join(timeout=self.join_timeout)
        state = self.registry.claim(assoc)
        if state is None:
            return
        if self.shutting_down:
            outcome = "shutdown"
        else:
            outcome = "released" if assoc.is_released else "aborted"
        closed = state.batches.close_all(outcome)
        LOG.info(
            "association ended",
            extra={
                "fields": {
                    "event": "association",
                    "outcome": outcome,
                    "callingAETitle": state.calling_ae,
                    "calledAETitle": state.called_ae,
                    "peer": state.peer,
                    "instances": state.instances,
                    "bytes": state.bytes,
                    "failures": state.failures,
                    "batches": closed,
                    "durationMs": round((time.monotonic() - state.started) * 1000),
                }
            },
        )
        self.registry.forget(assoc)

    def abort_all(self) -> None:
        """Drain deadline passed: abort what still runs; its batches close as shutdown."""
        self.shutting_down = True
        for assoc in self.registry.associations():
            if assoc.is_alive():
                assoc.abort()

    def finish_all(self, timeout: float) -> None:
        """Wait for closers in flight, then close whatever is still open."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for assoc in self.registry.associations():
            self.finish(assoc, join=False)
        self.stop()
