"""Parameters, their console groups and labels, the Conditions on them, and the Rules."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from troposphere import And, Equals, If, Not, Or, Parameter, Ref, Template

from generator.errors import SpecError
from generator.spec import Spec
from generator.template.fargate_sizes import TASK_MEMORY_MIB, describe

INTERNAL = "internal"
INTERNET_FACING = "internet-facing"
# The idle timeout of NLB TLS listeners is 350 s and cannot be changed
# (https://docs.aws.amazon.com/elasticloadbalancing/latest/network/update-idle-timeout.html).
TLS_IDLE_TIMEOUT = 350
ANYWHERE = "0.0.0.0/0"


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
    CreateInterfaceEndpoints: Parameter
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
    RemoteAETitles: Parameter
    RemoteAECIDR: Parameter
    CommitmentCommitOn: Parameter
    CommitmentTimeout: Parameter
    CommitmentDeliveryWindow: Parameter
    LogRetentionDays: Parameter
    IncomingRetentionDays: Parameter
    ResultsRetentionDays: Parameter
    AccessLogRetentionDays: Parameter
    LogUIDs: Parameter
    AlarmEmail: Parameter
    DatastoreId: Parameter
    DirectStore: Parameter
    DirectStoreCallingAETitles: Parameter
    DirectStoreHighPriority: Parameter
    DirectStoreBudget: Parameter
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
    create_interface_endpoints: Condition
    has_alarm_email: Condition
    create_datastore: Condition
    has_remote_aes: Condition
    has_edge_sites: Condition
    cloud_scp: Condition
    direct_store: Condition
    commit_on_stored: Condition


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


CLOUD_SCP = {"Condition": "CloudSCP"}  # a reference to the Condition inside another


def _condition(t: Template, name: str, expression: Any) -> Condition:
    t.add_condition(name, expression)
    return Condition(name)


def _is_empty(parameter: Parameter) -> Equals:
    return Equals(Ref(parameter), "")


def _is_set(parameter: Parameter) -> Not:
    return Not(_is_empty(parameter))


def add_parameters(t: Template, spec: Spec) -> Inputs:
    """Parameters, then the Conditions for the optional parts: TLS listener, peer ranges 2-3,
    the stack's own key, internal load balancer, S3 and interface endpoints, alarm e-mail, own
    data store, edge sites, the cloud SCP service (load balancer and Fargate; optional for
    edge-only sites)."""
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
        create_interface_endpoints=_condition(
            t,
            "CreateTaskEndpoints",
            And(Equals(Ref(p.CreateInterfaceEndpoints), "true"), CLOUD_SCP),
        ),
        has_alarm_email=_condition(t, "HasAlarmEmail", _is_set(p.AlarmEmail)),
        create_datastore=_condition(t, "CreateDatastore", _is_empty(p.DatastoreId)),
        has_remote_aes=_condition(t, "HasRemoteAENetwork", And(_is_set(p.RemoteAECIDR), CLOUD_SCP)),
        has_edge_sites=_condition(t, "HasEdgeSites", _is_set(p.EdgeTrustAnchorArn)),
        cloud_scp=_condition(t, CLOUD_SCP["Condition"], Equals(Ref(p.DeployCloudSCP), "true")),
        direct_store=_condition(
            t, "DirectStoreOn", And(Not(Equals(Ref(p.DirectStore), "None")), CLOUD_SCP)
        ),
        commit_on_stored=_condition(
            t, "CommitOnStored", And(Equals(Ref(p.CommitmentCommitOn), "Stored"), CLOUD_SCP)
        ),
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


def _add_direct_store_rules(t: Template, p: Parameters) -> None:
    """DirectStore Selected needs a selection; a selection means nothing without Selected."""
    selects = Or(
        _is_set(p.DirectStoreCallingAETitles), Equals(Ref(p.DirectStoreHighPriority), "true")
    )
    t.add_rule(
        "DirectStoreSelectionNeeded",
        {
            "RuleCondition": Equals(Ref(p.DirectStore), "Selected"),
            "Assertions": [
                _assertion(
                    selects,
                    "With DirectStore Selected, DirectStoreCallingAETitles must name an AE title "
                    "and/or DirectStoreHighPriority must be true (or choose All or None).",
                )
            ],
        },
    )
    t.add_rule(
        "DirectStoreSelectionOnlyWhenSelected",
        {
            "RuleCondition": Not(Equals(Ref(p.DirectStore), "Selected")),
            "Assertions": [
                _assertion(
                    Not(selects),
                    "DirectStoreCallingAETitles must be empty and DirectStoreHighPriority false "
                    "unless DirectStore is Selected: choose Selected, or clear them.",
                )
            ],
        },
    )


def add_rules(t: Template, spec: Spec, inputs: Inputs) -> None:
    """Rules that refuse a parameter set that cannot work, before anything is created
    (rule functions: https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/intrinsic-function-reference-rules.html)."""
    p = inputs.parameters
    regions = list(spec.regions)
    t.add_rule(
        "SupportedRegion",
        {
            "Assertions": [
                _assertion(
                    {"Fn::Contains": [regions, Ref("AWS::Region")]},
                    "The stack must be created in a Region where AWS HealthImaging runs: "
                    f"{', '.join(regions)}; switch the console to one of them.",
                )
            ]
        },
    )
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
    # Plain DICOM carries PHI unencrypted: on the internet only to the hospital's own ranges.
    # Rule functions compare whole strings (no Split, no arithmetic), so the Rule can refuse
    # 0.0.0.0/0 itself; ranges wider than resources.widestPeerPrefix are refused for every
    # scheme by the PeerCIDR parameters' AllowedPattern (tests/generator/test_parameters.py).
    peers = (p.PeerCIDR1, p.PeerCIDR2, p.PeerCIDR3)
    t.add_rule(
        "NoPlainDicomFromTheWholeInternet",
        {
            "RuleCondition": {
                "Fn::And": [
                    Equals(Ref(p.LoadBalancerScheme), INTERNET_FACING),
                    _is_empty(p.TLSCertificateARN),
                ]
            },
            "Assertions": [
                _assertion(
                    Not({"Fn::Contains": [[ANYWHERE], Ref(peer)]}),
                    f"An internet-facing load balancer without TLSCertificateARN must not accept "
                    f"{peer.title} {ANYWHERE}: plain DICOM would be open to the whole internet. "
                    "Either set TLSCertificateARN (an ACM certificate: the load balancer then "
                    f"ends TLS), or narrow {peer.title} to your sites' ranges (/"
                    f"{spec.resources.widest_peer_prefix} or narrower) or choose "
                    f"LoadBalancerScheme {INTERNAL}.",
                )
                for peer in peers
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
    _add_direct_store_rules(t, p)
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
    _add_remote_ae_rules(t, p)
    _add_fargate_size_rules(t, spec, p)
    _add_endpoint_rules(t, spec, p)


def _add_remote_ae_rules(t: Template, p: Parameters) -> None:
    """The remote-AE registry (storage-commitment reports, C-FIND/C-MOVE/C-GET permissions and
    Move Destinations) configures the cloud SCP's tasks: it needs their network, and its network
    means nothing without it or without the tasks."""
    t.add_rule(
        "RemoteAEsNeedTheirNetwork",
        {
            "RuleCondition": _is_set(p.RemoteAETitles),
            "Assertions": [
                _assertion(
                    _is_set(p.RemoteAECIDR),
                    "When RemoteAETitles lists AEs, RemoteAECIDR must be their address range, so "
                    "the SCP tasks may open associations to them (storage-commitment reports, "
                    "C-MOVE).",
                )
            ],
        },
    )
    t.add_rule(
        "RemoteAENetworkOnlyWithRemoteAEs",
        {
            "RuleCondition": _is_set(p.RemoteAECIDR),
            "Assertions": [
                _assertion(
                    _is_set(p.RemoteAETitles),
                    "RemoteAECIDR must be empty while RemoteAETitles is empty: it opens the "
                    "tasks' egress to that range for the AEs listed there; list the AEs, or "
                    "clear RemoteAECIDR.",
                )
            ],
        },
    )
    t.add_rule(
        "RemoteAEsOnlyWithTheCloudSCP",
        {
            "RuleCondition": Equals(Ref(p.DeployCloudSCP), "false"),
            "Assertions": [
                _assertion(
                    And(_is_empty(p.RemoteAETitles), _is_empty(p.RemoteAECIDR)),
                    "RemoteAETitles and RemoteAECIDR must be empty when DeployCloudSCP is false: "
                    "they configure the cloud SCP's tasks (an edge SCP has its own REMOTE_AES "
                    "setting).",
                )
            ],
        },
    )


def _add_endpoint_rules(t: Template, spec: Spec, p: Parameters) -> None:
    """Without a NAT gateway the tasks reach S3 only through the gateway endpoint, and the image's
    registry only where the interface endpoints (com.amazonaws.${AWS::Region}.ecr.*, whose
    private DNS names are that Region's) are in the registry's Region."""
    when = Equals(Ref(p.CreateInterfaceEndpoints), "true")
    region = spec.image.region
    t.add_rule(
        "InterfaceEndpointsNeedS3GatewayEndpoint",
        {
            "RuleCondition": when,
            "Assertions": [
                _assertion(
                    Equals(Ref(p.CreateS3GatewayEndpoint), "true"),
                    "With CreateInterfaceEndpoints true, CreateS3GatewayEndpoint must be true: "
                    "the image's layers and the DICOM bucket are in S3, which the tasks reach "
                    "through no other route without a NAT gateway.",
                )
            ],
        },
    )
    t.add_rule(
        "InterfaceEndpointsInImageRegion",
        {
            "RuleCondition": when,
            "Assertions": [
                _assertion(
                    Equals(Ref("AWS::Region"), region),
                    "With CreateInterfaceEndpoints true, the stack must be in the Region of "
                    "the SCP image's registry (the Region in the task definition's image URI): "
                    "the endpoints serve their own Region's names; elsewhere keep a NAT gateway "
                    "and set it false.",
                )
            ],
        },
    )


def _add_fargate_size_rules(t: Template, spec: Spec, p: Parameters) -> None:
    """One Rule per TaskCPU value: TaskMemoryLimit must be a memory AWS's table pairs with it
    (generator.template.fargate_sizes). A CPU value the table lacks fails the build."""
    cpu_values = spec.parameter(p.TaskCPU.title).properties["AllowedValues"]
    unknown = [c for c in cpu_values if int(c) not in TASK_MEMORY_MIB]
    if unknown:
        raise SpecError(
            f"config/product.yaml TaskCPU allows {unknown}, which Fargate does not offer; "
            f"use values of {sorted(TASK_MEMORY_MIB)}"
        )
    for cpu in cpu_values:
        memory = TASK_MEMORY_MIB[int(cpu)]
        t.add_rule(
            f"FargateMemoryForCpu{cpu}",
            {
                "RuleCondition": Equals(Ref(p.TaskCPU), cpu),
                "Assertions": [
                    _assertion(
                        {"Fn::Contains": [[str(m) for m in memory], Ref(p.TaskMemoryLimit)]},
                        f"With TaskCPU {cpu}, TaskMemoryLimit must be {describe(memory)} "
                        "(Fargate's valid task CPU and memory pairs).",
                    )
                ],
            },
        )
