"""A small evaluator of CloudFormation intrinsic functions for given parameter values.

Enough for this template's Conditions, Fn::If branches, Rules and a resource's properties:
Ref (parameters; a List<...> parameter is a list; resources and pseudo parameters the test
names), Fn::Sub and Fn::GetAtt (the same names), Fn::If, Fn::Equals, Fn::Not, Fn::And,
Fn::Or, Fn::Contains, Condition, AWS::NoValue, and the rule functions Fn::EachMemberEquals,
Fn::EachMemberIn, Fn::ValueOf and Fn::ValueOfAll, which read subnet attributes from a table
the test gives (CloudFormation asks EC2; semantics:
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-rules.html).
"""

from __future__ import annotations

import re
from typing import Any

NO_VALUE = object()


class Evaluator:
    def __init__(
        self,
        template: dict[str, Any],
        parameters: dict[str, Any],
        subnets: dict[str, dict[str, str]] | None = None,
        names: dict[str, str] | None = None,
        region: str = "us-east-1",
    ):
        """names: what Ref and Fn::Sub give for resources and pseudo parameters (`DicomBucket`,
        `AWS::StackName`, `Role.Arn`); anything not named stays as it is written. `region` is
        what Ref AWS::Region gives (the Rules compare it)."""
        self.template = template
        self.region = region
        self.subnets = subnets or {}
        self.names = names or {}
        declared = template["Parameters"]
        unknown = set(parameters) - set(declared)
        assert not unknown, f"not template parameters: {unknown}"
        self.parameters = {
            name: str(parameters.get(name, p.get("Default", ""))) for name, p in declared.items()
        }

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(n) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                if arg in self.parameters:
                    return self._parameter(arg)
                if arg == "AWS::Region":
                    return self.names.get(arg, self.region)
                return self.names.get(arg, {"Ref": arg})
            if key == "Fn::Sub":
                return self._sub(node)
            if key == "Fn::GetAtt":
                return self.names.get(".".join(arg), node)
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.value(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = (str(self.value(a)) for a in arg)
                return left == right
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(a) for a in arg)
            if key == "Fn::Or":
                return any(self.value(a) for a in arg)
            if key == "Fn::Contains":
                values, item = self.value(arg[0]), self.value(arg[1])
                return str(item) in [str(v) for v in values]
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::EachMemberEquals":
                values, item = self.value(arg[0]), self.value(arg[1])
                return all(str(v) == str(item) for v in values)
            if key == "Fn::EachMemberIn":
                values, allowed = self.value(arg[0]), self.value(arg[1])
                return all(str(v) in [str(a) for a in allowed] for v in values)
            if key == "Fn::ValueOf":
                name, attribute = arg
                return [self.subnets[s][attribute] for s in self._parameter(name)]
            if key == "Fn::ValueOfAll":
                kind, attribute = arg
                names = [n for n, p in self.template["Parameters"].items() if kind in p["Type"]]
                return [self.subnets[s][attribute] for n in names for s in self._parameter(n)]
        out = {k: self.value(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    def _sub(self, node: dict[str, Any]) -> Any:
        """Fn::Sub with every ${Name} known (parameters, names, its own variables), else node."""
        arg = node["Fn::Sub"]
        text, own = (arg, {}) if isinstance(arg, str) else (arg[0], self.value(arg[1]))
        known = {**self.names, **self.parameters, **own}
        wanted = re.findall(r"\$\{([^}!]+)\}", text)
        if not all(name in known for name in wanted):
            return node
        return re.sub(r"\$\{([^}!]+)\}", lambda m: str(known[m.group(1)]), text)

    def _parameter(self, name: str) -> Any:
        value = self.parameters[name]
        if self.template["Parameters"][name]["Type"].startswith("List<"):
            return [v for v in value.split(",") if v]
        return value

    def resources(self) -> dict[str, Any]:
        """Resources that exist for these parameters, with Fn::If resolved."""
        return {
            name: self.value(r)
            for name, r in self.template["Resources"].items()
            if "Condition" not in r or self.condition(r["Condition"])
        }

    def failed_rules(self) -> list[str]:
        """Names of Rules whose assertion fails (only pure parameter logic is evaluable)."""
        failed = []
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.value(rule["RuleCondition"]):
                continue
            if not all(self.value(a["Assert"]) for a in rule["Assertions"]):
                failed.append(name)
        return failed
