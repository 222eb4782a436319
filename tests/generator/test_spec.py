"""Bad specs stop the build with the file, the JSON path and the rule broken."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from generator.errors import GeneratorError, SpecError
from generator.release.snapshot import PLACEHOLDER_DEFINITION
from generator.spec import SPEC_PATH, load
from generator.template.build import template_for


def write_spec(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(SPEC_PATH.read_text())
    change(data)
    path = tmp_path / "product.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def error_for(tmp_path: Path, change) -> str:
    with pytest.raises(SpecError) as raised:
        load(write_spec(tmp_path, change), definition_path=PLACEHOLDER_DEFINITION)
    assert isinstance(raised.value, GeneratorError)
    return str(raised.value)


def test_the_real_spec_is_valid():
    assert load(definition_path=PLACEHOLDER_DEFINITION).version


def test_missing_field(tmp_path):
    message = error_for(tmp_path, lambda d: d["product"].pop("version"))
    assert message.startswith(
        f"{tmp_path / 'product.yaml'}: $.product: 'version' is a required property"
    )
    assert "schema rule 'required'" in message


def test_wrong_type_names_the_json_path(tmp_path):
    message = error_for(tmp_path, lambda d: d["parameters"][7].update(default=[11112]))
    assert "$.parameters[7].default: [11112] is not of type 'string', 'integer'" in message
    assert "schema rule 'type'" in message


def test_unknown_field(tmp_path):
    message = error_for(tmp_path, lambda d: d["resources"].update(logRetention=7))
    assert (
        "$.resources: Additional properties are not allowed ('logRetention' was unexpected)"
        in message
    )
    assert "schema rule 'additionalProperties'" in message


def test_pattern(tmp_path):
    message = error_for(tmp_path, lambda d: d["product"].update(version="1.0"))
    assert "$.product.version: '1.0' does not match" in message and "rule 'pattern'" in message


def test_skip_without_reason(tmp_path):
    message = error_for(tmp_path, lambda d: d["lint"]["checkovSkips"][0].update(reason="because"))
    assert "$.lint.checkovSkips[0].reason" in message and "rule 'minLength'" in message


def test_unknown_group(tmp_path):
    message = error_for(tmp_path, lambda d: d["parameters"][0].update(group="Networking"))
    assert "$.parameters[0].group: 'Networking' is not one of parameterGroups" in message
    assert "rule 'group-exists'" in message


def test_duplicate_parameter(tmp_path):
    message = error_for(tmp_path, lambda d: d["parameters"].append(dict(d["parameters"][0])))
    assert "duplicate names ['VpcID'] (rule 'unique-names')" in message


def test_drain_must_end_before_the_stop_timeout(tmp_path):
    message = error_for(
        tmp_path, lambda d: d["resources"].update(drainTimeoutSeconds=119, stopTimeoutSeconds=100)
    )
    assert "$.resources.drainTimeoutSeconds: 119 is not below stopTimeoutSeconds 100" in message


def test_not_yaml(tmp_path):
    path = tmp_path / "product.yaml"
    path.write_text("product: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load(path)


def test_missing_state_machine_definition(tmp_path):
    with pytest.raises(
        SpecError,
        match=r"cannot read the state machine definition named by \$.workflow.definitionFile",
    ):
        load(definition_path=tmp_path / "missing.asl.json")


def test_unknown_placeholder_in_the_definition(tmp_path):
    definition = tmp_path / "asl.json"
    definition.write_text(
        json.dumps(
            {"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "${NotifyFunctionArn}"}}}
        )
    )
    with pytest.raises(SpecError, match=r"placeholders \['NotifyFunctionArn'\] match no function"):
        template_for(load(definition_path=definition))


def test_metering_needs_the_marketplace_product_code(tmp_path):
    message = error_for(tmp_path, lambda d: d["marketplace"].update(registerUsage=True))
    assert "$.marketplace.productCode: '' should be non-empty" in message


def test_health_port_differs_from_the_container_port(tmp_path):
    message = error_for(tmp_path, lambda d: d["resources"].update(healthPort=11112))
    assert "$.resources.healthPort: 11112 is also containerPort (rule 'distinct-ports')" in message


def test_output_naming_a_missing_resource(tmp_path):
    def change(d):
        d["outputs"].append({"name": "Typo", "description": "x", "ref": "DicomBuckett"})

    with pytest.raises(SpecError, match="Typo names DicomBuckett, which is not a parameter or"):
        template_for(load(write_spec(tmp_path, change), definition_path=PLACEHOLDER_DEFINITION))


def test_spec_and_generator_parameters_must_agree(tmp_path):
    def change(d):
        d["parameters"] = [p for p in d["parameters"] if p["name"] != "AlarmEmail"]

    with pytest.raises(SpecError, match=r"not in the spec \['AlarmEmail'\]"):
        template_for(load(write_spec(tmp_path, change), definition_path=PLACEHOLDER_DEFINITION))
