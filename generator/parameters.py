"""Parameters, their console groups and labels, the Conditions on them, and the Rules."""

from __future__ import annotations

from troposphere import Equals, Not, Parameter, Ref, Template

from generator.spec import Spec

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

HAS_TLS = "HasTLSCertificate"
HAS_PEER2 = "HasPeerCIDR2"
HAS_PEER3 = "HasPeerCIDR3"


def add_parameters(t: Template, spec: Spec) -> dict[str, Parameter]:
    """Add every spec parameter in console order; return them by name."""
    params: dict[str, Parameter] = {}
    for group in spec.data["parameterGroups"]:
        for p in (p for p in spec.data["parameters"] if p["group"] == group):
            props = {_PROPERTIES[k]: v for k, v in p.items() if k in _PROPERTIES}
            param = t.add_parameter(
                Parameter(p["name"], Type=p["type"], Description=p["description"], **props)
            )
            t.set_parameter_label(param, p["label"])
            t.add_parameter_to_group(param, group)
            params[p["name"]] = param
    return params


def add_conditions(t: Template) -> None:
    """Optional parts: the TLS listener and the second and third peer ranges."""
    t.add_condition(HAS_TLS, Not(Equals(Ref("TLSCertificateARN"), "")))
    t.add_condition(HAS_PEER2, Not(Equals(Ref("PeerCIDR2"), "")))
    t.add_condition(HAS_PEER3, Not(Equals(Ref("PeerCIDR3"), "")))


def fargate_memory_values(size: dict[str, int]) -> list[str]:
    """Every memory value (MiB, as strings) Fargate accepts for one CPU value."""
    return [str(m) for m in range(size["min"], size["max"] + 1, size["step"])]


def add_rules(t: Template, spec: Spec) -> None:
    """Rules that refuse the guide's common deployment errors before anything is created."""
    subnet_attr = "AWS::EC2::Subnet::Id"
    t.add_rule(
        "SubnetsInVpc",
        {
            "Assertions": [
                {
                    "Assert": {
                        "Fn::EachMemberEquals": [
                            {"Fn::ValueOfAll": [subnet_attr, "VpcId"]},
                            Ref("VpcID"),
                        ]
                    },
                    "AssertDescription": "Every public and private subnet must be in VpcID.",
                }
            ]
        },
    )
    t.add_rule(
        "SubnetsInAvailabilityZones",
        {
            "Assertions": [
                {
                    "Assert": {
                        "Fn::EachMemberIn": [
                            {"Fn::ValueOfAll": [subnet_attr, "AvailabilityZone"]},
                            Ref("AvailabilityZones"),
                        ]
                    },
                    "AssertDescription": "Every subnet must be in one of AvailabilityZones.",
                }
            ]
        },
    )
    t.add_rule(
        "HealthPortIsNotDicomPort",
        {
            "Assertions": [
                {
                    "Assert": Not(Equals(Ref("SCPPort"), str(spec.resources["healthPort"]))),
                    "AssertDescription": (
                        f"SCPPort must differ from {spec.resources['healthPort']}, "
                        "the SCP's health check port."
                    ),
                }
            ]
        },
    )
    for cpu, size in spec.resources["fargateSizes"].items():
        t.add_rule(
            f"FargateMemoryForCpu{cpu}",
            {
                "RuleCondition": Equals(Ref("TaskCPU"), cpu),
                "Assertions": [
                    {
                        "Assert": {
                            "Fn::Contains": [fargate_memory_values(size), Ref("TaskMemoryLimit")]
                        },
                        "AssertDescription": (
                            f"With TaskCPU {cpu}, TaskMemoryLimit must be {size['min']}-"
                            f"{size['max']} MiB in steps of {size['step']}."
                        ),
                    }
                ],
            },
        )
