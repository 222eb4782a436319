"""The Network Load Balancer, its security group (peer restriction), listener and target group."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

from troposphere import (
    AWSObject,
    GetAtt,
    NoValue,
    Parameter,
    Ref,
    Sub,
    Template,
    awslambda,
    ec2,
    logs,
)
from troposphere import elasticloadbalancingv2 as elb

from generator.custom import route_tables
from generator.iam import allow, log_writer, role
from generator.parameters import Inputs
from generator.spec import Spec
from generator.storage import Storage

# TLS 1.3 and 1.2 only.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class Network:
    load_balancer: elb.LoadBalancer
    target_group: elb.TargetGroup
    listener: elb.Listener
    task_security_group: ec2.SecurityGroup


def _tcp(port: Any, description: str, **source: Any) -> dict:
    """A security group rule for one TCP port; source is CidrIp=... or SourceSecurityGroupId=..."""
    return {
        "IpProtocol": "tcp",
        "FromPort": port,
        "ToPort": port,
        "Description": description,
        **source,
    }


def _dicom_ingress(inputs: Inputs, cidr: Parameter, description: str) -> dict:
    """An ingress rule for the DICOM port from one CIDR parameter."""
    return _tcp(Ref(inputs.parameters.SCPPort), description, CidrIp=Ref(cidr))


class RouteTables(AWSObject):
    """Custom resource answered by generator/custom/route_tables.py."""

    resource_type = "Custom::RouteTables"
    props: ClassVar[dict] = {"ServiceToken": (str, True), "SubnetIds": (list, True)}


def add_s3_endpoint(t: Template, spec: Spec, inputs: Inputs) -> None:
    """S3 gateway endpoint on the private subnets' route tables (found by a custom resource,
    since the parameters name subnets only), so received images reach S3 without the NAT."""
    log_group = t.add_resource(
        logs.LogGroup("RouteTablesLogGroup", RetentionInDays=spec.resources.log_retention_days)
    )
    function_role = role(
        t,
        "RouteTablesFunctionRole",
        "lambda.amazonaws.com",
        [
            log_writer(log_group),
            # EC2 Describe* actions have no resource-level permissions: "*" is the only choice.
            allow(["ec2:DescribeRouteTables", "ec2:DescribeSubnets"], ["*"]),
        ],
    )
    function = t.add_resource(
        awslambda.Function(
            "RouteTablesFunction",
            Runtime="python3.12",
            Handler="index.handler",
            Code=awslambda.Code(ZipFile=inspect.getsource(route_tables)),
            Role=GetAtt(function_role, "Arn"),
            Timeout=60,
            MemorySize=128,
            TracingConfig=awslambda.TracingConfig(Mode="PassThrough"),
            LoggingConfig=awslambda.LoggingConfig(LogGroup=Ref(log_group)),
        )
    )
    tables = t.add_resource(
        RouteTables(
            "PrivateRouteTables",
            ServiceToken=GetAtt(function, "Arn"),
            SubnetIds=Ref(inputs.parameters.PrivateSubnetIDs),
        )
    )
    t.add_resource(
        ec2.VPCEndpoint(
            "S3GatewayEndpoint",
            VpcId=Ref(inputs.parameters.VpcID),
            VpcEndpointType="Gateway",
            ServiceName=Sub("com.amazonaws.${AWS::Region}.s3"),
            RouteTableIds=GetAtt(tables, "RouteTableIds"),
        )
    )


def add_network(t: Template, spec: Spec, inputs: Inputs, storage: Storage) -> Network:
    """Peer rules live on the NLB's security group: they hold for the TCP and the TLS listener."""
    p, c = inputs.parameters, inputs.conditions
    health_port = spec.resources.health_port
    dicom_port = Ref(p.SCPPort)
    vpc = {"CidrIp": Ref(p.VpcCIDR)}
    nlb_sg = t.add_resource(
        ec2.SecurityGroup(
            "LoadBalancerSecurityGroup",
            GroupDescription="DICOM clients allowed to reach the load balancer",
            VpcId=Ref(p.VpcID),
            SecurityGroupIngress=[
                ec2.SecurityGroupRule(
                    **_dicom_ingress(inputs, p.VpcCIDR, "DICOM from inside the VPC")
                ),
                ec2.SecurityGroupRule(
                    **_dicom_ingress(inputs, p.PeerCIDR1, "DICOM from allowed range 1")
                ),
            ],
            SecurityGroupEgress=[
                ec2.SecurityGroupRule(**_tcp(dicom_port, "DICOM to the SCP tasks", **vpc)),
                ec2.SecurityGroupRule(**_tcp(health_port, "Health checks of the SCP tasks", **vpc)),
            ],
        )
    )
    # Optional ranges are separate rules that exist only when their parameter is set.
    for n, cidr, condition in ((2, p.PeerCIDR2, c.has_peer2), (3, p.PeerCIDR3, c.has_peer3)):
        t.add_resource(
            ec2.SecurityGroupIngress(
                f"LoadBalancerIngressPeer{n}",
                Condition=condition.name,
                GroupId=Ref(nlb_sg),
                **_dicom_ingress(inputs, cidr, f"DICOM from allowed range {n}"),
            )
        )
    lb = {"SourceSecurityGroupId": Ref(nlb_sg)}
    task_sg = t.add_resource(
        ec2.SecurityGroup(
            "TaskSecurityGroup",
            GroupDescription="SCP tasks: DICOM and health checks from the load balancer only",
            VpcId=Ref(p.VpcID),
            SecurityGroupIngress=[
                ec2.SecurityGroupRule(**_tcp(dicom_port, "DICOM from the load balancer", **lb)),
                ec2.SecurityGroupRule(
                    **_tcp(health_port, "Health checks from the load balancer", **lb)
                ),
            ],
            SecurityGroupEgress=[
                ec2.SecurityGroupRule(
                    **_tcp(
                        443,
                        "HTTPS to AWS APIs (S3, ECR, CloudWatch, Marketplace)",
                        CidrIp="0.0.0.0/0",
                    )
                )
            ],
        )
    )
    nlb = t.add_resource(
        elb.LoadBalancer(
            "NetworkLoadBalancer",
            # Log delivery checks the bucket policy when the load balancer is created.
            DependsOn=[storage.access_logs_policy],
            Type="network",
            Scheme="internet-facing",
            Subnets=Ref(p.PublicSubnetIDs),
            SecurityGroups=[Ref(nlb_sg)],
            LoadBalancerAttributes=[
                elb.LoadBalancerAttributes(Key="load_balancing.cross_zone.enabled", Value="true"),
                elb.LoadBalancerAttributes(Key="access_logs.s3.enabled", Value="true"),
                elb.LoadBalancerAttributes(
                    Key="access_logs.s3.bucket", Value=Ref(storage.access_logs_bucket)
                ),
                elb.LoadBalancerAttributes(Key="access_logs.s3.prefix", Value="nlb"),
            ],
        )
    )
    target_group = t.add_resource(
        elb.TargetGroup(
            "TargetGroup",
            Protocol="TCP",
            Port=dicom_port,
            TargetType="ip",
            VpcId=Ref(p.VpcID),
            HealthCheckProtocol="HTTP",
            HealthCheckPort=str(health_port),
            HealthCheckPath="/health",
            HealthCheckIntervalSeconds=10,
            HealthyThresholdCount=2,
            UnhealthyThresholdCount=2,
            TargetGroupAttributes=[
                elb.TargetGroupAttribute(
                    Key="deregistration_delay.timeout_seconds",
                    Value=str(spec.resources.stop_timeout_seconds),
                ),
            ],
        )
    )
    listener = t.add_resource(
        elb.Listener(
            "Listener",
            LoadBalancerArn=Ref(nlb),
            Port=dicom_port,
            Protocol=c.has_tls.choose("TLS", "TCP"),
            Certificates=c.has_tls.choose(
                [elb.Certificate(CertificateArn=Ref(p.TLSCertificateARN))], NoValue
            ),
            SslPolicy=c.has_tls.choose(TLS_POLICY, NoValue),
            DefaultActions=[elb.Action(Type="forward", TargetGroupArn=Ref(target_group))],
        )
    )
    add_s3_endpoint(t, spec, inputs)
    return Network(nlb, target_group, listener, task_sg)
