"""The retrieve benchmark at a tiny size, so that it cannot rot: a 5-slice study moved and pulled
from our SCP (over Orthanc's DICOMweb behind the proxy) and from dcmqrscp, its report carrying
the figures of the runs; and its checks catching a run that did not deliver the study."""

from __future__ import annotations

import json
import shutil

from pydicom import dcmread

from bench.datasets import generate, meta_end
from bench.retrieve.__main__ import main
from bench.retrieve.report import splice
from bench.retrieve.runs import check, instances_of, retrieve, timed
from bench.retrieve.sources import Dcmqrscp
from tests.support.dicomweb import needs_orthanc
from tests.support.net import free_port

STORE_REPORT = "# Store SCP benchmark\n\n## ct: 300 instances\n\n| a | b |\n"


@needs_orthanc
def test_a_small_study_is_moved_and_pulled_from_both_sources_and_reported(tmp_path):
    report = tmp_path / "REPORT.md"
    report.write_text(STORE_REPORT)
    output = tmp_path / "results" / "retrieve.md"
    args = ["--slices", "5", "--repeat", "1", "--rtt-ms", "20", "--cache", str(tmp_path / "cache")]
    assert main([*args, "--output", str(output), "--report", str(report)]) == 0

    study = generate("ct", tmp_path / "cache", 5)
    runs = json.loads(output.with_suffix(".json").read_text())
    assert {(r["source"], r["operation"]) for r in runs} == {
        (source, op) for source in ("ours", "ours+20ms", "dcmqrscp") for op in ("move", "get")
    }
    section = output.read_text()
    for run in runs:
        assert run["error"] == ""
        assert (run["instances"], run["bytes"]) == (5, study.dataset_bytes)
        assert run["seconds"] > 0 and run["peak_rss"] > 0
        rate = run["instances"] / run["seconds"]
        operation = {"move": "C-MOVE", "get": "C-GET"}[run["operation"]]
        assert f"| {run['source']} | {operation} | 1 of 1 | {rate:,.1f} |" in section
    assert report.read_text() == STORE_REPORT + "\n" + section
    assert "ours / dcmqrscp, instances per second: C-MOVE " in section
    assert "ours+20ms is our SCP with 20 ms added to every round trip" in section
    assert "python -m bench.retrieve --slices 5 --repeat 1" in section


def test_a_run_missing_an_instance_fails(tmp_path):
    """dcmqrscp holds 2 slices of the study; the run expects 3."""
    study = generate("ct", tmp_path / "cache", 3)
    served = generate("ct", tmp_path / "cache", 2)
    destination = free_port()
    source = Dcmqrscp(tmp_path / "qr", free_port(), tmp_path / "qr.log", served, destination)
    source.start()
    try:
        uid = str(dcmread(study.files[0], stop_before_pixels=True).StudyInstanceUID)
        run = retrieve(source, "move", 1, uid, instances_of(study), destination, tmp_path, tmp_path)
    finally:
        source.stop()
    assert run.error == "1 of 3 instances not received"
    assert run.instances == 2
    assert (tmp_path / "dcmqrscp-move-1-movescu.log").exists()  # kept: the run failed


def test_check_catches_what_is_missing_extra_twice_or_cut_short(tmp_path):
    study = generate("ct", tmp_path / "cache", 3)
    expected = instances_of(study)
    folder = tmp_path / "received"
    folder.mkdir()
    for path in study.files[:2]:
        shutil.copyfile(path, folder / path.name)
    shutil.copyfile(study.files[0], folder / "again.dcm")
    short = folder / study.files[1].name
    short.write_bytes(short.read_bytes()[:-2])
    count, size, problems = check(folder, expected)
    assert count == 2
    assert size == sum(p.stat().st_size - meta_end(p) for p in (folder / "again.dcm", short))
    second = dcmread(short, stop_before_pixels=True).SOPInstanceUID
    assert problems == [
        "1 of 3 instances not received",
        "1 instances received twice",
        f"1 instances differ in size from the study's (first {second}: "
        f"{expected[second] - 2} bytes, not {expected[second]})",
    ]
    assert check(tmp_path / "nothing", expected)[2] == ["3 of 3 instances not received"]


# What movescu and getscu print with runs.LOG_CONFIG (dcmtk 3.6.7), abridged.
MOVE_LOG = """\
2026-12-06 07:05:08.344.473 Requesting Association
2026-12-06 07:05:08.345.040 Sending Move Request (MsgID 1)
2026-12-06 07:05:08.473.777 Received Move Response 1 (Pending)
2026-12-06 07:05:09.606.149 Received Final Move Response (Success)
2026-12-06 07:05:09.606.205 Releasing Association
"""
GET_LOG = """\
2026-12-06 23:59:59.900.000 Sending C-GET Request (MsgID 1)
2026-12-06 23:59:59.950.000 Received C-GET Response (Pending)
2026-12-07 00:00:00.100.500 Received C-GET Response (Warning)
"""


def test_timed_reads_the_request_and_the_final_response_from_the_tools_log():
    assert timed(MOVE_LOG, "move") == (1.261109, "Success")
    seconds, status = timed(GET_LOG, "get")
    assert (round(seconds, 6), status) == (0.2005, "Warning")


def test_splice_replaces_the_retrieve_section_or_appends_it():
    section = "## Retrieve: new\n\nfigures\n"
    document = STORE_REPORT + "\n## Retrieve: old\n\nold figures\n\n## Later\n\ntext\n"
    assert splice(document, section) == STORE_REPORT + "\n" + section + "\n## Later\n\ntext\n"
    assert splice(STORE_REPORT, section) == STORE_REPORT + "\n" + section
