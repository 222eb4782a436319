"""E9002: no hard-coded AWS account ID or region outside Parameters and Metadata."""

from __future__ import annotations

import re

from cfnlint.rules import CloudFormationLintRule, RuleMatch

ACCOUNT = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")
REGION = re.compile(
    r"\b(us|eu|ap|sa|ca|me|af|il|mx|cn)(-gov|-iso[a-z]?)?-"
    r"(north|south|east|west|central|northeast|southeast|northwest|southwest)-[0-9]\b"
)
SECTIONS = ("Resources", "Outputs", "Conditions", "Mappings", "Rules")


def _strings(node, path):
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, [*path, key])
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, [*path, i])


class NoHardcodedAccountOrRegion(CloudFormationLintRule):
    """Use AWS::AccountId and AWS::Region; the template must deploy in any account and region."""

    id = "E9002"
    shortdesc = "No hard-coded account ID or region"
    description = (
        "Account IDs and regions come from pseudo parameters. Exact strings listed in the "
        "'allowed' setting (the Marketplace image URI and repository ARN) are exempt, and so "
        "are region names in the Rules named by 'regionRules' (the list of supported Regions)."
    )
    source_url = "https://github.com/storescp-healthimaging"
    tags = ("resources", "project")

    def __init__(self):
        super().__init__()
        self.config_definition = {
            "allowed": {"default": [], "type": "list", "itemtype": "string"},
            "regionRules": {"default": [], "type": "list", "itemtype": "string"},
        }
        self.configure()

    def match(self, cfn):
        matches = []
        allowed = set(self.config["allowed"])
        region_rules = set(self.config["regionRules"])
        for section in SECTIONS:
            for path, value in _strings(cfn.template.get(section, {}), [section]):
                if value in allowed:
                    continue
                listing = section == "Rules" and path[1] in region_rules
                for kind, pattern in (("account ID", ACCOUNT), ("region", REGION)):
                    found = pattern.search(value)
                    if found and not (listing and kind == "region"):
                        matches.append(
                            RuleMatch(
                                path,
                                f"Hard-coded {kind} '{found.group(0)}'; use the "
                                "AWS::AccountId or AWS::Region pseudo parameter",
                            )
                        )
        return matches
