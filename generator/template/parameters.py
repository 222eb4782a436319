"""Parameters, their console groups and labels, the Conditions on them, and the Rules."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from troposphere import And, Equals, If, Not, Or, Parameter, Ref, Template

from generator.errors import SpecError
from generator.spec import Spec

INTERNAL = "internal"
INTERNET_FACING = "internet-facing"
# The idle timeout of NLB TLS listeners is 350 s and cannot be changed
# (https://docs.aws.amazon.com/elasticloadbalancing/latest/network/update-idle-timeout.html).
TLS_IDLE_TIMEOUT = 350


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
    LoadBalancerScheme: Parameter
    CreateS3GatewayEndpoint: Parameter
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
    KmsKeyArn: Parameter
    DIMSETimeout: Parameter
    MaximumAssociations: Parameter
    NetworkTimeout: Parameter
    SupportedSOPClassUIDs: Parameter
    LogRetentionDays: Parameter
    IncomingRetentionDays: Parameter
    ResultsRetentionDays: Parameter
    AccessLogRetentionDays: Parameter
    AlarmEmail: Parameter
    DatastoreId: Parameter
    EdgeTrustAnchorArn: Parameter
    DeployCloudSCP: Parameter

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
    no_tls: Condition
    has_peer2: Condition
    has_peer3: Condition
    create_key: Condition
    internal: Condition
    create_s3_endpoint: Condition
    has_alarm_email: Condition
    create_datastore: Condition
    has_edge_sites: Condition
    cloud_scp: Condition


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
            "config/product.yaml $.parameters and generator.template.parameters.Parameters "
            "disagree: "
            f"not in the spec {sorted(known - set(by_name))}, not in the generator "
            f"{sorted(set(by_name) - known)}; add the field or the spec entry"
        )
    return Parameters(**by_name)


CLOUD_SCP = {"Condition": "DeployCloudSCP"}  # a reference to the Condition inside another


def _condition(t: Template, name: str, expression: Any) -> Condition:
    t.add_condition(name, expression)
    return Condition(name)


def _is_empty(parameter: Parameter) -> Equals:
    return Equals(Ref(parameter), "")


def _is_set(parameter: Parameter) -> Not:
    return Not(_is_empty(parameter))


def add_parameters(t: Template, spec: Spec) -> Inputs:
    """Parameters, then the Conditions for the optional parts: TLS listener, peer ranges 2-3,
    the stack's own key, internal load balancer, S3 endpoint, alarm e-mail, own data store,
    edge sites, the cloud SCP service (load balancer and Fargate; optional for edge-only sites)."""
    p = _parameters(t, spec)
    conditions = Conditions(
        # The listeners and peer rules exist only with the cloud SCP.
        has_tls=_condition(t, "HasTLSCertificate", And(_is_set(p.TLSCertificateARN), CLOUD_SCP)),
        no_tls=_condition(t, "NoTLSCertificate", And(_is_empty(p.TLSCertificateARN), CLOUD_SCP)),
        has_peer2=_condition(t, "HasPeerCIDR2", And(_is_set(p.PeerCIDR2), CLOUD_SCP)),
        has_peer3=_condition(t, "HasPeerCIDR3", And(_is_set(p.PeerCIDR3), CLOUD_SCP)),
        create_key=_condition(t, "CreateEncryptionKey", _is_empty(p.KmsKeyArn)),
        internal=_condition(t, "InternalLoadBalancer", Equals(Ref(p.LoadBalancerScheme), INTERNAL)),
        create_s3_endpoint=_condition(
            t, "CreateS3Endpoint", Equals(Ref(p.CreateS3GatewayEndpoint), "true")
        ),
        has_alarm_email=_condition(t, "HasAlarmEmail", _is_set(p.AlarmEmail)),
        create_datastore=_condition(t, "CreateDatastore", _is_empty(p.DatastoreId)),
        has_edge_sites=_condition(t, "HasEdgeSites", _is_set(p.EdgeTrustAnchorArn)),
        cloud_scp=_condition(t, CLOUD_SCP["Condition"], Equals(Ref(p.DeployCloudSCP), "true")),
    )
    return Inputs(p, conditions)


def _assertion(condition: Any, description: str) -> dict[str, Any]:
    return {"Assert": condition, "AssertDescription": description}


def _values(low: int, high: int) -> list[str]:
    """Every whole number low..high as the strings Fn::Contains compares."""
    return [str(n) for n in range(low, high + 1)]


def _number_range(spec: Spec, name: str) -> tuple[int, int]:
    properties = spec.parameter(name).properties
    return properties["MinValue"], properties["MaxValue"]


def add_rules(t: Template, spec: Spec, inputs: Inputs) -> None:
    """Rules that refuse a parameter set that cannot work, before anything is created
    (rule functions: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-rules.html)."""
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
    # An internet-facing NLB serves only the zones of its public subnets: a task in another
    # zone never becomes healthy. An internal NLB uses the private subnets themselves.
    t.add_rule(
        "TaskSubnetsServedByLoadBalancer",
        {
            "RuleCondition": Equals(Ref(p.LoadBalancerScheme), INTERNET_FACING),
            "Assertions": [
                _assertion(
                    {
                        "Fn::EachMemberIn": [
                            {"Fn::ValueOf": [p.PrivateSubnetIDs.title, "AvailabilityZone"]},
                            {"Fn::ValueOf": [p.PublicSubnetIDs.title, "AvailabilityZone"]},
                        ]
                    },
                    "Every private subnet's Availability Zone must also have one of "
                    "PublicSubnetIDs (the load balancer serves only those zones); add a public "
                    "subnet in that zone or use LoadBalancerScheme internal.",
                )
            ],
        },
    )
    _, most = _number_range(spec, p.AutoscaleMaxCapacity.title)
    low, high = _number_range(spec, p.TaskDesiredCount.title)
    t.add_rule(
        "AutoscaleMaxNotBelowDesired",
        {
            "Assertions": [
                _assertion(
                    Or(
                        Not(Equals(Ref(p.TaskDesiredCount), str(desired))),
                        {"Fn::Contains": [_values(desired, most), Ref(p.AutoscaleMaxCapacity)]},
                    ),
                    f"With TaskDesiredCount {desired}, AutoscaleMaxCapacity must be at least "
                    f"{desired}.",
                )
                for desired in range(max(low, 2), high + 1)
            ]
        },
    )
    shortest, _ = _number_range(spec, p.NetworkTimeout.title)
    t.add_rule(
        "NetworkTimeoutWithinTlsIdleTimeout",
        {
            "RuleCondition": _is_set(p.TLSCertificateARN),
            "Assertions": [
                _assertion(
                    {"Fn::Contains": [_values(shortest, TLS_IDLE_TIMEOUT), Ref(p.NetworkTimeout)]},
                    f"With TLSCertificateARN, NetworkTimeout must be at most {TLS_IDLE_TIMEOUT}: "
                    "the load balancer closes idle TLS connections after "
                    f"{TLS_IDLE_TIMEOUT} seconds.",
                )
            ],
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
