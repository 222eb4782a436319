"""Every parameter of the deployment guide, with its documented default, type, group and
constraints (the tables in ../shared/seeds, Step 3), plus the Rules that refuse bad input."""

from __future__ import annotations

import copy
import json
import re

import pytest
from troposphere import Template

from generator.errors import SpecError
from generator.spec import Spec
from generator.template.parameters import add_parameters, add_rules
from tests.generator.cfn_eval import Evaluator

NETWORK, DICOM, PERF, SECURITY, ADVANCED, OPERATIONS, DIRECT, EDGE = (
    "Network Configuration",
    "DICOM Configuration",
    "Performance Configuration",
    "Security Configuration",
    "Advanced DICOM Configuration",
    "Operations Configuration",
    "Direct Store Configuration",
    "Edge Sites Configuration",
)
REQUIRED = None
# name: (type, default, console group), as the deployment guide documents them, then the ones
# this product adds (issue 12).
DOCUMENTED = {
    "VpcID": ("AWS::EC2::VPC::Id", REQUIRED, NETWORK),
    "PublicSubnetIDs": ("List<AWS::EC2::Subnet::Id>", REQUIRED, NETWORK),
    "PrivateSubnetIDs": ("List<AWS::EC2::Subnet::Id>", REQUIRED, NETWORK),
    "AvailabilityZones": ("List<AWS::EC2::AvailabilityZone::Name>", REQUIRED, NETWORK),
    "SecurityGroupID": ("AWS::EC2::SecurityGroup::Id", REQUIRED, NETWORK),
    "VpcCIDR": ("String", REQUIRED, NETWORK),
    "LoadBalancerScheme": ("String", "internal", NETWORK),
    "CreateS3GatewayEndpoint": ("String", "false", NETWORK),
    "CreateInterfaceEndpoints": ("String", "false", NETWORK),
    "SCPAETitle": ("String", "STORESCP", DICOM),
    "SCPPort": ("Number", 11112, DICOM),
    "PeerCIDR1": ("String", REQUIRED, DICOM),
    "PeerCIDR2": ("String", "", DICOM),
    "PeerCIDR3": ("String", "", DICOM),
    "RequireCalledAETitle": ("String", "false", DICOM),
    "RequireCallingAETitle": ("String", "", DICOM),
    "TaskCPU": ("String", "1024", PERF),
    "TaskMemoryLimit": ("String", "2048", PERF),
    "TaskDesiredCount": ("Number", 1, PERF),
    "AutoscaleMaxCapacity": ("Number", 3, PERF),
    "TLSCertificateARN": ("String", "", SECURITY),
    "KmsKeyArn": ("String", "", SECURITY),
    "DIMSETimeout": ("Number", 60, ADVANCED),
    "MaximumAssociations": ("Number", 300, ADVANCED),
    "NetworkTimeout": ("Number", 90, ADVANCED),
    "SupportedSOPClassUIDs": ("String", "", ADVANCED),
    # The registry of remote AEs and storage commitment (issues 17, 18).
    "RemoteAETitles": ("String", "", ADVANCED),
    "RemoteAECIDR": ("String", "", ADVANCED),
    "CommitmentCommitOn": ("String", "Imported", ADVANCED),
    "CommitmentTimeout": ("Number", 14400, ADVANCED),
    "CommitmentDeliveryWindow": ("Number", 86400, ADVANCED),
    "LogRetentionDays": ("Number", "365", OPERATIONS),
    # Object retention (INTERFACES.md item 5), today's values as defaults.
    "IncomingRetentionDays": ("Number", 30, OPERATIONS),
    "ResultsRetentionDays": ("Number", 365, OPERATIONS),
    "AccessLogRetentionDays": ("Number", 365, OPERATIONS),
    "LogUIDs": ("String", "plain", OPERATIONS),
    "AlarmEmail": ("String", "", OPERATIONS),
    "DatastoreId": ("String", "", OPERATIONS),
    # Straight into HealthImaging with StoreDICOM (issue 16).
    "DirectStore": ("String", "None", DIRECT),
    "DirectStoreCallingAETitles": ("String", "", DIRECT),
    "DirectStoreHighPriority": ("String", "false", DIRECT),
    "DirectStoreBudget": ("Number", 10, DIRECT),
    # Edge sites (issue 19): the IAM Roles Anywhere trust anchor of the hospitals' edge SCPs.
    "EdgeTrustAnchorArn": ("String", "", EDGE),
    "DeployCloudSCP": ("String", "true", EDGE),
}

# AWS Fargate task sizes (CPU units: memory MiB), as the ECS developer guide's table lists them
# ("Troubleshoot Amazon ECS task definition invalid CPU or memory errors",
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-cpu-memory-error.html).
FARGATE = {
    "256": [512, 1024, 2048],
    "512": list(range(1024, 4097, 1024)),
    "1024": list(range(2048, 8193, 1024)),
    "2048": list(range(4096, 16385, 1024)),
    "4096": list(range(8192, 30721, 1024)),
    "8192": list(range(16384, 61441, 4096)),
    "16384": list(range(32768, 122881, 8192)),
}


def test_exactly_the_documented_parameters(template):
    assert set(template["Parameters"]) == set(DOCUMENTED)


@pytest.mark.parametrize("name", DOCUMENTED)
def test_type_default_and_group(template, name):
    kind, default, group = DOCUMENTED[name]
    parameter = template["Parameters"][name]
    assert parameter["Type"] == kind
    if default is REQUIRED:
        assert "Default" not in parameter
    else:
        assert parameter["Default"] == default
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    assert [g["Label"]["default"] for g in groups if name in g["Parameters"]] == [group]


def test_groups_in_the_guides_order(template):
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    assert [g["Label"]["default"] for g in groups] == [
        NETWORK,
        DICOM,
        PERF,
        SECURITY,
        ADVANCED,
        OPERATIONS,
        DIRECT,
        EDGE,  # the product's own additions, last
    ]
    order = [p for g in groups for p in g["Parameters"]]
    assert order == list(DOCUMENTED)


def _matches(template, name: str, value: str) -> bool:
    p = template["Parameters"][name]
    pattern_ok = re.fullmatch(p["AllowedPattern"], value) is not None
    length_ok = p.get("MinLength", 0) <= len(value) <= p.get("MaxLength", 10**6)
    return pattern_ok and length_ok


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        (
            "SCPAETitle",
            ["STORESCP", "MYHOSPITAL", "A", "SIXTEEN_CHARS_16", "CT 01"],
            ["", "SEVENTEEN_CHARS_X", "A\\B", "A\x01B", "TAB\tX"],
        ),
        (
            "VpcCIDR",
            ["10.0.0.0/16", "0.0.0.0/0", "255.255.255.255/32"],
            ["", "10.0.0.0", "256.0.0.0/8", "10.0.0.0/33", "10.0.0/16", "vpc"],
        ),
        (
            "PeerCIDR1",
            ["203.0.113.0/24", "10.0.0.0/8", "0.0.0.0/0"],
            ["", "203.0.113.0/24,10.0.0.0/8", "10.0.0.0/7", "1.2.3.4/0", "128.0.0.0/1"],
        ),
        ("PeerCIDR2", ["", "198.51.100.0/24", "0.0.0.0/0"], ["198.51.100.0", " ", "0.0.0.0/4"]),
        ("PeerCIDR3", ["", "192.0.2.0/24"], ["192.0.2.0/40", "64.0.0.0/2"]),
        (
            "RequireCallingAETitle",
            ["", "WORKSTATION1", "CT01,MR01,US 2"],
            [",", "CT01,", "A\\B", "SEVENTEEN_CHARS_X"],
        ),
        (
            "TLSCertificateARN",
            ["", "arn:aws:acm:us-east-1:123456789012:certificate/xxxxxxxx"],
            [
                "arn:aws:iam::123456789012:role/x",
                "certificate",
                "arn:aws:acm:us-east-1:1:certificate/x",
            ],
        ),
        (
            "SupportedSOPClassUIDs",
            [
                "",
                "1.2.840.10008.5.1.4.1.1.2",
                "1.2.840.10008.5.1.4.1.1.2,1.2.840.10008.5.1.4.1.1.4",
            ],
            ["1.2.", "CT", "1.2,,3", "1.2, 3"],
        ),
        ("TaskMemoryLimit", ["512", "2048", "122880"], ["", "2GB", "0512"]),
        (
            "AlarmEmail",
            ["", "pacs-ops@example.org", "a.b+alarms@radiology.example.co.uk"],
            ["pacs-ops", "a@b", "ops@example.org,other@example.org", "a b@example.org"],
        ),
        (
            "DatastoreId",
            ["", "0123456789abcdef0123456789abcdef"],
            ["0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef", "datastore-1"],
        ),
        (
            "KmsKeyArn",
            ["", "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"],
            [
                "alias/aws/s3",
                "arn:aws:kms:eu-west-1:123456789012:alias/mine",
                "1234abcd-12ab-34cd-56ef-1234567890ab",
                "arn:aws:kms:eu-west-1:1234:key/x",
            ],
        ),
    ],
)
def test_patterns(template, name, good, bad):
    for value in good:
        assert _matches(template, name, value), f"{name} refused {value!r}"
    for value in bad:
        assert not _matches(template, name, value), f"{name} accepted {value!r}"


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("SCPPort", 1, 65535),
        ("DIMSETimeout", 1, 3600),
        ("NetworkTimeout", 60, 3600),  # the NLB's TCP idle timeout takes 60-6000
        ("MaximumAssociations", 1, 1000),
        ("TaskDesiredCount", 1, 50),
        ("AutoscaleMaxCapacity", 1, 50),
    ],
)
def test_number_ranges(template, name, low, high):
    p = template["Parameters"][name]
    assert (p["MinValue"], p["MaxValue"]) == (low, high)
    assert low <= p["Default"] <= high


def test_log_retention_offers_exactly_what_cloudwatch_logs_accepts(template):
    """RetentionInDays values, AWS::Logs::LogGroup (CloudFormation user guide)."""
    accepted = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192]
    accepted += [2557, 2922, 3288, 3653]
    assert template["Parameters"]["LogRetentionDays"]["AllowedValues"] == list(map(str, accepted))


def test_allowed_values(template):
    assert template["Parameters"]["RequireCalledAETitle"]["AllowedValues"] == ["true", "false"]
    assert template["Parameters"]["TaskCPU"]["AllowedValues"] == list(FARGATE)


# Every memory a TaskMemoryLimit of 3-6 digits may name near Fargate's sizes: each 512 MiB
# step up to 120 GB, and a value off every step.
MEMORY_CANDIDATES = [*range(512, 122880 + 1, 512), 1000, 1536, 3584, 16385, 122881, 131072]


def test_every_cpu_memory_pair_in_and_out_of_aws_table(template):
    """Each TaskCPU value against every candidate memory: the Rules accept exactly the pairs of
    AWS's table (FARGATE, transcribed above) and refuse the others with their own Rule."""
    wrong = []
    for cpu, memories in FARGATE.items():
        for memory in MEMORY_CANDIDATES:
            failed = Evaluator(template, {"TaskCPU": cpu, "TaskMemoryLimit": str(memory)})
            expected = [] if memory in memories else [f"FargateMemoryForCpu{cpu}"]
            if failed.failed_rules() != expected:
                wrong.append((cpu, memory, failed.failed_rules()))
    assert wrong == []


def test_256_cpu_refuses_1536_mib_and_says_what_fits(template):
    assert Evaluator(template, {"TaskCPU": "256", "TaskMemoryLimit": "1536"}).failed_rules() == [
        "FargateMemoryForCpu256"
    ]
    (assertion,) = template["Rules"]["FargateMemoryForCpu256"]["Assertions"]
    assert assertion["AssertDescription"].startswith(
        "With TaskCPU 256, TaskMemoryLimit must be 512, 1024 or 2048 MiB"
    )
    (assertion,) = template["Rules"]["FargateMemoryForCpu2048"]["Assertions"]
    assert "4096-16384 MiB in steps of 1024" in assertion["AssertDescription"]


def test_a_task_cpu_fargate_does_not_offer_fails_the_build(spec):
    data = copy.deepcopy(spec.data)
    (cpu,) = [p for p in data["parameters"] if p["name"] == "TaskCPU"]
    cpu["allowedValues"] = ["1024", "3072"]
    broken = Spec(data, spec.definition)
    with pytest.raises(SpecError, match=r"TaskCPU allows \['3072'\], which Fargate does not"):
        add_rules(Template(), broken, add_parameters(Template(), broken))


# Subnets as EC2 would describe them (the rule functions read VpcId and AvailabilityZone).
SUBNETS = {
    "subnet-pa": {"VpcId": "vpc-1", "AvailabilityZone": "us-east-1a"},
    "subnet-pb": {"VpcId": "vpc-1", "AvailabilityZone": "us-east-1b"},
    "subnet-qa": {"VpcId": "vpc-1", "AvailabilityZone": "us-east-1a"},
    "subnet-qb": {"VpcId": "vpc-1", "AvailabilityZone": "us-east-1b"},
    "subnet-qc": {"VpcId": "vpc-1", "AvailabilityZone": "us-east-1c"},
    "subnet-other": {"VpcId": "vpc-2", "AvailabilityZone": "us-east-1a"},
}
NETWORK_OK = {
    "VpcID": "vpc-1",
    "PublicSubnetIDs": "subnet-pa,subnet-pb",
    "PrivateSubnetIDs": "subnet-qa,subnet-qb",
    "AvailabilityZones": "us-east-1a,us-east-1b",
}


def failed(template, **parameters: str) -> list[str]:
    return Evaluator(template, {**NETWORK_OK, **parameters}, SUBNETS).failed_rules()


def test_a_working_parameter_set_passes_every_rule(template):
    assert failed(template) == []
    assert failed(template, LoadBalancerScheme="internet-facing") == []


ANYWHERE = "0.0.0.0/0"
CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d"


@pytest.mark.parametrize("peer", ["PeerCIDR1", "PeerCIDR2", "PeerCIDR3"])
def test_plain_dicom_from_the_whole_internet_is_refused(template, peer):
    """GIVEN an internet-facing load balancer, WHEN a client range is 0.0.0.0/0 without a
    certificate THEN the stack is refused, with a message naming the ways out; a certificate,
    a narrower range or the internal scheme (the default) pass."""
    public = {"LoadBalancerScheme": "internet-facing", "PeerCIDR1": "203.0.113.0/24"}
    assert failed(template, **{**public, peer: ANYWHERE}) == ["NoPlainDicomFromTheWholeInternet"]
    assert failed(template, **{**public, peer: ANYWHERE, "TLSCertificateARN": CERTIFICATE}) == []
    assert failed(template, **{**public, peer: "198.51.100.0/24"}) == []
    assert failed(template, **{peer: ANYWHERE}) == []  # internal, the default
    rule = template["Rules"]["NoPlainDicomFromTheWholeInternet"]
    (message,) = [
        a["AssertDescription"] for a in rule["Assertions"] if peer in json.dumps(a["Assert"])
    ]
    for way_out in ("TLSCertificateARN", f"narrow {peer}", "LoadBalancerScheme internal"):
        assert way_out in message


def test_no_client_range_is_wider_than_the_spec_limit_except_anywhere(template, spec):
    """Every prefix length below resources.widestPeerPrefix is refused by each PeerCIDR pattern
    (EC2 masks host bits, so 10.0.0.1/7 would be 10.0.0.0/7); the limit itself passes."""
    widest = spec.resources.widest_peer_prefix
    for peer in ("PeerCIDR1", "PeerCIDR2", "PeerCIDR3"):
        for prefix in range(33):
            for address in ("0.0.0.0", "10.0.0.1", "128.0.0.0"):
                value = f"{address}/{prefix}"
                allowed = prefix >= widest or value == ANYWHERE
                assert _matches(template, peer, value) == allowed, (peer, value)


def test_the_defaults_keep_the_load_balancer_off_the_internet(template):
    assert template["Parameters"]["LoadBalancerScheme"]["Default"] == "internal"


def test_subnets_must_be_in_the_vpc(template):
    assert failed(template, PrivateSubnetIDs="subnet-qa,subnet-other") == ["SubnetsInVpc"]
    assert failed(template, VpcID="vpc-2") == ["SubnetsInVpc"]


def test_subnets_must_be_in_the_listed_zones(template):
    assert failed(template, AvailabilityZones="us-east-1a") == ["SubnetsInAvailabilityZones"]


def test_every_task_zone_must_be_served_by_an_internet_facing_load_balancer(template):
    """A private subnet in us-east-1c with public subnets in 1a and 1b only: its targets would
    never become healthy. An internal load balancer uses the private subnets, so it passes."""
    zones = "us-east-1a,us-east-1b,us-east-1c"
    tasks_in_c = {"PrivateSubnetIDs": "subnet-qa,subnet-qc", "AvailabilityZones": zones}
    public = {"LoadBalancerScheme": "internet-facing"}
    assert failed(template, **tasks_in_c, **public) == ["TaskSubnetsServedByLoadBalancer"]
    assert failed(template, **tasks_in_c) == []  # internal, the default


@pytest.mark.parametrize(
    ("parameters", "refused_by"),
    [
        ({"DirectStore": "None"}, []),
        ({"DirectStore": "All"}, []),
        ({"DirectStore": "Selected", "DirectStoreCallingAETitles": "ED-CT1"}, []),
        ({"DirectStore": "Selected", "DirectStoreHighPriority": "true"}, []),
        ({"DirectStore": "Selected"}, ["DirectStoreSelectionNeeded"]),
        (
            {"DirectStore": "All", "DirectStoreHighPriority": "true"},
            ["DirectStoreSelectionOnlyWhenSelected"],
        ),
        ({"DirectStoreCallingAETitles": "ED-CT1"}, ["DirectStoreSelectionOnlyWhenSelected"]),
    ],
)
def test_direct_store_selection_rules(template, parameters, refused_by):
    assert failed(template, **parameters) == refused_by


@pytest.mark.parametrize(
    ("desired", "maximum", "ok"),
    [
        ("1", "1", True),
        ("1", "50", True),
        ("3", "3", True),
        ("3", "2", False),
        ("50", "49", False),
        ("50", "50", True),
        ("2", "1", False),
        ("10", "9", False),
    ],
)
def test_autoscaling_maximum_not_below_desired(template, desired, maximum, ok):
    found = failed(template, TaskDesiredCount=desired, AutoscaleMaxCapacity=maximum)
    assert found == ([] if ok else ["AutoscaleMaxNotBelowDesired"])


def test_every_desired_and_maximum_pair(template):
    """The rule's lists are exact: every pair in 1..50 x 1..50 against max >= desired."""
    rule = template["Rules"]["AutoscaleMaxNotBelowDesired"]
    for desired in range(1, 51):
        for maximum in range(1, 51):
            evaluator = Evaluator(
                template, {"TaskDesiredCount": str(desired), "AutoscaleMaxCapacity": str(maximum)}
            )
            holds = all(evaluator.value(a["Assert"]) for a in rule["Assertions"])
            assert holds == (maximum >= desired), (desired, maximum)


def test_tls_caps_the_network_timeout_at_the_tls_idle_timeout(template):
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d"
    assert failed(template, NetworkTimeout="3600") == []  # TCP: idle timeout follows it
    assert failed(template, TLSCertificateARN=cert, NetworkTimeout="350") == []
    assert failed(template, TLSCertificateARN=cert, NetworkTimeout="60") == []
    assert failed(template, TLSCertificateARN=cert, NetworkTimeout="351") == [
        "NetworkTimeoutWithinTlsIdleTimeout"
    ]


AES = "CT01=10.20.0.15:104:store+commitment,WS1=10.20.0.16:11112:query+retrieve"


@pytest.mark.parametrize(
    ("parameters", "refused_by"),
    [
        ({}, []),
        ({"RemoteAETitles": AES}, ["RemoteAEsNeedTheirNetwork"]),
        ({"RemoteAETitles": AES, "RemoteAECIDR": "10.20.0.0/16"}, []),
        ({"RemoteAECIDR": "10.20.0.0/16"}, ["RemoteAENetworkOnlyWithRemoteAEs"]),
        ({"DeployCloudSCP": "false"}, []),
        (
            {"DeployCloudSCP": "false", "RemoteAETitles": AES, "RemoteAECIDR": "10.20.0.0/16"},
            ["RemoteAEsOnlyWithTheCloudSCP"],
        ),
        (
            {"DeployCloudSCP": "false", "RemoteAECIDR": "10.20.0.0/16"},
            ["RemoteAENetworkOnlyWithRemoteAEs", "RemoteAEsOnlyWithTheCloudSCP"],
        ),
    ],
)
def test_remote_aes_rules(template, parameters, refused_by):
    """The registry needs the tasks' network to its AEs, that network needs the registry, and
    both configure the cloud SCP only."""
    assert sorted(failed(template, **parameters)) == refused_by


def test_the_remote_ae_network_is_never_wider_than_the_peer_limit(template, spec):
    """The tasks may open connections to every port of RemoteAECIDR: 0.0.0.0/0 or any range
    wider than resources.widestPeerPrefix is refused, as for the client ranges."""
    widest = spec.resources.widest_peer_prefix
    for prefix in range(33):
        for address in ("0.0.0.0", "10.0.0.1", "128.0.0.0"):
            value = f"{address}/{prefix}"
            assert _matches(template, "RemoteAECIDR", value) == (prefix >= widest), value
    assert _matches(template, "RemoteAECIDR", "")
    assert not _matches(template, "RemoteAECIDR", "10.0.0.256/16")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "CT01=10.20.0.15:104:store+commitment",
        "CT 1=ct.example.org:11112:commitment:tls,WS=10.0.0.9:104:query+retrieve",
        "CT01=10.20.0.15:104",
        "CT01",
        "CT01=10.20.0.15:104:store:ssl",
        "CT01=10.20.0.15:104:store+querry",
        "CT01=10.20.0.15:104:commitment,WS=h:11112:retrieve+query:tls",
        "TOO_LONG_AE_TITLE_X=h:104:store",
    ],
)
def test_the_remote_aes_pattern_admits_what_the_scp_accepts(template, value):
    """The parameter's pattern is a first filter: whatever it admits in this list, the SCP's own
    parser accepts too (the SCP checks permissions and ranges with a clear message)."""
    import re

    from scp.settings import SettingsError, load_settings

    pattern = template["Parameters"]["RemoteAETitles"]["AllowedPattern"]
    try:
        load_settings([], {"REMOTE_AES": value})
        scp_accepts = True
    except SettingsError:
        scp_accepts = False
    assert bool(re.fullmatch(pattern, value)) == scp_accepts, value


def test_rule_messages_say_what_to_change(template):
    for name, rule in template["Rules"].items():
        for assertion in rule["Assertions"]:
            text = assertion["AssertDescription"]
            assert text.endswith(".") and ("must" in text), name


def test_labels_and_descriptions(template):
    labels = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterLabels"]
    for name, parameter in template["Parameters"].items():
        assert labels[name]["default"]
        assert len(parameter["Description"]) >= 10
