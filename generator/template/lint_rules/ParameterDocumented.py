"""E9001: every parameter has a description, a console label and a console group."""

from __future__ import annotations

from cfnlint.rules import CloudFormationLintRule, RuleMatch


class ParameterDocumented(CloudFormationLintRule):
    """Every parameter has a Description, a ParameterLabels entry and a ParameterGroups entry."""

    id = "E9001"
    shortdesc = "Parameters have a description, a label and a group"
    description = "The console shows every parameter with a label, in a group, with a description."
    source_url = "https://github.com/storescp-healthimaging"
    tags = ("parameters", "project")

    def match(self, cfn):
        matches = []
        interface = cfn.template.get("Metadata", {}).get("AWS::CloudFormation::Interface", {})
        labels = interface.get("ParameterLabels", {})
        grouped = {p for g in interface.get("ParameterGroups", []) for p in g.get("Parameters", [])}
        for name, parameter in cfn.template.get("Parameters", {}).items():
            path = ["Parameters", name]
            if not str(parameter.get("Description", "")).strip():
                matches.append(RuleMatch(path, f"Parameter {name} has no Description"))
            if not str(labels.get(name, {}).get("default", "")).strip():
                matches.append(RuleMatch(path, f"Parameter {name} has no console label"))
            if name not in grouped:
                matches.append(RuleMatch(path, f"Parameter {name} is in no console group"))
        return matches
