"""C-MOVE and C-GET sub-operations against real peers, our SCP as a real process whose
HealthImaging is Orthanc's DICOMweb behind the SigV4-checking proxy: compressed instances kept
in their stored transfer syntax where the destination accepts it and converted where it does not
(dcmtk `storescp` +xa / +xi, `getscu`), a destination killed mid-move, C-CANCEL mid-move and
mid-get, and HealthImaging throttling for longer than the client's retry budget."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLosslessSV1,
    RLELossless,
)
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from tests.fakes.dicomweb_proxy import DicomWebProxy
from tests.scp.test_query_retrieve import dcmtk
from tests.support.dicom_files import dcmtk_convert, make_dataset, uid, write_part10
from tests.support.dicomweb import needs_orthanc
from tests.support.net import free_port, wait_for_port
from tests.support.orthanc import Orthanc
from tests.support.scp import ScpProcess

pytestmark = needs_orthanc
US = "FAULTSCU"
SYNTAX = {"rle": RLELossless, "jpeg": JPEGLosslessSV1, "plain": ExplicitVRLittleEndian}
MANY = 8  # instances of the study the fault tests move


def study(tag: str) -> str:
    return uid("faults", tag)


@pytest.fixture(scope="module")
def originals(orthanc_server: Orthanc, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Study "tx": a series each of RLE Lossless (2), JPEG Lossless SV1 (1) and Explicit VR LE
    (1) CT, compressed by dcmtk; study "many": MANY small CT. SOP Instance UID -> (stored
    file, the uncompressed file it was made from)."""
    folder = tmp_path_factory.mktemp("faults")
    files = {}
    for series, count in (("rle", 2), ("jpeg", 1), ("plain", 1)):
        for i in range(count):
            sop = uid("faults", series, i)
            ds = make_dataset(
                study=study("tx"), series=uid("faults", series), sop=sop, rows=32, columns=32,
                seed=i,
            )  # fmt: skip
            plain = write_part10(ds, folder / f"{series}-{i}-plain.dcm")
            stored = plain
            if series == "rle":
                stored = dcmtk_convert("dcmcrle", plain, folder / f"{series}-{i}.dcm")
            elif series == "jpeg":
                stored = dcmtk_convert("dcmcjpeg", plain, folder / f"{series}-{i}.dcm")
            assert pydicom.dcmread(stored).file_meta.TransferSyntaxUID == SYNTAX[series]
            orthanc_server.store(stored.read_bytes())
            files[sop] = (stored, plain)
    for i in range(MANY):
        ds = make_dataset(
            study=study("many"), series=uid("faults", "many"), sop=uid("faults", "many", i),
            rows=8, columns=8, seed=i,
        )  # fmt: skip
        orthanc_server.store(write_part10(ds, folder / f"many-{i}.dcm").read_bytes())
    return files


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    """Where each registered destination listens when a test starts it."""
    return {name: free_port() for name in ("ALL", "IMPLICIT", "GONE", "SLOW")}


@pytest.fixture(scope="module")
def scp(
    originals: dict,
    running_proxy: DicomWebProxy,
    ports: dict[str, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ScpProcess]:
    tmp = tmp_path_factory.mktemp("faults-scp")
    destinations = ",".join(f"{name}=127.0.0.1:{port}:store" for name, port in ports.items())
    with ScpProcess(
        log_dir=tmp,
        storage=str(tmp / "store"),
        workers=1,
        **running_proxy.scp_settings(),
        remote_aes=f"{US}=127.0.0.1:1:query+retrieve,{destinations}",
    ) as server:
        yield server


@pytest.fixture
def proxy(running_proxy: DicomWebProxy) -> Iterator[DicomWebProxy]:
    running_proxy.reset()
    yield running_proxy
    running_proxy.reset()


@contextlib.contextmanager
def storescp(aet: str, port: int, folder: Path, *options: str) -> Iterator[subprocess.Popen]:
    """dcmtk storescp as the destination `aet`, stopped on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    argv = ["storescp", *options, "-aet", aet, "-od", str(folder), str(port)]
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        try:
            wait_for_port(port)
            yield proc
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(10)


def received(folder: Path) -> dict[str, pydicom.Dataset]:
    return {str(ds.SOPInstanceUID): ds for ds in map(pydicom.dcmread, folder.glob("CT*"))}


def move_args(tag: str) -> list[str]:
    return ["-S", "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study(tag)}"]


def identifier(tag: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study(tag)
    return ds


def _scu(scp: ScpProcess, *contexts: str, roles: list[Any] | None = None, **kw: Any) -> Any:
    ae = AE(ae_title=US)
    for context in contexts:
        ae.add_requested_context(context)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title=scp.ae_title, ext_neg=roles, **kw)
    assert assoc.is_established
    return assoc


def test_move_keeps_the_stored_syntax_where_accepted_and_converts_where_not(
    scp, proxy, ports, originals, tmp_path
) -> None:
    with storescp("ALL", ports["ALL"], tmp_path / "all", "+xa"):
        done = dcmtk("movescu", scp, "-aem", "ALL", *move_args("tx"), aet=US)
    assert "Received Final Move Response (Success)" in done.stderr, done.stderr
    got = received(tmp_path / "all")
    assert set(got) == set(originals)
    for sop, (stored, _) in originals.items():
        want = pydicom.dcmread(stored)
        assert got[sop].file_meta.TransferSyntaxUID == want.file_meta.TransferSyntaxUID
        assert got[sop].PixelData == want.PixelData  # byte for byte, fragments and all
    with storescp("IMPLICIT", ports["IMPLICIT"], tmp_path / "implicit", "+xi"):
        done = dcmtk("movescu", scp, "-aem", "IMPLICIT", *move_args("tx"), aet=US)
    assert "Received Final Move Response (Success)" in done.stderr, done.stderr
    got = received(tmp_path / "implicit")
    assert set(got) == set(originals)
    for sop, (_, plain) in originals.items():
        assert got[sop].file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
        assert got[sop].PixelData == pydicom.dcmread(plain).PixelData  # decompressed, lossless
    # Each instance asked for once: stored (*) where a compressed syntax was accepted for CT,
    # Explicit VR LE where none was.
    retrievals = [r for r in proxy.requests("GET") if "/instances/" in r.path]
    assert len(retrievals) == 2 * len(originals)


def test_a_stored_syntax_healthimaging_will_not_return_falls_back_to_explicit_le(
    scp, proxy, ports, originals, tmp_path
) -> None:
    """GetDICOMInstance refusing the stored syntax (406 Not Acceptable, PS3.18 9.4.2.4) for
    both RLE instances: each is asked for again in Explicit VR LE and moved uncompressed."""
    rle = sorted(sop for sop, (stored, _) in originals.items() if "rle" in stored.name)
    proxy.faults.stored_syntax_refused = 406
    series = identifier("tx")
    series.QueryRetrieveLevel = "SERIES"
    series.SeriesInstanceUID = uid("faults", "rle")
    with storescp("ALL", ports["ALL"], tmp_path, "+xa"):
        assoc = _scu(scp, StudyRootQueryRetrieveInformationModelMove)
        model = StudyRootQueryRetrieveInformationModelMove
        responses = list(assoc.send_c_move(series, "ALL", model))
        assoc.release()
    assert responses[-1][0].Status == 0x0000
    got = received(tmp_path)
    assert sorted(got) == rle
    for sop in rle:
        assert got[sop].file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert got[sop].PixelData == pydicom.dcmread(originals[sop][1]).PixelData
    statuses = sorted(r.status for r in proxy.requests("GET") if "/instances/" in r.path)
    assert statuses == [200, 200, 406, 406]


def test_get_in_the_stored_syntax_and_in_the_fallback(scp, proxy, originals, tmp_path) -> None:
    """A requestor proposing RLE Lossless in a context of its own gets the RLE instances as
    stored; dcmtk getscu, which proposes the uncompressed syntaxes only, gets them
    decompressed. (getscu +xr lists RLE first in one context with the uncompressed ones, and
    pynetdicom as acceptor picks the first of OUR list it was offered, uncompressed first: the
    conformance statement says so.)"""
    rle = sorted(sop for sop, (stored, _) in originals.items() if "rle" in stored.name)
    series = identifier("tx")
    series.QueryRetrieveLevel = "SERIES"
    series.SeriesInstanceUID = uid("faults", "rle")
    got: dict[str, Any] = {}

    def on_store(event: evt.Event) -> int:
        got[event.dataset.SOPInstanceUID] = (event.context.transfer_syntax, event.dataset)
        return 0x0000

    ae = AE(ae_title=US)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage, [RLELossless])
    ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian])
    assoc = ae.associate(
        "127.0.0.1", scp.port, ae_title=scp.ae_title,
        ext_neg=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )  # fmt: skip
    responses = list(assoc.send_c_get(series, StudyRootQueryRetrieveInformationModelGet))
    assoc.release()
    assert responses[-1][0].Status == 0x0000
    assert sorted(got) == rle
    for sop in rle:
        syntax, ds = got[sop]
        assert syntax == RLELossless
        assert ds.PixelData == pydicom.dcmread(originals[sop][0]).PixelData

    args = ["-S", "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={study('tx')}"]
    args += ["-k", f"SeriesInstanceUID={uid('faults', 'rle')}", "-od", str(tmp_path)]
    done = dcmtk("getscu", scp, *args, aet=US)
    assert "Received C-GET Response (Success)" in done.stderr, done.stderr
    files = received(tmp_path)
    assert sorted(files) == rle
    for sop in rle:
        assert not files[sop].file_meta.TransferSyntaxUID.is_compressed
        assert files[sop].PixelData == pydicom.dcmread(originals[sop][1]).PixelData


def _threads(scp: ScpProcess, baseline: int) -> int:
    """The SCP's threads once back to `baseline` (or after 5 s)."""
    proc = psutil.Process(scp.proc.pid)
    deadline = time.monotonic() + 5
    while proc.num_threads() > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc.num_threads()


def _echo(scp: ScpProcess) -> int:
    assoc = _scu(scp, Verification)
    status = assoc.send_c_echo().Status
    assoc.release()
    return status


def test_a_destination_killed_mid_move_ends_the_move_with_failures(
    scp, proxy, ports, tmp_path
) -> None:
    """storescp is killed once two instances arrived: the move ends with a final failure or
    warning, the failed and remaining instances counted and listed, without fetching the
    unsent ones; our SCP answers the next C-ECHO and its threads return."""
    baseline = psutil.Process(scp.proc.pid).num_threads()
    proxy.faults.retrieval_delay = 0.4  # four in flight: the last four are fetched after a kill
    folder = tmp_path / "gone"
    with storescp("GONE", ports["GONE"], folder) as dest:

        def kill_after_two() -> None:
            deadline = time.monotonic() + 30
            while len(list(folder.glob("CT*"))) < 2 and time.monotonic() < deadline:
                time.sleep(0.005)
            os.kill(dest.pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_after_two)
        killer.start()
        assoc = _scu(scp, StudyRootQueryRetrieveInformationModelMove)
        started = time.monotonic()
        responses = list(
            assoc.send_c_move(
                identifier("many"), "GONE", StudyRootQueryRetrieveInformationModelMove
            )
        )
        took = time.monotonic() - started
        assoc.release()
        killer.join()
    final, failed_list = responses[-1]
    assert final.Status in (0xB000, 0xA702), hex(final.Status)
    completed, failed = final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations
    assert completed + failed == MANY and failed >= MANY - 4 and completed >= 1
    assert "NumberOfRemainingSuboperations" not in final or not final.NumberOfRemainingSuboperations
    listed = set(failed_list.FailedSOPInstanceUIDList)
    assert len(listed) == failed
    assert listed == {uid("faults", "many", i) for i in range(MANY)} - set(received(folder))
    assert took < 10, took  # no hang on the dead destination
    fetched = [r for r in proxy.requests("GET") if "/instances/" in r.path]
    assert len(fetched) < MANY  # the unsent were not fetched
    lost = [x for x in scp.log_lines() if x.get("event") == "retrieve-peer-lost"]
    assert lost and lost[-1]["instances"] >= MANY - 4 - 1
    assert _echo(scp) == 0x0000
    assert _threads(scp, baseline) <= baseline


def _cancel_after(responses: Iterator[Any], assoc: Any, msg_id: int, model: str) -> list:
    seen = []
    for status, ds in responses:
        seen.append((status, ds))
        if len(seen) == 2:
            assoc.send_c_cancel(msg_id, query_model=model)
    return seen


def test_cancel_mid_move_and_mid_get(scp, proxy, ports, tmp_path) -> None:
    proxy.faults.retrieval_delay = 0.3
    with storescp("SLOW", ports["SLOW"], tmp_path / "slow"):
        assoc = _scu(scp, StudyRootQueryRetrieveInformationModelMove)
        move = assoc.send_c_move(
            identifier("many"), "SLOW", StudyRootQueryRetrieveInformationModelMove, msg_id=11
        )
        responses = _cancel_after(move, assoc, 11, StudyRootQueryRetrieveInformationModelMove)
        assoc.release()
    final, _ = responses[-1]
    assert final.Status == 0xFE00, hex(final.Status)
    done = final.NumberOfCompletedSuboperations + final.NumberOfFailedSuboperations
    assert done >= 2 and final.NumberOfRemainingSuboperations == MANY - done >= 1
    assert len(received(tmp_path / "slow")) == final.NumberOfCompletedSuboperations

    got: list[str] = []

    def on_store(event: evt.Event) -> int:
        got.append(event.dataset.SOPInstanceUID)
        return 0x0000

    assoc = _scu(
        scp, StudyRootQueryRetrieveInformationModelGet, CTImageStorage,
        roles=[build_role(CTImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )  # fmt: skip
    get = assoc.send_c_get(identifier("many"), StudyRootQueryRetrieveInformationModelGet, msg_id=12)
    responses = _cancel_after(get, assoc, 12, StudyRootQueryRetrieveInformationModelGet)
    assoc.release()
    final, _ = responses[-1]
    assert final.Status == 0xFE00, hex(final.Status)
    assert final.NumberOfCompletedSuboperations == len(got) >= 2
    assert final.NumberOfRemainingSuboperations == MANY - len(got) >= 1


def test_throttling_beyond_the_retry_budget_fails_those_sub_operations(
    scp, proxy, ports, originals, tmp_path
) -> None:
    """Two instances come back, then HealthImaging throttles every GetDICOMInstance: the others
    fail when the client's budget runs out; final 0xB000 with the counts and their UIDs."""
    proxy.faults.retrievals = [None, None]
    proxy.faults.retrievals_after = 429
    with storescp("ALL", ports["ALL"], tmp_path / "throttled", "+xa"):
        assoc = _scu(scp, StudyRootQueryRetrieveInformationModelMove)
        started = time.monotonic()
        responses = list(
            assoc.send_c_move(identifier("tx"), "ALL", StudyRootQueryRetrieveInformationModelMove)
        )
        took = time.monotonic() - started
        assoc.release()
    final, failed_list = responses[-1]
    assert final.Status == 0xB000, hex(final.Status)
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (2, 2)
    arrived = set(received(tmp_path / "throttled"))
    assert set(failed_list.FailedSOPInstanceUIDList) == set(originals) - arrived
    throttled = [r for r in proxy.requests("GET") if r.status == 429]
    assert len(throttled) >= 4  # retried, then given up
    assert took < 25, took  # the retry budget (10 s), the two in parallel
    failures = [x for x in scp.log_lines() if x.get("event") == "retrieve-failed"]
    assert {x["sopInstanceUID"] for x in failures[-2:]} == set(originals) - arrived
