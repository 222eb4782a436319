"""The Network Load Balancer, its security group (peer restriction), listener and target group."""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import If, NoValue, Ref, Template, ec2
from troposphere import elasticloadbalancingv2 as elb

from generator.parameters import HAS_PEER2, HAS_PEER3, HAS_TLS
from generator.spec import Spec

# TLS 1.3 and 1.2 only.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class Network:
    load_balancer: elb.LoadBalancer
    target_group: elb.TargetGroup
    listener: elb.Listener
    task_security_group: ec2.SecurityGroup


def _dicom_ingress(cidr: str, description: str) -> dict:
    """An ingress rule for the DICOM port from one CIDR parameter."""
    return {
        "IpProtocol": "tcp",
        "FromPort": Ref("SCPPort"),
        "ToPort": Ref("SCPPort"),
        "CidrIp": Ref(cidr),
        "Description": description,
    }


def add_network(t: Template, spec: Spec, access_logs_bucket: Ref) -> Network:
    """Peer rules live on the NLB's security group: they hold for the TCP and the TLS listener."""
    health_port = spec.resources["healthPort"]
    nlb_sg = t.add_resource(
        ec2.SecurityGroup(
            "LoadBalancerSecurityGroup",
            GroupDescription="DICOM clients allowed to reach the load balancer",
            VpcId=Ref("VpcID"),
            SecurityGroupIngress=[
                ec2.SecurityGroupRule(**_dicom_ingress("VpcCIDR", "DICOM from inside the VPC")),
                ec2.SecurityGroupRule(**_dicom_ingress("PeerCIDR1", "DICOM from allowed range 1")),
            ],
            SecurityGroupEgress=[
                ec2.SecurityGroupRule(
                    IpProtocol="tcp",
                    FromPort=port,
                    ToPort=port,
                    CidrIp=Ref("VpcCIDR"),
                    Description=description,
                )
                for port, description in (
                    (Ref("SCPPort"), "DICOM to the SCP tasks"),
                    (health_port, "Health checks of the SCP tasks"),
                )
            ],
        )
    )
    # Optional ranges are separate rules that exist only when their parameter is set.
    for n, condition in ((2, HAS_PEER2), (3, HAS_PEER3)):
        t.add_resource(
            ec2.SecurityGroupIngress(
                f"LoadBalancerIngressPeer{n}",
                Condition=condition,
                GroupId=Ref(nlb_sg),
                **_dicom_ingress(f"PeerCIDR{n}", f"DICOM from allowed range {n}"),
            )
        )
    task_sg = t.add_resource(
        ec2.SecurityGroup(
            "TaskSecurityGroup",
            GroupDescription="SCP tasks: DICOM and health checks from the load balancer only",
            VpcId=Ref("VpcID"),
            SecurityGroupIngress=[
                ec2.SecurityGroupRule(
                    IpProtocol="tcp",
                    FromPort=port,
                    ToPort=port,
                    SourceSecurityGroupId=Ref(nlb_sg),
                    Description=description,
                )
                for port, description in (
                    (Ref("SCPPort"), "DICOM from the load balancer"),
                    (health_port, "Health checks from the load balancer"),
                )
            ],
            SecurityGroupEgress=[
                ec2.SecurityGroupRule(
                    IpProtocol="tcp",
                    FromPort=443,
                    ToPort=443,
                    CidrIp="0.0.0.0/0",
                    Description="HTTPS to AWS APIs (S3, ECR, CloudWatch, Marketplace)",
                )
            ],
        )
    )
    nlb = t.add_resource(
        elb.LoadBalancer(
            "NetworkLoadBalancer",
            Type="network",
            Scheme="internet-facing",
            Subnets=Ref("PublicSubnetIDs"),
            SecurityGroups=[Ref(nlb_sg)],
            LoadBalancerAttributes=[
                elb.LoadBalancerAttributes(Key="load_balancing.cross_zone.enabled", Value="true"),
                elb.LoadBalancerAttributes(Key="access_logs.s3.enabled", Value="true"),
                elb.LoadBalancerAttributes(Key="access_logs.s3.bucket", Value=access_logs_bucket),
                elb.LoadBalancerAttributes(Key="access_logs.s3.prefix", Value="nlb"),
            ],
        )
    )
    target_group = t.add_resource(
        elb.TargetGroup(
            "TargetGroup",
            Protocol="TCP",
            Port=Ref("SCPPort"),
            TargetType="ip",
            VpcId=Ref("VpcID"),
            HealthCheckProtocol="HTTP",
            HealthCheckPort=str(health_port),
            HealthCheckPath="/health",
            HealthCheckIntervalSeconds=10,
            HealthyThresholdCount=2,
            UnhealthyThresholdCount=2,
            TargetGroupAttributes=[
                elb.TargetGroupAttribute(
                    Key="deregistration_delay.timeout_seconds",
                    Value=str(spec.resources["stopTimeoutSeconds"]),
                ),
            ],
        )
    )
    listener = t.add_resource(
        elb.Listener(
            "Listener",
            LoadBalancerArn=Ref(nlb),
            Port=Ref("SCPPort"),
            Protocol=If(HAS_TLS, "TLS", "TCP"),
            Certificates=If(
                HAS_TLS, [elb.Certificate(CertificateArn=Ref("TLSCertificateARN"))], NoValue
            ),
            SslPolicy=If(HAS_TLS, TLS_POLICY, NoValue),
            DefaultActions=[elb.Action(Type="forward", TargetGroupArn=Ref(target_group))],
        )
    )
    return Network(nlb, target_group, listener, task_sg)
