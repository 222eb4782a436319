"""Several serving processes on one listening socket, so every CPU receives.

The supervisor binds the socket (scp.listener: no SO_REUSEPORT, so no other program can join the
port) and forks the workers before it starts any thread or imports pynetdicom (each worker
builds its own DICOM server on the inherited socket, so the supervisor stays small). It owns the
health endpoint (ready once every worker listens and the first worker's storage check passed)
and the ActiveAssociations gauge, forwards SIGTERM, and waits for every worker to drain. A worker
that
dies on its own stops the others (gracefully) and the supervisor exits 1, so the orchestrator
replaces the whole task rather than running with a hole in it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time

from scp.health import Background, HealthServer
from scp.settings import Settings
from scp.slots import SharedSlots
from scp.storage import Store
from scp.store_check import StoreCheck
from scp.telemetry import METRICS_INTERVAL, Metrics

LOG = logging.getLogger("scp")
PR_SET_PDEATHSIG = 1
EXIT_GRACE = 40.0  # seconds past DRAIN_TIMEOUT a worker gets to close its batches


class _Supervisor:
    """What the health endpoint reports for the whole process group."""

    def __init__(self, counts: multiprocessing.sharedctypes.SynchronizedArray) -> None:
        self.counts = counts
        self.draining = False

    def active_count(self) -> int:
        with self.counts.get_lock():
            return sum(self.counts)


def supervise(
    settings: Settings,
    store: Store,
    workers: int,
    listener: socket.socket,
    health: HealthServer | None,
    store_check: StoreCheck,
    background: Background | None = None,
) -> int:
    counts = multiprocessing.Array("i", workers)
    listening = multiprocessing.Array("b", workers)
    supervisor = os.getpid()
    children: dict[int, int] = {}
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # worker
            code = 1
            try:
                _die_with_parent(supervisor)
                from scp.server import serve

                def ready(index: int = index) -> None:
                    listening[index] = 1

                if health:
                    health.socket.close()  # the supervisor's
                code = serve(
                    settings,
                    store,
                    SharedSlots(counts, index),
                    listener,
                    store_check=store_check if index == 0 else None,
                    worker=True,
                    on_listening=ready,
                )
            except Exception as exc:  # one line for the operator, never a silent exit
                LOG.error(
                    "worker failed",
                    extra={
                        "fields": {
                            "event": "worker-failed",
                            "worker": index,
                            "error": f"{type(exc).__name__}: {exc}",
                        }
                    },
                )
            finally:
                os._exit(code)
        children[pid] = index

    listener.close()  # the workers hold it
    state = _Supervisor(counts)
    if background:  # a thread: only once every worker is forked
        background.start()
    if health:
        health.start(state, store_check, background)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    metrics = Metrics(settings.metrics_namespace)
    exit_code, next_flush = 0, time.monotonic() + METRICS_INTERVAL
    while not stop.wait(0.2):
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            LOG.error(
                "worker exited unexpectedly; stopping",
                extra={
                    "fields": {
                        "event": "worker-died",
                        "worker": children.pop(pid),
                        "exitCode": os.waitstatus_to_exitcode(status),
                    }
                },
            )
            exit_code = 1
            break
        if health and not health.ready and all(listening):
            health.ready = True
        if time.monotonic() >= next_flush:
            metrics.flush(state.active_count())
            next_flush += METRICS_INTERVAL

    state.draining = True
    for pid in children:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + settings.drain_timeout + EXIT_GRACE
    while children and time.monotonic() < deadline:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid:
            if os.waitstatus_to_exitcode(status) != 0:
                exit_code = 1
            children.pop(pid, None)
        else:
            time.sleep(0.1)
    for pid in children:  # past every deadline
        _signal(pid, signal.SIGKILL)
        exit_code = 1
    metrics.flush(0)
    if background:
        background.stop()
    if health:
        health.shutdown()
    return exit_code


def _die_with_parent(supervisor: int) -> None:
    """A worker is SIGKILLed when its supervisor dies (as in a container), never orphaned."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != supervisor:  # the supervisor died before prctl took effect
        os._exit(1)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
