"""Load and validate the product spec (config/product.yaml) and the files it names."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from generator.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = ROOT / "config" / "product.yaml"
SCHEMA_PATH = ROOT / "config" / "product.schema.json"


@dataclass(frozen=True)
class ParameterSpec:
    """One template parameter; `properties` are its CloudFormation constraint properties."""

    name: str
    type: str
    group: str
    label: str
    description: str
    env: str | None
    properties: dict[str, Any]

    @classmethod
    def parse(cls, p: dict[str, Any]) -> ParameterSpec:
        return cls(
            name=p["name"],
            type=p["type"],
            group=p["group"],
            label=p["label"],
            description=p["description"],
            env=p.get("env"),
            properties={_PROPERTIES[k]: v for k, v in p.items() if k in _PROPERTIES},
        )


# Spec keys of a parameter -> CloudFormation parameter properties.
_PROPERTIES = {
    "default": "Default",
    "allowedPattern": "AllowedPattern",
    "allowedValues": "AllowedValues",
    "minLength": "MinLength",
    "maxLength": "MaxLength",
    "minValue": "MinValue",
    "maxValue": "MaxValue",
    "constraintDescription": "ConstraintDescription",
}


@dataclass(frozen=True)
class OutputSpec:
    """A stack output: exactly one of ref (logical ID), get_att ('Resource.Attribute'), sub, or
    expression (a value the generator computes)."""

    name: str
    description: str
    ref: str | None = None
    get_att: str | None = None
    sub: str | None = None
    expression: str | None = None
    condition: str | None = None  # the template Condition the output exists under


@dataclass(frozen=True)
class Image:
    registry: str
    repository: str
    tag: str

    @property
    def uri(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"

    @property
    def account(self) -> str:
        return self.registry.split(".")[0]

    @property
    def region(self) -> str:
        return self.registry.split(".")[3]


@dataclass(frozen=True)
class Marketplace:
    register_usage: bool
    product_code: str

    @property
    def metering_code(self) -> str:
        """The product code the SCP meters with: "" when the product does not meter."""
        return self.product_code if self.register_usage else ""


@dataclass(frozen=True)
class Alarms:
    dlq_depth: int
    lambda_error_rate_percent: float
    failed_imports: int
    cpu_percent: float
    memory_percent: float
    direct_fallbacks: int
    direct_fallback_periods: int
    store_failures: int
    store_failures_periods: int
    rejected_associations: int
    no_healthy_target_minutes: int
    unhealthy_target_periods: int


@dataclass(frozen=True)
class Resources:
    """Resource options fixed per release (config/product.schema.json describes each)."""

    widest_peer_prefix: int
    batch_max_files: int
    batch_max_bytes: int
    drain_timeout_seconds: int
    stop_timeout_seconds: int
    health_port: int
    container_port: int
    import_queue_max_receive_count: int
    sweep_schedule: str
    sweep_after_seconds: int
    lambda_timeout_seconds: int
    lambda_memory_mib: int
    alarms: Alarms


@dataclass(frozen=True)
class WorkflowSpec:
    definition_file: str
    functions: tuple[str, ...]


@dataclass(frozen=True)
class RunbookEntry:
    """What an alarm means and what the operator does about it (docs/runbook.md)."""

    meaning: str
    action: str


@dataclass(frozen=True)
class Skip:
    id: str
    reason: str


@dataclass(frozen=True)
class Lint:
    cfn_lint_ignore: tuple[Skip, ...]
    checkov_skips: tuple[Skip, ...]


def _camel(name: str) -> str:
    """'log_retention_days' -> 'logRetentionDays' (the spec's key for a field)."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


# Field names whose spec key is not their plain camelCase.
_KEYS = {"lambda_memory_mib": "lambdaMemoryMiB"}


def _fields(cls: type, data: dict[str, Any], **converted: Any) -> Any:
    """cls from the spec's camelCase keys; `converted` gives fields that need more than a copy."""
    keys = {f.name: _KEYS.get(f.name, _camel(f.name)) for f in fields(cls)}
    return cls(**{f: data[k] for f, k in keys.items() if f not in converted}, **converted)


@dataclass(frozen=True)
class Spec:
    """The validated spec, read once into typed parts, and the state machine definition, so that
    build_template does no I/O (the functions' inline code comes from generator/template/inline.py).

    `data` stays available for documents generated from the raw spec (schema-shaped)."""

    data: dict[str, Any]
    definition: dict[str, Any]
    name: str = field(init=False)
    version: str = field(init=False)
    description: str = field(init=False)
    seller_contact: str = field(init=False)
    image: Image = field(init=False)
    marketplace: Marketplace = field(init=False)
    parameter_groups: tuple[str, ...] = field(init=False)
    parameters: tuple[ParameterSpec, ...] = field(init=False)
    outputs: tuple[OutputSpec, ...] = field(init=False)
    resources: Resources = field(init=False)
    workflow: WorkflowSpec = field(init=False)
    lint: Lint = field(init=False)
    runbook: dict[str, RunbookEntry] = field(init=False)
    regions: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        d = self.data
        res = d["resources"]
        typed = {
            "name": d["product"]["name"],
            "version": d["product"]["version"],
            "description": d["product"]["description"],
            "seller_contact": d["product"]["sellerContact"],
            "image": Image(**d["image"]),
            "marketplace": Marketplace(
                d["marketplace"]["registerUsage"], d["marketplace"].get("productCode", "")
            ),
            "parameter_groups": tuple(d["parameterGroups"]),
            "parameters": tuple(ParameterSpec.parse(p) for p in d["parameters"]),
            "outputs": tuple(
                OutputSpec(
                    o["name"],
                    o["description"],
                    o.get("ref"),
                    o.get("getAtt"),
                    o.get("sub"),
                    o.get("expression"),
                    o.get("condition"),
                )
                for o in d["outputs"]
            ),
            "resources": _fields(
                Resources,
                res,
                alarms=_fields(Alarms, res["alarms"]),
            ),
            "workflow": WorkflowSpec(
                d["workflow"]["definitionFile"], tuple(d["workflow"]["functions"])
            ),
            "lint": Lint(
                tuple(Skip(**s) for s in d["lint"]["cfnLintIgnore"]),
                tuple(Skip(**s) for s in d["lint"]["checkovSkips"]),
            ),
            "runbook": {alarm: RunbookEntry(**e) for alarm, e in d.get("runbook", {}).items()},
            "regions": tuple(d["regions"]),
        }
        for key, value in typed.items():
            object.__setattr__(self, key, value)

    @property
    def image_uri(self) -> str:
        return self.image.uri

    def parameter(self, name: str) -> ParameterSpec:
        """The parameter of that name (the spec's names are unique)."""
        (p,) = (p for p in self.parameters if p.name == name)
        return p

    def parameters_in(self, group: str) -> list[ParameterSpec]:
        """Parameters of one console group, in spec order."""
        return [p for p in self.parameters if p.group == group]


def _json_path(parts: list[Any]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def first_error(schema_path: Path, data: Any) -> tuple[str, jsonschema.ValidationError] | None:
    """The first error of data against a JSON Schema file (by JSON path), with that path."""
    validator = jsonschema.Draft202012Validator(json.loads(schema_path.read_text()))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    return (_json_path(list(errors[0].absolute_path)), errors[0]) if errors else None


def validate(data: Any, source: Path) -> None:
    """Raise SpecError naming the file, the JSON path and the rule broken."""
    error = first_error(SCHEMA_PATH, data)
    if error:
        path, e = error
        raise SpecError(
            f"{source}: {path}: {e.message} "
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
    if res["healthPort"] == res["containerPort"]:
        raise SpecError(
            f"{source}: $.resources.healthPort: {res['healthPort']} is also containerPort "
            "(rule 'distinct-ports'); the SCP needs one port for DICOM and one for health checks"
        )
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
