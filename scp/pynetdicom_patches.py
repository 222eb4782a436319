"""Event-driven waits for pynetdicom's polling reactors.

pynetdicom's DUL and association threads poll: each idle loop sleeps a fixed 1 ms. A C-STORE
crosses those loops several times (every PDU that arrives after the DUL caught up, the hand-over
to the association thread, the response going back), so an instance waits milliseconds doing
nothing. These waits keep pynetdicom's 1 ms cadence as an upper bound but return as soon as there
is work: socket data or an outgoing PDU for the DUL, a decoded message for the association.
Idle CPU is unchanged; only the latency goes.

Installed once at start-up by `install()`; written against pynetdicom 3.0 (pinned) and checked
by every SCP test, which all run with it.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time as _time
from types import ModuleType
from typing import Any

import pynetdicom.association as _association_module
import pynetdicom.dul as _dul_module
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider

REACTOR_DELAY = 0.001  # the association reactor's fixed sleep in pynetdicom 3.0


class _Waker:
    """An eventfd a thread can wait on in select(); safe to signal after it is closed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.fd: int | None = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def signal(self) -> None:
        with self._lock:
            if self.fd is not None:
                os.eventfd_write(self.fd, 1)

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError, TypeError):
            os.eventfd_read(self.fd)  # type: ignore[arg-type]

    def close(self) -> None:
        with self._lock:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None


class _Clock:
    """Stands in for the `time` module inside one pynetdicom module; only sleep() differs."""

    def __init__(self, sleep: Any) -> None:
        self.sleep = sleep

    def __getattr__(self, name: str) -> Any:
        return getattr(_time, name)


def _dul_sleep(delay: float) -> None:
    dul = threading.current_thread()
    waker: _Waker | None = getattr(dul, "_scp_waker", None)
    sock = getattr(getattr(dul, "socket", None), "socket", None)
    if waker is None or sock is None or waker.fd is None:
        _time.sleep(delay)
        return
    if not dul.to_provider_queue.empty():  # type: ignore[attr-defined]
        return
    try:
        ready, _, _ = select.select([sock, waker.fd], [], [], delay)
    except (OSError, ValueError):  # socket closed under us: the reactor sees it next loop
        return
    if waker.fd in ready:
        waker.drain()


def _association_sleep(delay: float) -> None:
    assoc = threading.current_thread()
    if delay != REACTOR_DELAY or not isinstance(assoc, Association):
        _time.sleep(delay)
        return
    queue = assoc.dimse.msg_queue
    with queue.not_empty:
        if not queue._qsize():
            queue.not_empty.wait(delay)


_installed = False


def install() -> None:
    """Patch pynetdicom's reactors (idempotent)."""
    global _installed
    if _installed:
        return
    original_run = DULServiceProvider.run_reactor
    original_send = DULServiceProvider.send_pdu

    def run_reactor(self: DULServiceProvider) -> None:
        self._scp_waker = _Waker()  # type: ignore[attr-defined]
        try:
            original_run(self)
        finally:
            self._scp_waker.close()  # type: ignore[attr-defined]

    def send_pdu(self: DULServiceProvider, primitive: Any) -> None:
        original_send(self, primitive)
        waker = getattr(self, "_scp_waker", None)
        if waker is not None:
            waker.signal()

    DULServiceProvider.run_reactor = run_reactor  # type: ignore[method-assign]
    DULServiceProvider.send_pdu = send_pdu  # type: ignore[method-assign]
    _patch_time(_dul_module, _dul_sleep)
    _patch_time(_association_module, _association_sleep)
    _installed = True


def _patch_time(module: ModuleType, sleep: Any) -> None:
    module.time = _Clock(sleep)  # type: ignore[attr-defined]
