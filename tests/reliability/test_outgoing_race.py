"""C-STOREs on an association we open (scp/outgoing.OUTGOING_HANDLERS: TCP_NODELAY and
scp/reactor.py's checkpoint) to a dcmtk storescp, with a thread competing for the GIL as our
WADO-RS fetches do during a C-MOVE: no response may be taken by the reactor (a stall of
DIMSE_TIMEOUT). Without the checkpoint this set-up stalled 11 times in 3,653 C-STOREs here."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from pynetdicom import AE

from scp.outgoing import OUTGOING_HANDLERS
from tests.reliability.conftest import FULL
from tests.support.dicom_files import make_dataset, uid
from tests.support.figures import report_figure
from tests.support.net import free_port, wait_for_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not FULL, reason="minutes of C-STOREs: make reliability"),
]
SENDS = 10_000
PER_ASSOCIATION = 200


def _instance() -> Dataset:
    ds = make_dataset(study="1.2.3", series="1.2.3.4", sop=uid("race", 1), rows=64, columns=64)
    ds.file_meta = Dataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def test_no_response_is_taken_by_the_reactor(tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "TCP_NODELAY": "1"}  # dcmtk answers without Nagle's delay too
    storescp = subprocess.Popen(
        ["storescp", "--ignore", str(port)], env=env, stderr=subprocess.DEVNULL
    )
    stop = threading.Event()

    def compete() -> None:
        while not stop.is_set():
            sum(range(200))

    rival = threading.Thread(target=compete, daemon=True)
    try:
        wait_for_port(port)
        rival.start()
        ds, sent, stalls, started = _instance(), 0, 0, time.monotonic()
        while sent < SENDS:
            ae = AE(ae_title="OURS")
            ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
            ae.dimse_timeout = 2
            assoc = ae.associate("127.0.0.1", port, evt_handlers=OUTGOING_HANDLERS)
            assert assoc.is_established
            for _ in range(PER_ASSOCIATION):
                sent += 1
                if "Status" not in assoc.send_c_store(ds):
                    stalls += 1
                    break
            if assoc.is_established:
                assoc.release()
    finally:
        stop.set()
        storescp.terminate()
        storescp.wait(10)
    seconds = time.monotonic() - started
    report_figure(
        f"outgoing C-STOREs with a GIL rival: {sent} in {seconds:.0f} s, {stalls} stalled"
    )
    assert stalls == 0
