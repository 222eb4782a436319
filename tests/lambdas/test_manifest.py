"""lambdas.manifest agrees with config/batch-manifest.schema.json, by which the SCP writes them.

The inline functions cannot carry the schema, so the trigger checks only the fields the workflow
uses. These tests derive what to expect from the schema itself: the check never needs a field the
schema leaves optional, never refuses a manifest the schema accepts, and refuses a schema-invalid
value of every field it needs.
"""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from generator.spec import ROOT
from lambdas.manifest import BATCH_ID, manifest_errors
from tests.lambdas.batches import manifest_for

SCHEMA = json.loads((ROOT / "config" / "batch-manifest.schema.json").read_text())
INSTANCE_SCHEMA = SCHEMA["properties"]["instances"]["items"]
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def sample(prefix: str = "", count: int = 2) -> dict:
    """A manifest with every property the schema knows, valid by the schema."""
    bid = "20260102T030405Z-0123456789ab"
    study, series = "1.2.840.1", "1.2.840.1.2"
    instances = [
        {
            "key": f"{prefix}incoming/{bid}/{study}/{series}/{series}.{n}.dcm",
            "sopInstanceUID": f"{series}.{n}",
            "seriesInstanceUID": series,
            "sopClassUID": "1.2.840.10008.5.1.4.1.1.2",
            "transferSyntaxUID": "1.2.840.10008.1.2.1",
            "bytes": 1000 + n,
        }
        for n in range(1, count + 1)
    ]
    manifest = manifest_for(bid, study, instances, prefix)
    assert set(manifest) == set(SCHEMA["properties"])
    assert all(set(i) == set(INSTANCE_SCHEMA["properties"]) for i in instances)
    VALIDATOR.validate(manifest)
    return manifest


def needed(document: dict, edit) -> set[str]:
    """The properties of `document` whose removal (by `edit`) the check refuses."""
    found = set()
    for name in list(document):
        manifest = edit(name)
        if manifest_errors(manifest):
            found.add(name)
    return found


def test_the_check_needs_only_fields_the_schema_requires():
    manifest = sample()

    def without(name):
        changed = copy.deepcopy(manifest)
        del changed[name]
        return changed

    def without_in_instance(name):
        changed = copy.deepcopy(manifest)
        del changed["instances"][0][name]
        return changed

    top = needed(manifest, without)
    per_instance = needed(manifest["instances"][0], without_in_instance)

    assert top and top <= set(SCHEMA["required"])
    assert per_instance and per_instance <= set(INSTANCE_SCHEMA["required"])


@pytest.mark.parametrize("prefix", ["", "store/", "a/b-c_d.e/"])
@pytest.mark.parametrize("count", [1, 5000])
def test_schema_valid_manifests_pass_the_check(prefix, count):
    assert manifest_errors(sample(prefix, count)) == []


def test_the_batch_id_pattern_is_the_schemas():
    assert f"^{BATCH_ID.pattern}$" == SCHEMA["$defs"]["batchId"]["pattern"]


BAD_VALUES = {
    "batchId": ["", "a" * 65, "has space", "a/b", 7],
    "inputPrefix": ["elsewhere/", "incoming/a b/", 7],
    "studyInstanceUID": [7, None],
    "instances": [[], "x", None],
    "instanceCount": [0, "2", None],
}
# Valid one by one, but not what the schema's descriptions say of the manifest as a whole.
INCONSISTENT = {"inputPrefix": "incoming/other/", "instanceCount": 3}
INSTANCE_BAD_VALUES = {"key": [7, None], "sopInstanceUID": [7, None], "seriesInstanceUID": [7]}


@pytest.mark.parametrize(
    ("name", "value"), [(n, v) for n, values in BAD_VALUES.items() for v in values]
)
def test_schema_invalid_values_the_workflow_uses_are_refused(name, value):
    manifest = sample()
    manifest[name] = value
    assert not VALIDATOR.is_valid(manifest)
    assert manifest_errors(manifest)


@pytest.mark.parametrize(("name", "value"), INCONSISTENT.items())
def test_values_that_disagree_with_the_rest_of_the_manifest_are_refused(name, value):
    manifest = sample()
    manifest[name] = value
    assert VALIDATOR.is_valid(manifest)
    assert manifest_errors(manifest)


@pytest.mark.parametrize(
    ("name", "value"), [(n, v) for n, values in INSTANCE_BAD_VALUES.items() for v in values]
)
def test_schema_invalid_instance_values_the_workflow_uses_are_refused(name, value):
    manifest = sample()
    manifest["instances"][1][name] = value
    assert not VALIDATOR.is_valid(manifest)
    assert manifest_errors(manifest)


def test_every_field_the_check_needs_has_a_refused_bad_value():
    manifest = sample()
    top = needed(manifest, lambda n: {k: v for k, v in manifest.items() if k != n})
    assert top == set(BAD_VALUES)
    assert set(INSTANCE_BAD_VALUES) <= set(INSTANCE_SCHEMA["required"])
