"""Each Condition's two branches: TLS or TCP listener, optional peer ranges, the stack's own key,
internal or internet-facing load balancer, the alarm e-mail, an existing data store, and the edge
sites' role."""

from __future__ import annotations

from generator.release.marketplace import _references  # Ref, GetAtt and Sub's ${X}
from tests.generator.cfn_eval import Evaluator

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d"


def _ingress(resources) -> list[tuple[str, str]]:
    """(CIDR parameter, port) of every rule that admits DICOM clients to the load balancer."""
    inline = resources["LoadBalancerSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    separate = [
        r["Properties"] for r in resources.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"
    ]
    for rule in separate:
        assert rule["GroupId"] == {"Ref": "LoadBalancerSecurityGroup"}
    return sorted((r["CidrIp"], str(r["FromPort"])) for r in [*inline, *separate])


def _listeners(resources) -> dict[str, dict]:
    return {
        name: r["Properties"]
        for name, r in resources.items()
        if r["Type"] == "AWS::ElasticLoadBalancingV2::Listener"
    }


def test_without_certificate_the_listener_is_plain_tcp_with_the_idle_timeout(template):
    resources = Evaluator(template, {"SCPPort": "104", "NetworkTimeout": "600"}).resources()
    ((name, listener),) = _listeners(resources).items()
    assert (name, listener["Protocol"], listener["Port"]) == ("TcpListener", "TCP", "104")
    assert "Certificates" not in listener and "SslPolicy" not in listener
    # tcp.idle_timeout.seconds: 60-6000 s (ELB API reference, ListenerAttribute).
    assert listener["ListenerAttributes"] == [{"Key": "tcp.idle_timeout.seconds", "Value": "600"}]
    assert resources["ListenerReady"]["Metadata"] == {"Listener": {"Ref": "TcpListener"}}


def test_with_certificate_the_listener_ends_tls_1_2_or_later(template):
    resources = Evaluator(template, {"TLSCertificateARN": CERT}).resources()
    ((name, props),) = _listeners(resources).items()
    assert (name, props["Protocol"]) == ("TlsListener", "TLS")
    assert props["Certificates"] == [{"CertificateArn": CERT}]
    assert props["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert "ListenerAttributes" not in props  # fixed 350 s; the Rules cap NetworkTimeout
    assert resources["ListenerReady"]["Metadata"] == {"Listener": {"Ref": "TlsListener"}}
    assert resources["Service"]["DependsOn"] == ["ListenerReady"]


def test_listeners_forward_to_the_container_port(template):
    resources = Evaluator(template, {"SCPPort": "104"}).resources()
    group = resources["TargetGroup"]["Properties"]
    assert group["Port"] == 11112
    (mapping,) = resources["Service"]["Properties"]["LoadBalancers"]
    assert mapping["ContainerPort"] == 11112
    task_ports = {
        r["FromPort"] for r in resources["TaskSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    }
    assert task_ports == {11112, 8080}


def test_load_balancer_scheme_chooses_the_subnets(template):
    base = {"PublicSubnetIDs": "subnet-p1,subnet-p2", "PrivateSubnetIDs": "subnet-q1,subnet-q2"}
    facing = {**base, "LoadBalancerScheme": "internet-facing"}
    public = Evaluator(template, facing).resources()["NetworkLoadBalancer"]["Properties"]
    assert (public["Scheme"], public["Subnets"]) == (
        "internet-facing",
        ["subnet-p1", "subnet-p2"],
    )
    internal = Evaluator(template, base).resources()  # the default
    props = internal["NetworkLoadBalancer"]["Properties"]
    assert (props["Scheme"], props["Subnets"]) == ("internal", ["subnet-q1", "subnet-q2"])


def test_alarm_email_subscribes_only_when_set(template):
    assert "AlarmEmailSubscription" not in Evaluator(template, {}).resources()
    resources = Evaluator(template, {"AlarmEmail": "pacs-ops@example.org"}).resources()
    subscription = resources["AlarmEmailSubscription"]["Properties"]
    assert subscription == {
        "Endpoint": "pacs-ops@example.org",
        "Protocol": "email",
        "TopicArn": {"Ref": "AlarmTopic"},
    }


def test_existing_data_store_is_used_instead_of_a_new_one(template):
    created = Evaluator(template, {}).resources()
    assert created["Datastore"]["DeletionPolicy"] == "Retain"
    assert created["Datastore"]["UpdateReplacePolicy"] == "Retain"
    existing = "0123456789abcdef0123456789abcdef"
    given = Evaluator(template, {"DatastoreId": existing})
    assert "Datastore" not in given.resources()
    assert given.value(template["Outputs"]["DatastoreId"]["Value"]) == existing
    assert Evaluator(template, {}).value(template["Outputs"]["DatastoreId"]["Value"]) == {
        "Fn::GetAtt": ["Datastore", "DatastoreId"]
    }
    # No resource refers to the data store resource when it does not exist.
    assert "'Datastore'" not in str(given.resources())


def test_edge_site_role_and_profile_only_with_a_trust_anchor(template):
    anchor = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/" + "0" * 36
    without = Evaluator(template, {})
    assert {"EdgeSiteRole", "EdgeSiteProfile"}.isdisjoint(without.resources())
    assert without.value(template["Outputs"]["EdgeRoleArn"]["Value"]).startswith("none")
    given = Evaluator(template, {"EdgeTrustAnchorArn": anchor})
    trust = given.resources()["EdgeSiteRole"]["Properties"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"] == anchor
    assert given.value(template["Outputs"]["EdgeProfileArn"]["Value"]) == {
        "Fn::GetAtt": ["EdgeSiteProfile", "ProfileArn"]
    }


CLOUD_SCP_RESOURCES = {
    "LoadBalancerSecurityGroup",
    "TaskSecurityGroup",
    "NetworkLoadBalancer",
    "TargetGroup",
    "TcpListener",
    "ListenerReady",
    "Cluster",
    "PacsServerTaskDef",
    "PacsServerTaskDefPacsContainerLogGroup",
    "TaskExecutionRole",
    "TaskRole",
    "Service",
    "ScalableTarget",
    "CpuTargetTracking",
    "ServiceCPUUtilizationAlarm",
    "ServiceMemoryUtilizationAlarm",
    "NoHealthyTargetsAlarm",
    "UnhealthyTargetsAlarm",
}


def test_without_the_cloud_scp_only_the_stacks_side_of_edge_sites_is_left(template):
    """DeployCloudSCP=false: no load balancer, no Fargate service (nor their roles, alarms,
    listener, peer rules or outputs), and nothing left refers to them; the buckets, workflow,
    job table, data store and dashboard (its workflow widgets) stay."""
    params = {"PeerCIDR2": "198.51.100.0/24", "TLSCertificateARN": CERT}
    full = Evaluator(template, params).resources()
    assert CLOUD_SCP_RESOURCES - {"TcpListener"} <= set(full)
    edge_only = Evaluator(template, {**params, "DeployCloudSCP": "false"})
    left = edge_only.resources()
    gone = set(full) - set(left)
    assert gone == (CLOUD_SCP_RESOURCES - {"TcpListener"}) | {
        "TlsListener",
        "LoadBalancerIngressPeer2",
    }
    assert _references(full) & gone, "the reference walker finds nothing"
    assert not _references(left) & gone
    assert {"DicomBucket", "ImportStateMachine", "DicomImportJobTable", "Dashboard"} <= set(left)
    body = edge_only.value(template["Resources"]["Dashboard"]["Properties"]["DashboardBody"])
    assert "AWS/ECS" not in str(body) and "AWS/States" in str(body)
    conditional = {n for n, o in template["Outputs"].items() if "Condition" in o}
    assert conditional == {"NetworkLoadBalancerDNS", "SCPLogGroupName"}
    assert {template["Outputs"][n]["Condition"] for n in conditional} == {"CloudSCP"}


def test_peer_rules_hold_for_tcp_and_tls(template):
    """The rules sit on the load balancer's security group, which both listeners share."""
    for params in ({}, {"TLSCertificateARN": CERT}):
        resources = Evaluator(
            template,
            {"VpcCIDR": "10.0.0.0/16", "PeerCIDR1": "203.0.113.0/24", "SCPPort": "11112", **params},
        ).resources()
        assert _ingress(resources) == [("10.0.0.0/16", "11112"), ("203.0.113.0/24", "11112")]
        lb = resources["NetworkLoadBalancer"]["Properties"]
        assert lb["SecurityGroups"] == [{"Ref": "LoadBalancerSecurityGroup"}]


def test_empty_peer_ranges_add_no_rule(template):
    base = {"VpcCIDR": "10.0.0.0/16", "PeerCIDR1": "203.0.113.0/24", "SCPPort": "104"}
    assert len(_ingress(Evaluator(template, base).resources())) == 2
    two = Evaluator(template, {**base, "PeerCIDR2": "198.51.100.0/24"}).resources()
    assert ("198.51.100.0/24", "104") in _ingress(two) and len(_ingress(two)) == 3
    three = Evaluator(
        template, {**base, "PeerCIDR2": "198.51.100.0/24", "PeerCIDR3": "192.0.2.0/24"}
    ).resources()
    assert _ingress(three) == sorted(
        [
            ("10.0.0.0/16", "104"),
            ("203.0.113.0/24", "104"),
            ("198.51.100.0/24", "104"),
            ("192.0.2.0/24", "104"),
        ]
    )
    only_third = Evaluator(template, {**base, "PeerCIDR3": "192.0.2.0/24"}).resources()
    assert ("192.0.2.0/24", "104") in _ingress(only_third) and len(_ingress(only_third)) == 3


def test_every_condition_is_exercised(template):
    assert set(template["Conditions"]) == {
        "HasTLSCertificate",
        "NoTLSCertificate",
        "HasPeerCIDR2",
        "HasPeerCIDR3",
        "CreateEncryptionKey",
        "InternalLoadBalancer",
        "CreateS3Endpoint",
        "CreateTaskEndpoints",  # both branches: test_endpoints
        "HasAlarmEmail",
        "CreateDatastore",
        "HasRemoteAENetwork",
        "HasEdgeSites",
        "CloudSCP",
        "DirectStoreOn",
        "CommitOnStored",
    }


def _task_grants(template, **parameters: str) -> set[str]:
    """(action, first resource or leading keys) of the task role, as the stack would hold it."""
    (policy,) = Evaluator(template, parameters).resources()["TaskRole"]["Properties"]["Policies"]
    found = set()
    for statement in policy["PolicyDocument"]["Statement"]:
        keys = statement.get("Condition", {}).get("ForAllValues:StringLike", {})
        for action in statement["Action"]:
            found.add((action, ",".join(keys.get("dynamodb:LeadingKeys", []))))
    return found


def test_store_dicom_and_its_records_are_granted_only_when_used(template):
    store = ("medical-imaging:StoreDICOM", "")
    direct, stored = ("dynamodb:PutItem", "DIRECT#*"), ("dynamodb:PutItem", "STORED#*")
    assert {store, direct, stored} & _task_grants(template) == set()
    assert {store, direct, stored} & _task_grants(template, DirectStore="All") == {store, direct}
    assert {store, direct, stored} & _task_grants(template, CommitmentCommitOn="Stored") == {stored}
    # Query/Retrieve and the direct stores' primary check search either way.
    assert ("medical-imaging:SearchDICOMInstances", "") in _task_grants(template)


def test_egress_to_remote_aes_exists_only_with_their_network(template):
    def egress(resources) -> list[dict]:
        return [
            r["Properties"]
            for r in resources.values()
            if r["Type"] == "AWS::EC2::SecurityGroupEgress"
        ]

    assert egress(Evaluator(template, {}).resources()) == []
    (rule,) = egress(Evaluator(template, {"RemoteAECIDR": "10.20.0.0/16"}).resources())
    assert rule["GroupId"] == {"Ref": "TaskSecurityGroup"}
    assert (rule["CidrIp"], rule["IpProtocol"]) == ("10.20.0.0/16", "tcp")


def test_create_encryption_key_branches(template):
    """Both branches; test_kms checks what each branch builds."""
    assert Evaluator(template, {}).condition("CreateEncryptionKey") is True
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert Evaluator(template, {"KmsKeyArn": key}).condition("CreateEncryptionKey") is False
