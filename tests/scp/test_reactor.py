"""scp/reactor.py: the checkpoint that keeps pynetdicom's reactor from taking a response a
sender waits for, and the pynetdicom code it is written against (these fail when it moves)."""

from __future__ import annotations

import inspect
import re
import threading
import time
from collections.abc import Iterator

import pynetdicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.association import Association

from scp.outgoing import OUTGOING_HANDLERS
from scp.reactor import WRITTEN_FOR, SteadyCheckpoint
from tests.support.dicom_files import make_dataset, uid
from tests.support.net import free_port


class Reactor:
    """What SteadyCheckpoint sees of an association: the pause flag, and not this thread."""

    _is_paused = False


def test_written_for_this_pynetdicom_and_its_reactor_loop() -> None:
    """The pause handshake the fix is written against: the reactor marks itself paused, waits
    on the checkpoint, unmarks itself and only then reads the DIMSE queue; senders clear the
    checkpoint and wait for the mark."""
    assert pynetdicom.__version__ == WRITTEN_FOR, "re-check scp/reactor.py, then the pin"
    loop = inspect.getsource(Association._run_reactor)
    handshake = (
        r"self\._is_paused = True\s+self\._reactor_checkpoint\.wait\(\)\s+"
        r"self\._is_paused = False\s+(#.*\s+)*context_id, msg = self\.dimse\.get_msg\(block=False\)"
    )
    assert re.search(handshake, loop)
    sender = inspect.getsource(Association.send_c_store)
    assert re.search(r"self\._reactor_checkpoint\.clear\(\)\s+while not self\._is_paused:", sender)
    assoc = Association(AE(), "requestor")
    assert type(assoc._reactor_checkpoint) is threading.Event and assoc._is_paused is False


def test_a_sender_clearing_just_after_the_reactor_woke_waits_until_it_blocks_again() -> None:
    """The race: the reactor woke from wait() but has not unmarked itself. With pynetdicom's
    Event the sender would read the stale mark and send while the reactor runs on; with
    SteadyCheckpoint the mark is gone until the reactor blocks again."""
    reactor = Reactor()
    checkpoint = SteadyCheckpoint(reactor)  # type: ignore[arg-type]
    reactor._is_paused = True
    assert checkpoint.wait() is True  # set: the reactor runs on...
    checkpoint.clear()  # ...and a sender pauses it before the reactor unmarks itself
    assert reactor._is_paused is False, "the sender would send while the reactor runs"
    reactor._is_paused = False  # the reactor's next statement
    blocked = threading.Thread(target=checkpoint.wait, daemon=True)
    reactor._is_paused = True  # the top of its next loop
    blocked.start()
    deadline = time.monotonic() + 5
    while not (reactor._is_paused and blocked.is_alive()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reactor._is_paused and blocked.is_alive(), "the reactor should wait, marked paused"
    checkpoint.set()  # the sender got its response
    blocked.join(5)
    assert not blocked.is_alive()


def test_the_reactors_own_thread_keeps_its_mark_when_it_clears() -> None:
    """A handler on the reactor's thread, or its network-timeout release, clears the
    checkpoint while marked paused: the mark stays, as with pynetdicom's Event (else it would
    wait for itself)."""
    seen = {}

    class ReactorThread(threading.Thread):
        _is_paused = True

        def run(self) -> None:
            checkpoint = SteadyCheckpoint(self)  # type: ignore[arg-type]
            checkpoint.clear()
            seen["paused"] = self._is_paused

    thread = ReactorThread()
    thread.start()
    thread.join(5)
    assert seen == {"paused": True}


@pytest.fixture
def destination() -> Iterator[int]:
    port = free_port()
    ae = AE(ae_title="DEST")
    ae.add_supported_context(CTImageStorage, ExplicitVRLittleEndian)
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, lambda e: 0x0000)]
    )
    yield port
    server.shutdown()


def _instance() -> Dataset:
    ds = make_dataset(study="1.2.3", series="1.2.3.4", sop=uid("reactor", 1), rows=4, columns=4)
    ds.file_meta = Dataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _associate(port: int, **settings: object) -> Association:
    ae = AE(ae_title="OURS")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    for name, value in settings.items():
        setattr(ae, name, value)
    assoc = ae.associate("127.0.0.1", port, ae_title="DEST", evt_handlers=OUTGOING_HANDLERS)
    assert assoc.is_established
    return assoc


def test_our_associations_store_and_release_with_the_steady_checkpoint(destination) -> None:
    assoc = _associate(destination)
    assert isinstance(assoc._reactor_checkpoint, SteadyCheckpoint)
    statuses = {assoc.send_c_store(_instance()).Status for _ in range(200)}
    assoc.release()
    assert statuses == {0x0000} and assoc.is_released


def test_an_idle_association_still_releases_itself_at_the_network_timeout(destination) -> None:
    """The reactor's own A-RELEASE at network_timeout (when asked for: pynetdicom aborts by
    default) clears the checkpoint from its thread."""
    assoc = _associate(destination, network_timeout=0.5)
    assoc.network_timeout_response = "A-RELEASE"
    assoc.join(10)
    assert not assoc.is_alive() and assoc.is_released
