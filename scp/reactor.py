"""A per-association fix for a race in pynetdicom's reactor, on the associations we request
(C-MOVE sub-operations, storage-commitment reports).

The race (pynetdicom 3.0.4, association.py; issues 435 and 875): a thread sending a DIMSE request
(send_c_store, send_n_event_report, release) pauses the association's reactor by clearing
`_reactor_checkpoint` and waiting until `_is_paused` is true. The reactor loops on
`_is_paused = True; _reactor_checkpoint.wait(); _is_paused = False; dimse.get_msg()`. When the
sender clears the checkpoint just after the reactor's wait() returned, it still reads the
reactor's `_is_paused = True`, sends, and the reactor, running on, takes the response off the
queue ("Received unexpected C-STORE service message"): the sender waits DIMSE_TIMEOUT and the
association is aborted. Measured here: 2 of 3 C-MOVEs of 300 instances failed so once our
outgoing connections had TCP_NODELAY (scp/outgoing.py), the responses then coming back fast
enough to fall in the window.

The fix replaces that one association's checkpoint with a `SteadyCheckpoint`, from the
association's EVT_ACCEPTED handler (pynetdicom's supported seam; it runs in the association's
thread before the reactor starts): clearing it from another thread also sets `_is_paused`
false unless the reactor is blocked in wait(), and the reactor marks itself paused under the
same lock as it blocks, so a sender proceeds only once the reactor really waits. The reactor's
own thread (a handler sending on it, a network-timeout release) keeps pynetdicom's behaviour.
Installed only on the pynetdicom version it was written for (WRITTEN_FOR); elsewhere the
association keeps pynetdicom's checkpoint and a warning is logged once.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pynetdicom
from pynetdicom import evt
from pynetdicom.association import Association

LOG = logging.getLogger("scp")
WRITTEN_FOR = "3.0.4"
_warned = threading.Event()


class SteadyCheckpoint(threading.Event):
    """`_reactor_checkpoint` of one association: see the module docstring."""

    def __init__(self, assoc: Association) -> None:
        super().__init__()
        self._assoc = assoc
        self._lock = threading.Lock()
        self._reactor_waits = False
        self.set()

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None:  # pynetdicom's reactor waits without one
            return super().wait(timeout)
        while True:
            with self._lock:
                if self.is_set():
                    self._reactor_waits = False
                    return True
                self._reactor_waits = True
                self._assoc._is_paused = True  # the pause flag senders read
            super().wait()

    def clear(self) -> None:
        with self._lock:
            super().clear()
            elsewhere = threading.current_thread() is not self._assoc
            if elsewhere and not self._reactor_waits:
                self._assoc._is_paused = False  # until the reactor really waits


def steady_checkpoint(assoc: Association) -> None:
    """Give `assoc` a SteadyCheckpoint (before its reactor starts), on WRITTEN_FOR only."""
    if pynetdicom.__version__ != WRITTEN_FOR:
        if not _warned.is_set():
            _warned.set()
            LOG.warning(
                "reactor fix not installed",
                extra={"fields": {"event": "reactor-fix-skipped",
                                  "version": pynetdicom.__version__}},
            )  # fmt: skip
        return
    assoc._reactor_checkpoint = SteadyCheckpoint(assoc)  # see the module docstring


def _on_accepted(event: evt.Event) -> None:
    steady_checkpoint(event.assoc)


# For AE.associate(evt_handlers=...) of associations we request.
REACTOR_HANDLERS: list[tuple[Any, Any]] = [(evt.EVT_ACCEPTED, _on_accepted)]
