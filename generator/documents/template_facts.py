"""Read a built template as data for the generated documents: resources by type, values as a
stack deployed with the parameters' defaults would have them, and intrinsics in words.

The documents walk what `build_template(spec)` emits rather than restating it, so they follow
every change to the template.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from troposphere import Template

NO_VALUE = object()
# Pseudo parameters as a reader fills them in (CloudFormation user guide, "Pseudo parameters
# reference"): the partition and URL suffix of the commercial Regions, the others as placeholders.
PSEUDO_PARAMETERS = {
    "AWS::Region": "<region>",
    "AWS::AccountId": "<account-id>",
    "AWS::StackName": "<stack-name>",
    "AWS::StackId": "<stack-id>",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: dict[str, Any]
    condition: str | None
    deletion_policy: str | None


def references(node: Any) -> list[str]:
    """Logical IDs (or parameter names) a value names by Ref or Fn::GetAtt, in order, once."""
    found: list[str] = []
    if isinstance(node, list):
        for n in node:
            found += references(n)
    elif isinstance(node, dict):
        if set(node) == {"Ref"}:
            found.append(node["Ref"])
        elif set(node) == {"Fn::GetAtt"}:
            found.append(node["Fn::GetAtt"][0])
        else:
            for v in node.values():
                found += references(v)
    return list(dict.fromkeys(found))


class TemplateFacts:
    """The template as CloudFormation reads it (its JSON), under the parameters' defaults."""

    def __init__(self, template: Template | dict[str, Any]) -> None:
        self.data = json.loads(template.to_json()) if isinstance(template, Template) else template
        self.parameters: dict[str, dict[str, Any]] = self.data.get("Parameters", {})
        self.conditions: dict[str, Any] = self.data.get("Conditions", {})

    # -- resources -------------------------------------------------------------------------
    def resources(self, *types: str) -> Iterator[Resource]:
        """Resources of the given types (all when none), in logical ID order."""
        for logical_id, r in sorted(self.data["Resources"].items()):
            if not types or r["Type"] in types:
                yield Resource(
                    logical_id,
                    r["Type"],
                    r.get("Properties", {}),
                    r.get("Condition"),
                    r.get("DeletionPolicy"),
                )

    def resource(self, logical_id: str) -> Resource:
        return next(r for r in self.resources() if r.logical_id == logical_id)

    def container(self) -> dict[str, Any]:
        """The SCP's container: the one container of the one task definition."""
        (task,) = self.resources("AWS::ECS::TaskDefinition")
        (container,) = task.properties["ContainerDefinitions"]
        return container

    def output_for(self, logical_id: str) -> str | None:
        """The name of the first output whose value is a Ref to logical_id, if any."""
        for name, output in self.data.get("Outputs", {}).items():
            if output.get("Value") == {"Ref": logical_id}:
                return str(name)
        return None

    def deployed(self, *types: str) -> list[Resource]:
        """Resources a stack with default parameters creates."""
        return [r for r in self.resources(*types) if r.condition is None or self.holds(r.condition)]

    # -- values under the defaults ---------------------------------------------------------
    def default(self, parameter: str) -> Any:
        return self.parameters[parameter].get("Default")

    def holds(self, condition: str) -> bool:
        return bool(self.resolve(self.conditions[condition]))

    def resolve(self, node: Any) -> Any:
        """The value with Ref (parameters), Fn::If and condition functions evaluated under the
        defaults; anything else (GetAtt, Sub, resource Refs) is returned as it is."""
        if isinstance(node, list):
            return [v for v in (self.resolve(n) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict) or len(node) != 1:
            return node
        ((key, arg),) = node.items()
        if key == "Ref":
            if arg == "AWS::NoValue":
                return NO_VALUE
            return self.default(arg) if arg in self.parameters else node
        if key == "Fn::If":
            name, when_true, when_false = arg
            return self.resolve(when_true if self.holds(name) else when_false)
        if key == "Fn::Equals":
            return str(self.resolve(arg[0])) == str(self.resolve(arg[1]))
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Fn::And":
            return all(self.resolve(a) for a in arg)
        if key == "Fn::Or":
            return any(self.resolve(a) for a in arg)
        if key == "Condition":
            return self.holds(arg)
        return node

    def number(self, node: Any) -> float:
        """A numeric property under the defaults (CloudFormation passes numbers as strings)."""
        return float(self.resolve(node))

    # -- values in words -------------------------------------------------------------------
    def when(self, condition: str) -> str:
        """A condition as the parameters that decide it: '`TLSCertificateARN` is set'."""
        return self.condition_words(self.conditions[condition])

    def condition_words(self, node: Any) -> str:
        ((key, arg),) = node.items()
        if key == "Condition":
            return self.when(arg)
        if key in ("Fn::And", "Fn::Or"):
            joined = " and " if key == "Fn::And" else " or "
            return joined.join(self.condition_words(a) for a in arg)
        negated = key == "Fn::Not"
        if negated:
            ((key, arg),) = arg[0].items()
        if key == "Fn::Equals" and isinstance(arg[0], dict) and set(arg[0]) == {"Ref"}:
            name, value = arg[0]["Ref"], arg[1]
            if value == "":
                return f"`{name}` is {'set' if negated else 'empty'}"
            return f"`{name}` is {'not ' if negated else ''}`{value}`"
        raise ValueError(f"no words for the condition {json.dumps(node)}")

    def sub(self, text: str) -> str:
        """An Fn::Sub string with its pseudo parameters filled in as a reader would."""
        for name, value in PSEUDO_PARAMETERS.items():
            text = text.replace(f"${{{name}}}", value)
        return text

    def describe(self, node: Any) -> str:
        """An intrinsic as a reader should see it: parameters by name and default."""
        if isinstance(node, list):
            return ", ".join(self.describe(n) for n in node)
        if not isinstance(node, dict) or len(node) != 1:
            return str(node).lower() if isinstance(node, bool) else str(node)
        ((key, arg),) = node.items()
        if key == "Ref":
            if arg == "AWS::NoValue":
                return "none"
            if arg in PSEUDO_PARAMETERS:
                return f"`{PSEUDO_PARAMETERS[arg]}`"
            if arg not in self.parameters:
                return f"`{arg}`"
            default = self.default(arg)
            if default is None:
                return f"`{arg}` (required)"
            return f"`{arg}` (default {f'`{default}`' if default != '' else 'empty'})"
        if key == "Fn::If":
            name, when_true, when_false = arg
            yes, no = self.describe(when_true), self.describe(when_false)
            if isinstance(when_false, dict) and when_false == {"Ref": "AWS::NoValue"}:
                return f"{yes} (when {self.when(name)})"
            return f"{yes} when {self.when(name)}, else {no}"
        if key == "Fn::GetAtt":
            return f"`{arg[0]}.{arg[1]}`"
        if key == "Fn::Sub":
            return f"`{self.sub(arg if isinstance(arg, str) else arg[0])}`"
        return f"`{json.dumps(node)}`"
