"""lambdas.schema agrees with jsonschema on the batch-manifest schema."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from lambdas.manifest import manifest_schema, open_marker_errors
from lambdas.schema import schema_errors
from tests.lambdas.batches import manifest_for

UID = "1.2.840.113619.2.55.3"


def valid() -> dict:
    instances = [
        {
            "key": f"incoming/b-1/{UID}/{UID}.1/{UID}.1.{n}.dcm",
            "sopInstanceUID": f"{UID}.1.{n}",
            "seriesInstanceUID": f"{UID}.1",
            "bytes": 1000,
        }
        for n in range(3)
    ]
    return manifest_for("b-1", UID, instances)


def mutated(path: tuple, value) -> dict:
    doc = valid()
    target = doc
    for step in path[:-1]:
        target = target[step]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


CASES = {
    "valid": valid(),
    "missing batchId": mutated(("batchId",), KeyError),
    "wrong schemaVersion": mutated(("schemaVersion",), 2),
    "bad batchId": mutated(("batchId",), "has space"),
    "batchId too long": mutated(("batchId",), "b" * 65),
    "bool count": mutated(("instanceCount",), True),
    "zero count": mutated(("instanceCount",), 0),
    "string bytes": mutated(("totalBytes",), "12"),
    "too many bytes": mutated(("totalBytes",), 10_000_000_001),
    "long AE title": mutated(("callingAETitle",), "A" * 17),
    "bad uid": mutated(("studyInstanceUID",), "1.2.a"),
    "long uid": mutated(("studyInstanceUID",), "1." * 32 + "1"),
    "bad date": mutated(("studyDate",), "2026-01-02"),
    "empty date": mutated(("studyDate",), ""),
    "no series": mutated(("seriesInstanceUIDs",), []),
    "extra property": mutated(("patientName",), "DOE^JOHN"),
    "instance extra": mutated(("instances", 0, "pixelData"), "x"),
    "instance zero bytes": mutated(("instances", 0, "bytes"), 0),
    "instance without key": mutated(("instances", 1, "key"), KeyError),
    "instances not list": mutated(("instances",), {}),
    "bad timestamp": mutated(("closedAt",), "2026-01-02 03:05:00"),
    "bad reason": mutated(("closeReason",), "crashed"),
    "bad prefix": mutated(("inputPrefix",), "elsewhere/b-1/"),
    "too many instances": mutated(("instances",), valid()["instances"] * 1667),
}


@pytest.mark.parametrize("name", CASES)
def test_agrees_with_jsonschema(name):
    doc = copy.deepcopy(CASES[name])
    expected = jsonschema.Draft202012Validator(manifest_schema()).is_valid(doc)

    errors = schema_errors(doc, manifest_schema())

    assert (not errors) == expected, errors
    assert expected == (name == "valid" or name == "empty date")


def test_open_marker_definition_agrees_with_jsonschema():
    marker = {
        "schemaVersion": 1,
        "batchId": "b-1",
        "inputPrefix": "incoming/b-1/",
        "callingAETitle": "",
        "calledAETitle": "",
        "studyInstanceUID": UID,
        "openedAt": "2026-01-02T03:04:05Z",
    }
    schema = {**manifest_schema(), **manifest_schema()["$defs"]["openMarker"]}
    for doc in (marker, {**marker, "batchId": "bad id"}, {**marker, "extra": 1}):
        assert (not open_marker_errors(doc)) == jsonschema.Draft202012Validator(schema).is_valid(
            doc
        )


def test_unknown_keyword_is_refused_rather_than_ignored():
    with pytest.raises(ValueError, match="oneOf"):
        schema_errors({}, {"oneOf": [{"type": "string"}]})
