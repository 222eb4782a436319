"""Each Condition's two branches: the TLS listener and the optional peer ranges."""

from __future__ import annotations

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


def test_without_certificate_the_listener_is_plain_tcp(template):
    listener = Evaluator(template, {}).resources()["Listener"]["Properties"]
    assert listener["Protocol"] == "TCP"
    assert "Certificates" not in listener and "SslPolicy" not in listener


def test_with_certificate_the_listener_ends_tls_1_2_or_later(template):
    listener = Evaluator(template, {"TLSCertificateARN": CERT}).resources()["Listener"]
    props = listener["Properties"]
    assert props["Protocol"] == "TLS"
    assert props["Certificates"] == [{"CertificateArn": CERT}]
    assert props["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"


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
        "HasPeerCIDR2",
        "HasPeerCIDR3",
        "CreateEncryptionKey",
    }


def test_create_encryption_key_branches(template):
    """Both branches; test_kms checks what each branch builds."""
    assert Evaluator(template, {}).condition("CreateEncryptionKey") is True
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert Evaluator(template, {"KmsKeyArn": key}).condition("CreateEncryptionKey") is False
