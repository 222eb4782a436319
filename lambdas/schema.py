"""A small JSON Schema validator for the subset that config/batch-manifest.schema.json uses.

Lambda packages carry no third-party code, and jsonschema pulls in a compiled dependency, so the
manifest is checked here. Any keyword outside the subset is refused, so a schema that grows beyond
it fails loudly instead of being half-checked (the tests compare this with jsonschema).
"""

from __future__ import annotations

import re
from typing import Any

ANNOTATIONS = {"$schema", "$id", "title", "description", "$defs"}
TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
}


def schema_errors(
    instance: Any, schema: dict, root: dict | None = None, path: str = "$"
) -> list[str]:
    """Every way `instance` breaks `schema`, as 'path: problem' strings (empty when valid)."""
    root = root if root is not None else schema
    errors: list[str] = []
    for keyword, value in schema.items():
        if keyword in ANNOTATIONS:
            continue
        check = CHECKS.get(keyword)
        if check is None:
            raise ValueError(
                f"schema keyword {keyword!r} at {path} is not supported by lambdas.schema"
            )
        errors.extend(check(instance, value, schema, root, path))
    return errors


def _type(instance, value, schema, root, path):
    ok = isinstance(instance, TYPES[value]) and not (
        value == "integer" and isinstance(instance, bool)
    )
    return [] if ok else [f"{path}: expected {value}"]


def _ref(instance, value, schema, root, path):
    if not value.startswith("#/$defs/"):
        raise ValueError(f"only local #/$defs/ references are supported, not {value!r}")
    return schema_errors(instance, root["$defs"][value.removeprefix("#/$defs/")], root, path)


def _const(instance, value, schema, root, path):
    return [] if instance == value else [f"{path}: must be {value!r}"]


def _enum(instance, value, schema, root, path):
    return [] if instance in value else [f"{path}: must be one of {value}"]


def _pattern(instance, value, schema, root, path):
    if isinstance(instance, str) and not re.search(value, instance):
        return [f"{path}: does not match {value}"]
    return []


def _bound(name: str, measure, fails):
    def check(instance, value, schema, root, path):
        measured = measure(instance)
        if measured is not None and fails(measured, value):
            return [f"{path}: {name} is {value}"]
        return []

    return check


def _string_length(instance):
    return len(instance) if isinstance(instance, str) else None


def _array_length(instance):
    return len(instance) if isinstance(instance, list) else None


def _number(instance):
    return (
        instance if isinstance(instance, int | float) and not isinstance(instance, bool) else None
    )


def _required(instance, value, schema, root, path):
    if not isinstance(instance, dict):
        return []
    return [f"{path}: missing required {name!r}" for name in value if name not in instance]


def _properties(instance, value, schema, root, path):
    if not isinstance(instance, dict):
        return []
    errors: list[str] = []
    for name, subschema in value.items():
        if name in instance:
            errors.extend(schema_errors(instance[name], subschema, root, f"{path}.{name}"))
    return errors


def _additional(instance, value, schema, root, path):
    if value is not False:
        raise ValueError("only 'additionalProperties: false' is supported")
    if not isinstance(instance, dict):
        return []
    known = schema.get("properties", {})
    return [f"{path}: unexpected property {name!r}" for name in instance if name not in known]


def _items(instance, value, schema, root, path):
    if not isinstance(instance, list):
        return []
    errors: list[str] = []
    for index, item in enumerate(instance):
        errors.extend(schema_errors(item, value, root, f"{path}[{index}]"))
    return errors


CHECKS = {
    "type": _type,
    "$ref": _ref,
    "const": _const,
    "enum": _enum,
    "pattern": _pattern,
    "minLength": _bound("minLength", _string_length, lambda n, v: n < v),
    "maxLength": _bound("maxLength", _string_length, lambda n, v: n > v),
    "minItems": _bound("minItems", _array_length, lambda n, v: n < v),
    "maxItems": _bound("maxItems", _array_length, lambda n, v: n > v),
    "minimum": _bound("minimum", _number, lambda n, v: n < v),
    "maximum": _bound("maximum", _number, lambda n, v: n > v),
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional,
    "items": _items,
}
