"""Parameters, their console groups and labels, the Conditions on them, and the Rules."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from troposphere import Equals, If, Not, Parameter, Ref, Template

from generator.errors import SpecError
from generator.spec import Spec


@dataclass(frozen=True)
class Parameters:
    """Every template parameter as its troposphere object; a field's name is the logical ID,
    so a typo fails when the template is built, not at lint time."""

    VpcID: Parameter
    PublicSubnetIDs: Parameter
    PrivateSubnetIDs: Parameter
    AvailabilityZones: Parameter
    SecurityGroupID: Parameter
    VpcCIDR: Parameter
    SCPAETitle: Parameter
    SCPPort: Parameter
    PeerCIDR1: Parameter
    PeerCIDR2: Parameter
    PeerCIDR3: Parameter
    RequireCalledAETitle: Parameter
    RequireCallingAETitle: Parameter
    TaskCPU: Parameter
    TaskMemoryLimit: Parameter
    TaskDesiredCount: Parameter
    AutoscaleMaxCapacity: Parameter
    TLSCertificateARN: Parameter
    DIMSETimeout: Parameter
    MaximumAssociations: Parameter
    NetworkTimeout: Parameter
    SupportedSOPClassUIDs: Parameter

    def by_name(self, name: str) -> Parameter:
        return getattr(self, name)


@dataclass(frozen=True)
class Condition:
    """A template Condition, used by name in Condition= and Fn::If."""

    name: str

    def choose(self, when_true: Any, when_false: Any) -> If:
        """Fn::If on this condition."""
        return If(self.name, when_true, when_false)


@dataclass(frozen=True)
class Conditions:
    has_tls: Condition
    has_peer2: Condition
    has_peer3: Condition


@dataclass(frozen=True)
class Inputs:
    """What the other generator modules receive: the parameters and the Conditions on them."""

    parameters: Parameters
    conditions: Conditions


def _parameters(t: Template, spec: Spec) -> Parameters:
    """Add every spec parameter in console order."""
    by_name: dict[str, Parameter] = {}
    for group in spec.parameter_groups:
        for p in spec.parameters_in(group):
            param = t.add_parameter(
                Parameter(p.name, Type=p.type, Description=p.description, **p.properties)
            )
            t.set_parameter_label(param, p.label)
            t.add_parameter_to_group(param, group)
            by_name[p.name] = param
    known = {f.name for f in fields(Parameters)}
    if set(by_name) != known:
        raise SpecError(
            f"config/product.yaml $.parameters and generator.parameters.Parameters disagree: "
            f"not in the spec {sorted(known - set(by_name))}, not in the generator "
            f"{sorted(set(by_name) - known)}; add the field or the spec entry"
        )
    return Parameters(**by_name)


def _condition(t: Template, name: str, expression: Any) -> Condition:
    t.add_condition(name, expression)
    return Condition(name)


def _is_set(parameter: Parameter) -> Not:
    return Not(Equals(Ref(parameter), ""))


def add_parameters(t: Template, spec: Spec) -> Inputs:
    """Parameters, then the Conditions for the optional parts (TLS listener, peer ranges 2-3)."""
    p = _parameters(t, spec)
    conditions = Conditions(
        has_tls=_condition(t, "HasTLSCertificate", _is_set(p.TLSCertificateARN)),
        has_peer2=_condition(t, "HasPeerCIDR2", _is_set(p.PeerCIDR2)),
        has_peer3=_condition(t, "HasPeerCIDR3", _is_set(p.PeerCIDR3)),
    )
    return Inputs(p, conditions)


def _assertion(condition: Any, description: str) -> dict[str, Any]:
    return {"Assert": condition, "AssertDescription": description}


def add_rules(t: Template, spec: Spec, inputs: Inputs) -> None:
    """Rules that refuse the guide's common deployment errors before anything is created."""
    p = inputs.parameters
    subnet_attr = "AWS::EC2::Subnet::Id"
    t.add_rule(
        "SubnetsInVpc",
        {
            "Assertions": [
                _assertion(
                    {
                        "Fn::EachMemberEquals": [
                            {"Fn::ValueOfAll": [subnet_attr, "VpcId"]},
                            Ref(p.VpcID),
                        ]
                    },
                    "Every public and private subnet must be in VpcID.",
                )
            ]
        },
    )
    t.add_rule(
        "SubnetsInAvailabilityZones",
        {
            "Assertions": [
                _assertion(
                    {
                        "Fn::EachMemberIn": [
                            {"Fn::ValueOfAll": [subnet_attr, "AvailabilityZone"]},
                            Ref(p.AvailabilityZones),
                        ]
                    },
                    "Every subnet must be in one of AvailabilityZones.",
                )
            ]
        },
    )
    health_port = spec.resources.health_port
    t.add_rule(
        "HealthPortIsNotDicomPort",
        {
            "Assertions": [
                _assertion(
                    Not(Equals(Ref(p.SCPPort), str(health_port))),
                    f"SCPPort must differ from {health_port}, the SCP's health check port.",
                )
            ]
        },
    )
    for cpu, size in spec.resources.fargate_sizes.items():
        t.add_rule(
            f"FargateMemoryForCpu{cpu}",
            {
                "RuleCondition": Equals(Ref(p.TaskCPU), cpu),
                "Assertions": [
                    _assertion(
                        {"Fn::Contains": [size.memory_values(), Ref(p.TaskMemoryLimit)]},
                        f"With TaskCPU {cpu}, TaskMemoryLimit must be {size.min}-"
                        f"{size.max} MiB in steps of {size.step}.",
                    )
                ],
            },
        )
