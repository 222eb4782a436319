"""Load and validate the product spec (config/product.yaml) and the files it names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from generator.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "config" / "product.yaml"
SCHEMA_PATH = ROOT / "config" / "product.schema.json"


@dataclass(frozen=True)
class Spec:
    """The validated spec and the state machine definition it names."""

    data: dict[str, Any]
    definition: dict[str, Any]

    @property
    def version(self) -> str:
        return self.data["product"]["version"]

    @property
    def image_uri(self) -> str:
        image = self.data["image"]
        return f"{image['registry']}/{image['repository']}:{image['tag']}"

    @property
    def resources(self) -> dict[str, Any]:
        return self.data["resources"]


def _json_path(parts: list[Any]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def validate(data: Any, source: Path) -> None:
    """Raise SpecError naming the file, the JSON path and the rule broken."""
    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        e = errors[0]
        raise SpecError(
            f"{source}: {_json_path(list(e.absolute_path))}: {e.message} "
            f"(schema rule '{e.validator}' at {'/'.join(map(str, e.schema_path))}); "
            "fix the spec, see config/product.schema.json"
        )
    _check_consistency(data, source)


def _check_consistency(data: dict[str, Any], source: Path) -> None:
    """Rules a JSON Schema cannot say: cross-references between fields."""
    groups = data["parameterGroups"]
    names = [p["name"] for p in data["parameters"]]
    for i, p in enumerate(data["parameters"]):
        if p["group"] not in groups:
            raise SpecError(
                f"{source}: $.parameters[{i}].group: '{p['group']}' is not one of "
                f"parameterGroups {groups} (rule 'group-exists'); add it there or fix the name"
            )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SpecError(
            f"{source}: $.parameters: duplicate names {duplicates} (rule 'unique-names'); "
            "each parameter must appear once"
        )
    res = data["resources"]
    if res["drainTimeoutSeconds"] >= res["stopTimeoutSeconds"]:
        raise SpecError(
            f"{source}: $.resources.drainTimeoutSeconds: {res['drainTimeoutSeconds']} is not "
            f"below stopTimeoutSeconds {res['stopTimeoutSeconds']} (rule 'drain-before-stop'); "
            "lower it so the SCP closes its batches before ECS kills it"
        )


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the spec ({exc.strerror}); check the path") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML ({exc}); fix the syntax") from exc


def _read_definition(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise SpecError(
            f"{path}: cannot read the state machine definition named by "
            f"$.workflow.definitionFile ({exc.strerror}); add the file or fix the path"
        ) from exc
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path}: state machine definition is not valid JSON ({exc})") from exc


def load(path: Path = SPEC_PATH, root: Path = ROOT, definition_path: Path | None = None) -> Spec:
    """Read, validate and return the spec; definition_path overrides the spec's ASL file."""
    data = _read_yaml(path)
    validate(data, path)
    definition = _read_definition(definition_path or root / data["workflow"]["definitionFile"])
    return Spec(data, definition)
