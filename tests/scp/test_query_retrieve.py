"""Query/Retrieve against our SCP as a real process whose HealthImaging is Orthanc's DICOMweb
behind the SigV4-checking proxy, driven by dcmtk: `findscu` at every level of both models
(wildcard, date range, UID list, pages of 2 records), `movescu` to a dcmtk `storescp` registered
in REMOTE_AES and to an unknown destination, `getscu` back on its own association."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import MRImageStorage

from tests.fakes.dicomweb_proxy import DicomWebProxy
from tests.support.dicom_files import make_dataset, uid, write_part10
from tests.support.dicomweb import needs_orthanc
from tests.support.net import free_port
from tests.support.orthanc import Orthanc
from tests.support.orthanc_modality import OrthancModality
from tests.support.scp import ScpProcess

pytestmark = needs_orthanc
US = "QRSCU"
# patient, name, study, date, [(series, class, instances)]
STUDIES = [
    ("P1", "DOE^JANE", "a", "20260105", [("ct", None, 3), ("mr", MRImageStorage, 2)]),
    ("P1", "DOE^JANE", "b", "20250610", [("ct", None, 1)]),
    ("P2", "ROE^RICHARD", "c", "20260120", [("ct", None, 2)]),
]


def study_uid(tag: str) -> str:
    return uid("qr", tag)


@pytest.fixture(scope="module")
def loaded(orthanc_server: Orthanc, tmp_path_factory: pytest.TempPathFactory) -> Orthanc:
    folder = tmp_path_factory.mktemp("qr-files")
    for patient, name, tag, date, series in STUDIES:
        for series_tag, sop_class, count in series:
            for i in range(count):
                kw = {"sop_class": sop_class} if sop_class else {}
                ds = make_dataset(
                    study=study_uid(tag),
                    series=uid("qr", tag, series_tag),
                    sop=uid("qr", tag, series_tag, i),
                    rows=8,
                    columns=8,
                    patient_name=name,
                    seed=i,
                    **kw,
                )
                ds.PatientID, ds.StudyDate, ds.StudyID = patient, date, tag.upper()
                ds.StudyDescription = f"STUDY {tag.upper()}"
                path = write_part10(ds, folder / f"{tag}-{series_tag}-{i}.dcm")
                orthanc_server.store(path.read_bytes())
    return orthanc_server


@pytest.fixture(scope="module")
def destination(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """dcmtk storescp as the Move Destination DEST."""
    port, folder = free_port(), tmp_path_factory.mktemp("dest")
    proc = subprocess.Popen(
        ["storescp", "-aet", "DEST", "-od", str(folder), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield port, folder
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def second_port() -> int:
    """Where a second destination, DEST2, listens when a test starts it."""
    return free_port()


@pytest.fixture(scope="module")
def scp_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def workstation(
    scp_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OrthancModality]:
    """A second Orthanc as the radiology workstation: C-FIND and C-MOVE through its REST API."""
    with OrthancModality(tmp_path_factory.mktemp("workstation"), scp_port, "WORKSTATION") as ws:
        yield ws


@pytest.fixture(scope="module")
def scp(
    scp_port: int,
    workstation: OrthancModality,
    second_port: int,
    loaded: Orthanc,
    running_proxy: DicomWebProxy,
    destination: tuple[int, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ScpProcess]:
    tmp = tmp_path_factory.mktemp("qr-scp")
    with ScpProcess(
        log_dir=tmp,
        port=scp_port,
        storage=str(tmp / "store"),
        workers=1,
        **running_proxy.scp_settings(),
        qido_page_size=2,
        remote_aes=f"{US}=127.0.0.1:1:query+retrieve,DEST=127.0.0.1:{destination[0]}:store,"
        f"FINDONLY=127.0.0.1:1:query,DEST2=127.0.0.1:{second_port}:store,"
        f"WORKSTATION=127.0.0.1:{workstation.dicom_port}:query+retrieve",
    ) as server:
        yield server


def dcmtk(
    tool: str, scp: ScpProcess, *args: str, aet: str = US
) -> subprocess.CompletedProcess[str]:
    argv = [tool, "-v", "-aet", aet, "-aec", scp.ae_title, *args, "127.0.0.1", str(scp.port)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def find(scp: ScpProcess, tmp: Path, model: str, level: str, *keys: str) -> list[pydicom.Dataset]:
    out = tmp / f"find-{model}-{level}-{len(list(tmp.iterdir()))}"
    out.mkdir()
    args = [model, "-X", "-od", str(out), "-k", f"QueryRetrieveLevel={level}"]
    for key in keys:
        args += ["-k", key]
    done = dcmtk("findscu", scp, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def test_find_every_level_of_both_models(scp: ScpProcess, running_proxy, tmp_path) -> None:
    running_proxy.reset()
    patients = find(scp, tmp_path, "-P", "PATIENT", "PatientID", "PatientName")
    assert sorted((p.PatientID, str(p.PatientName)) for p in patients) == [
        ("P1", "DOE^JANE"),
        ("P2", "ROE^RICHARD"),
    ]
    # Three studies, two a page: more than one QIDO-RS page was asked for.
    studies = find(scp, tmp_path, "-S", "STUDY", "StudyInstanceUID", "StudyDate", "StudyID")
    assert sorted(s.StudyInstanceUID for s in studies) == sorted(study_uid(s[2]) for s in STUDIES)
    assert {s.StudyID for s in studies} == {"A", "B", "C"}
    offsets = [r.path for r in running_proxy.requests("GET") if "offset=2" in r.path]
    assert offsets, running_proxy.requests("GET")
    in_patient = find(scp, tmp_path, "-P", "STUDY", "PatientID=P1", "StudyInstanceUID")
    assert sorted(s.StudyInstanceUID for s in in_patient) == sorted(
        [study_uid("a"), study_uid("b")]
    )
    series = find(
        scp, tmp_path, "-S", "SERIES", f"StudyInstanceUID={study_uid('a')}", "Modality",
        "SeriesInstanceUID",
    )  # fmt: skip
    assert sorted(s.Modality for s in series) == ["CT", "MR"]
    images = find(
        scp, tmp_path, "-P", "IMAGE", "PatientID=P1", f"StudyInstanceUID={study_uid('a')}",
        f"SeriesInstanceUID={uid('qr', 'a', 'ct')}", "SOPInstanceUID", "InstanceNumber",
    )  # fmt: skip
    assert sorted(i.SOPInstanceUID for i in images) == sorted(
        uid("qr", "a", "ct", i) for i in range(3)
    )


def test_find_wildcard_date_range_uid_list_and_unreturned_keys(scp, tmp_path) -> None:
    jane = find(scp, tmp_path, "-S", "STUDY", "PatientName=DOE*", "StudyInstanceUID")
    assert len(jane) == 2  # a wildcard HealthImaging filters
    january = find(scp, tmp_path, "-S", "STUDY", "StudyDate=20260101-20260131", "PatientID")
    assert sorted(s.PatientID for s in january) == ["P1", "P2"]
    listed = find(
        scp, tmp_path, "-S", "STUDY", f"StudyInstanceUID={study_uid('a')}\\{study_uid('c')}",
        "PatientID",
    )  # fmt: skip
    assert sorted(s.PatientID for s in listed) == ["P1", "P2"]
    # A key HealthImaging cannot filter is matched by us on what it returns.
    none = find(scp, tmp_path, "-S", "STUDY", "StudyDescription=NOTHING*", "StudyInstanceUID")
    assert none == []
    some = find(scp, tmp_path, "-S", "STUDY", "StudyDescription=STUDY ?", "StudyID")
    assert sorted(s.StudyID for s in some) == ["A", "B", "C"]


def test_move_to_the_registered_destination_and_to_an_unknown_one(scp, destination) -> None:
    _, folder = destination
    done = dcmtk(
        "movescu", scp, "-S", "-aem", "DEST", "-k", "QueryRetrieveLevel=STUDY",
        "-k", f"StudyInstanceUID={study_uid('a')}",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    received = sorted(pydicom.dcmread(p).SOPInstanceUID for p in folder.iterdir())
    expected = [uid("qr", "a", "ct", i) for i in range(3)] + [
        uid("qr", "a", "mr", i) for i in range(2)
    ]
    assert received == sorted(expected)
    log = done.stdout + done.stderr
    assert "Received Move Response 5 (Pending)" in log  # one pending response per instance
    assert "Received Final Move Response (Success)" in log
    unknown = dcmtk(
        "movescu", scp, "-S", "-aem", "NOWHERE", "-k", "QueryRetrieveLevel=STUDY",
        "-k", f"StudyInstanceUID={study_uid('a')}",
    )  # fmt: skip
    assert "Final Move Response (Refused: MoveDestinationUnknown)" in unknown.stderr  # 0xA801
    assert len(list(folder.iterdir())) == 5


def test_get_back_on_the_calling_association(scp, tmp_path) -> None:
    done = dcmtk(
        "getscu", scp, "-S", "-od", str(tmp_path), "-k", "QueryRetrieveLevel=SERIES",
        "-k", f"StudyInstanceUID={study_uid('c')}",
        "-k", f"SeriesInstanceUID={uid('qr', 'c', 'ct')}",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Release Failed" not in done.stderr, done.stderr
    got = sorted(pydicom.dcmread(p).SOPInstanceUID for p in tmp_path.glob("CT*"))
    assert got == sorted(uid("qr", "c", "ct", i) for i in range(2))


def test_calling_aes_without_the_permission_are_refused(scp, destination) -> None:
    study = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid('b')}"]
    find = dcmtk("findscu", scp, "-S", *study, aet="STRANGER")
    assert "Final Find Response (Unknown Status: 0x124)" in find.stderr, find.stderr
    get = dcmtk("getscu", scp, "-S", *study, aet="FINDONLY")
    assert "0x124" in get.stderr, get.stderr
    move = dcmtk("movescu", scp, "-S", "-aem", "DEST", *study, aet="FINDONLY")
    assert "Final Move Response (Failed: UnableToProcess)" in move.stderr, move.stderr
    assert list(destination[1].glob(f"*{uid('qr', 'b', 'ct', 0)}*")) == []
    refusals = [x for x in scp.log_lines() if x.get("event") == "not-authorised"]
    assert {(x["callingAETitle"], x["needs"]) for x in refusals} == {
        ("STRANGER", "query"),
        ("FINDONLY", "retrieve"),
    }


def test_an_instance_healthimaging_cannot_return_is_a_failed_sub_operation(
    scp, running_proxy, tmp_path
) -> None:
    gone = uid("qr", "a", "mr", 1)
    running_proxy.reset()
    running_proxy.faults.conflicts.add(gone)  # listed by the series search, 404 on retrieve
    try:
        done = dcmtk(
            "getscu", scp, "-S", "-od", str(tmp_path), "-k", "QueryRetrieveLevel=SERIES",
            "-k", f"StudyInstanceUID={study_uid('a')}",
            "-k", f"SeriesInstanceUID={uid('qr', 'a', 'mr')}",
        )  # fmt: skip
    finally:
        running_proxy.reset()
    got = [pydicom.dcmread(p).SOPInstanceUID for p in tmp_path.glob("MR*")]
    assert got == [uid("qr", "a", "mr", 0)]
    assert (
        "Received C-GET Response (Warning: SubOperationsCompleteOneOrMoreFailures)" in done.stderr
    )
    assert "Number of Failed Suboperations    : 1" in done.stderr
    failed = [x for x in scp.log_lines() if x.get("event") == "retrieve-failed"]
    assert [x["sopInstanceUID"] for x in failed] == [gone]


def test_a_move_throttled_by_healthimaging_is_retried_and_complete(
    scp, running_proxy, second_port, tmp_path
) -> None:
    with subprocess.Popen(
        ["storescp", "-aet", "DEST2", "-od", str(tmp_path), str(second_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as dest:
        running_proxy.reset()
        # Mid-move: the first four GetDICOMInstance (in flight at once) are answered; the fifth,
        # asked for once the first came back, is throttled (ThrottlingException, 429) three
        # times and retried while the others are sent.
        running_proxy.faults.retrievals = [None] * 4 + [429] * 3
        try:
            done = dcmtk(
                "movescu", scp, "-S", "-aem", "DEST2", "-k", "QueryRetrieveLevel=STUDY",
                "-k", f"StudyInstanceUID={study_uid('a')}",
            )  # fmt: skip
        finally:
            retrievals = [r for r in running_proxy.requests("GET") if "/instances/" in r.path]
            running_proxy.reset()
            dest.terminate()
    assert "Final Move Response (Success)" in done.stderr, done.stderr
    throttled = [r for r in retrievals if r.status == 429]
    assert len(throttled) == 3
    first_sent = min(r.at for r in retrievals if r.status == 200)
    assert all(r.at > first_sent for r in throttled)  # after an instance was retrieved
    got = sorted(pydicom.dcmread(p).SOPInstanceUID for p in tmp_path.iterdir())
    expected = [uid("qr", "a", "ct", i) for i in range(3)] + [
        uid("qr", "a", "mr", i) for i in range(2)
    ]
    assert got == sorted(expected)


def test_orthanc_as_workstation_finds_and_pulls_a_study(scp, workstation) -> None:
    query = workstation.rest(
        "POST",
        "/modalities/scp/query",
        {"Level": "Study", "Query": {"PatientID": "P2", "StudyInstanceUID": ""}},
    )
    answers = workstation.rest("GET", f"/queries/{query['ID']}/answers?expand&simplify")
    assert [a["StudyInstanceUID"] for a in answers] == [study_uid("c")]
    workstation.rest(
        "POST",
        f"/queries/{query['ID']}/retrieve",
        {"TargetAet": "WORKSTATION", "Synchronous": True},
    )
    pulled = workstation.rest("GET", "/instances?expand")
    assert sorted(i["MainDicomTags"]["SOPInstanceUID"] for i in pulled) == sorted(
        uid("qr", "c", "ct", i) for i in range(2)
    )
