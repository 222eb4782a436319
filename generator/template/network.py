"""The Network Load Balancer (internet-facing or internal), its security group (peer
restriction), the TCP or TLS listener, the target group, the optional S3 gateway endpoint and the
optional interface endpoints that let the tasks run without a NAT gateway."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from troposphere import (
    AWSObject,
    GetAtt,
    Parameter,
    Ref,
    StackId,
    Sub,
    Tags,
    Template,
    awslambda,
    cloudformation,
    ec2,
    logs,
)
from troposphere import elasticloadbalancingv2 as elb

from generator.spec import Spec
from generator.template.custom import route_tables
from generator.template.iam import allow, log_writer, role
from generator.template.kms import Key
from generator.template.parameters import Inputs
from generator.template.storage import Storage

# TLS 1.3 and 1.2 only.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# Seconds CloudFormation waits for the route-table custom resource (default: one hour).
CUSTOM_RESOURCE_TIMEOUT = 300


@dataclass(frozen=True)
class Network:
    load_balancer: elb.LoadBalancer
    target_group: elb.TargetGroup
    listener_ready: cloudformation.WaitConditionHandle  # exists once the listener does
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
    """An ingress rule for the load balancer's DICOM port from one CIDR parameter."""
    return _tcp(Ref(inputs.parameters.SCPPort), description, CidrIp=Ref(cidr))


class RouteTables(AWSObject):
    """Custom resource answered by generator/template/custom/route_tables.py."""

    resource_type = "Custom::RouteTables"
    props: ClassVar[dict] = {
        "ServiceToken": (str, True),
        "ServiceTimeout": (int, False),
        "SubnetIds": (list, True),
        "Service": (str, True),
    }


@dataclass(frozen=True)
class GatewayEndpoint:
    """A gateway endpoint on the private subnets' route tables: its service (the Region's
    prefix list com.amazonaws.<region>.<service>) and the logical IDs of the endpoint and of the
    custom resource that finds its route tables."""

    service: str
    endpoint_id: str
    route_tables_id: str


# The DICOM bucket's traffic and the image's layers (CreateS3GatewayEndpoint). Its custom
# resource keeps the name it had when S3's was the only one, so updates keep it.
S3_GATEWAY = GatewayEndpoint("s3", "S3GatewayEndpoint", "PrivateRouteTables")
# The job table's traffic: Storage Commitment, the records of direct stores and, with
# CommitmentCommitOn Stored, of every stored instance (CreateInterfaceEndpoints). A gateway
# endpoint routes by the service's prefix list, so the SDK's usual host name reaches it, where
# DynamoDB's interface endpoints have no private DNS name (DynamoDB developer guide, "AWS
# PrivateLink for DynamoDB", considerations); it is free and serves its own Region only (Amazon
# VPC PrivateLink guide, "Gateway endpoints for Amazon DynamoDB").
DYNAMODB_GATEWAY = GatewayEndpoint("dynamodb", "DynamoDBGatewayEndpoint", "DynamoDBRouteTables")


def _gateway_endpoint(
    t: Template,
    inputs: Inputs,
    function: awslambda.Function,
    gateway: GatewayEndpoint,
    condition: str,
) -> None:
    """One gateway endpoint, with the custom resource that finds its route tables."""
    p = inputs.parameters
    tables = t.add_resource(
        RouteTables(
            gateway.route_tables_id,
            Condition=condition,
            ServiceToken=GetAtt(function, "Arn"),
            ServiceTimeout=CUSTOM_RESOURCE_TIMEOUT,
            SubnetIds=Ref(p.PrivateSubnetIDs),
            Service=gateway.service,
        )
    )
    # No PolicyDocument: the default policy allows full access (Amazon VPC PrivateLink guide,
    # "Control access to VPC endpoints using endpoint policies"). The endpoint routes every
    # request to the service from these route tables, the customer's other workloads' too, so
    # a policy naming only this stack's bucket or table would cut them off; the task role's
    # IAM policy is what limits the SCP to its own resources.
    t.add_resource(
        ec2.VPCEndpoint(
            gateway.endpoint_id,
            Condition=condition,
            VpcId=Ref(p.VpcID),
            VpcEndpointType="Gateway",
            ServiceName=Sub(f"com.amazonaws.${{AWS::Region}}.{gateway.service}"),
            RouteTableIds=GetAtt(tables, "RouteTableIds"),
            # Marks this stack's endpoint, so an update keeps the tables it routes.
            Tags=Tags({route_tables.STACK_TAG: StackId}),
        )
    )


def add_gateway_endpoints(t: Template, inputs: Inputs, key: Key) -> None:
    """Gateway endpoints on the private subnets' route tables (found by a custom resource, since
    the parameters name subnets only): S3's with CreateS3GatewayEndpoint; DynamoDB's with
    CreateInterfaceEndpoints, the deployment that promises no NAT gateway (a Rule makes it
    bring CreateS3GatewayEndpoint, so the custom resource's function exists)."""
    c = inputs.conditions
    create = c.create_s3_endpoint.name
    log_group = t.add_resource(
        logs.LogGroup(
            "RouteTablesLogGroup",
            Condition=create,
            RetentionInDays=Ref(inputs.parameters.LogRetentionDays),
            KmsKeyId=key.arn,
        )
    )
    function_role = role(
        t,
        "RouteTablesFunctionRole",
        "lambda.amazonaws.com",
        [
            log_writer(log_group),
            # EC2 Describe* actions have no resource-level permissions: "*" is the only choice.
            allow(
                [
                    "ec2:DescribePrefixLists",
                    "ec2:DescribeRouteTables",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeVpcEndpoints",
                ],
                ["*"],
            ),
        ],
        condition=create,
    )
    function = t.add_resource(
        awslambda.Function(
            "RouteTablesFunction",
            Condition=create,
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
    _gateway_endpoint(t, inputs, function, S3_GATEWAY, create)
    # Not with CreateS3GatewayEndpoint alone: with a NAT gateway the job table is reachable, and
    # a DynamoDB route would move every DynamoDB request from the customer's route tables off
    # the NAT gateway (and its inspection; the source address DynamoDB sees becomes private,
    # so aws:SourceIp conditions stop matching) for a parameter that names S3 only.
    _gateway_endpoint(t, inputs, function, DYNAMODB_GATEWAY, c.create_interface_endpoints.name)


# Interface endpoints the SCP tasks need without a NAT gateway (CreateInterfaceEndpoints), by
# endpoint service (com.amazonaws.<region>.<service>), and what needs each. Fargate platform 1.4.0
# pulls an ECR image through ecr.dkr and ecr.api, its layers through the S3 gateway endpoint (ECS
# developer guide, "Migrating to Linux platform version 1.4.0"; ECR user guide, "Amazon ECR
# interface VPC endpoints (AWS PrivateLink)"); without an internet route, tasks using the awslogs
# driver need the CloudWatch Logs interface endpoint (CloudWatch Logs user guide, "Using CloudWatch
# Logs with interface VPC endpoints"; AWS re:Post knowledge center, "ecs-fargate-docker-timeout-
# error").
TASK_ENDPOINTS = {
    "ecr.api": "ECR API: the image pull's authorization token and manifest",
    "ecr.dkr": "ECR Docker registry: the image pull",
    "logs": "CloudWatch Logs: the awslogs log driver (the SCP's JSON logs and EMF metrics)",
}
# RegisterUsage at start-up, where the product meters (the endpoint prefix of boto3's
# meteringmarketplace client).
METERING_ENDPOINT = "metering.marketplace"
# Services the tasks reach, or could be thought to, with no interface endpoint, and why. S3 and
# DynamoDB are not here: their gateway endpoints (S3_GATEWAY, DYNAMODB_GATEWAY) carry them.
NO_INTERFACE_ENDPOINT = {
    "sts": "no call: the SDK takes the task role's credentials from the ECS container "
    "credentials endpoint (169.254.170.2, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI; AWS SDKs and "
    'Tools reference guide, "Container credential provider"), a link-local address, not STS',
    "ecs": "Fargate tasks need no ECS endpoint: the ECS developer guide's list of the endpoints "
    'they need ("Migrating to Linux platform version 1.4.0") names ECR, the S3 gateway, and '
    "Secrets Manager or Systems Manager only for a task definition that references secrets",
    "secretsmanager": "the task definition references no secret (no Secrets)",
    "ssm": "the task definition references no Parameter Store parameter (no Secrets)",
}


def task_endpoints(spec: Spec) -> dict[str, str]:
    """The interface endpoint services this release's tasks need, and what needs each."""
    metering = {METERING_ENDPOINT: "AWS Marketplace Metering: RegisterUsage at start-up"}
    return {**TASK_ENDPOINTS, **(metering if spec.marketplace.metering_code else {})}


def without_interface_endpoint(spec: Spec) -> dict[str, str]:
    """Services with no interface endpoint in this release, and why."""
    metering = {
        METERING_ENDPOINT: "this release does not meter (config/product.yaml marketplace."
        "registerUsage): the SCP never calls RegisterUsage"
    }
    return {**NO_INTERFACE_ENDPOINT, **({} if spec.marketplace.metering_code else metering)}


def _endpoint_id(service: str) -> str:
    """'ecr.api' -> 'EcrApiEndpoint'."""
    return "".join(part.title() for part in re.split(r"[.-]", service)) + "Endpoint"


def add_interface_endpoints(
    t: Template, spec: Spec, inputs: Inputs, task_sg: ec2.SecurityGroup
) -> None:
    """Only with CreateInterfaceEndpoints: one interface endpoint per TASK_ENDPOINTS service in
    the private subnets, private DNS on (so the SDK's and the agent's usual host names resolve to
    them), behind a security group that admits HTTPS from the tasks only."""
    p, create = inputs.parameters, inputs.conditions.create_interface_endpoints.name
    endpoint_sg = t.add_resource(
        ec2.SecurityGroup(
            "EndpointSecurityGroup",
            Condition=create,
            GroupDescription="Interface endpoints: HTTPS from the SCP tasks only",
            VpcId=Ref(p.VpcID),
            SecurityGroupIngress=[
                ec2.SecurityGroupRule(
                    **_tcp(443, "HTTPS from the SCP tasks", SourceSecurityGroupId=Ref(task_sg))
                )
            ],
            # Endpoints answer; they start no connection: a rule no packet can match (to the
            # loopback address) replaces the default allow-all egress.
            SecurityGroupEgress=[
                ec2.SecurityGroupRule(
                    IpProtocol="icmp",
                    FromPort=-1,
                    ToPort=-1,
                    CidrIp="127.0.0.1/32",
                    Description="None: endpoints only answer (replaces the default allow-all)",
                )
            ],
        )
    )
    for service in task_endpoints(spec):
        t.add_resource(
            ec2.VPCEndpoint(
                _endpoint_id(service),
                Condition=create,
                VpcId=Ref(p.VpcID),
                VpcEndpointType="Interface",
                ServiceName=Sub(f"com.amazonaws.${{AWS::Region}}.{service}"),
                SubnetIds=Ref(p.PrivateSubnetIDs),
                SecurityGroupIds=[Ref(endpoint_sg)],
                PrivateDnsEnabled=True,
            )
        )


def _security_groups(
    t: Template, spec: Spec, inputs: Inputs
) -> tuple[ec2.SecurityGroup, ec2.SecurityGroup]:
    """Peer rules live on the NLB's security group: they hold for the TCP and the TLS listener.
    The tasks accept DICOM (on the container port) and health checks from that group only."""
    p, c = inputs.parameters, inputs.conditions
    health_port = spec.resources.health_port
    container_port = spec.resources.container_port
    vpc = {"CidrIp": Ref(p.VpcCIDR)}
    nlb_sg = t.add_resource(
        ec2.SecurityGroup(
            "LoadBalancerSecurityGroup",
            Condition=c.cloud_scp.name,
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
                ec2.SecurityGroupRule(**_tcp(container_port, "DICOM to the SCP tasks", **vpc)),
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
            Condition=c.cloud_scp.name,
            GroupDescription="SCP tasks: DICOM and health checks from the load balancer only",
            VpcId=Ref(p.VpcID),
            SecurityGroupIngress=[
                ec2.SecurityGroupRule(**_tcp(container_port, "DICOM from the load balancer", **lb)),
                ec2.SecurityGroupRule(
                    **_tcp(health_port, "Health checks from the load balancer", **lb)
                ),
            ],
            SecurityGroupEgress=[
                ec2.SecurityGroupRule(
                    **_tcp(
                        443,
                        "HTTPS to AWS APIs (S3, ECR, CloudWatch, Marketplace, HealthImaging, "
                        "DynamoDB)",
                        CidrIp="0.0.0.0/0",
                    )
                )
            ],
        )
    )
    # Associations the SCP opens (commitment reports, C-MOVE) go to the registered AEs' range
    # only; their DICOM ports are each AE's own (RemoteAETitles), so the rule spans TCP ports.
    t.add_resource(
        ec2.SecurityGroupEgress(
            "TaskEgressRemoteAEs",
            Condition=c.has_remote_aes.name,
            GroupId=Ref(task_sg),
            IpProtocol="tcp",
            FromPort=1,
            ToPort=65535,
            CidrIp=Ref(p.RemoteAECIDR),
            Description="DICOM associations to the registered remote AEs (RemoteAETitles)",
        )
    )
    return nlb_sg, task_sg


def _listeners(
    t: Template, inputs: Inputs, nlb: elb.LoadBalancer, target_group: elb.TargetGroup
) -> cloudformation.WaitConditionHandle:
    """A TLS listener (TLS 1.2+) with a certificate, else a TCP listener whose idle timeout is
    NetworkTimeout (tcp.idle_timeout.seconds, 60-6000 s; TLS listeners keep a fixed 350 s:
    https://docs.aws.amazon.com/elasticloadbalancing/latest/network/update-idle-timeout.html).
    Returns a handle that exists once whichever listener exists does (the service waits on it)."""
    p, c = inputs.parameters, inputs.conditions
    forward = [elb.Action(Type="forward", TargetGroupArn=Ref(target_group))]
    tls = t.add_resource(
        elb.Listener(
            "TlsListener",
            Condition=c.has_tls.name,
            LoadBalancerArn=Ref(nlb),
            Port=Ref(p.SCPPort),
            Protocol="TLS",
            Certificates=[elb.Certificate(CertificateArn=Ref(p.TLSCertificateARN))],
            SslPolicy=TLS_POLICY,
            DefaultActions=forward,
        )
    )
    tcp = t.add_resource(
        elb.Listener(
            "TcpListener",
            Condition=c.no_tls.name,
            LoadBalancerArn=Ref(nlb),
            Port=Ref(p.SCPPort),
            Protocol="TCP",
            ListenerAttributes=[
                elb.ListenerAttribute(Key="tcp.idle_timeout.seconds", Value=Ref(p.NetworkTimeout))
            ],
            DefaultActions=forward,
        )
    )
    return t.add_resource(
        cloudformation.WaitConditionHandle(
            "ListenerReady",
            Condition=c.cloud_scp.name,
            Metadata={"Listener": c.has_tls.choose(Ref(tls), Ref(tcp))},
        )
    )


def add_network(t: Template, spec: Spec, inputs: Inputs, key: Key, storage: Storage) -> Network:
    p, c = inputs.parameters, inputs.conditions
    nlb_sg, task_sg = _security_groups(t, spec, inputs)
    nlb = t.add_resource(
        elb.LoadBalancer(
            "NetworkLoadBalancer",
            Condition=c.cloud_scp.name,
            # Log delivery checks the bucket policy when the load balancer is created.
            DependsOn=[storage.access_logs_policy],
            Type="network",
            Scheme=Ref(p.LoadBalancerScheme),
            Subnets=c.internal.choose(Ref(p.PrivateSubnetIDs), Ref(p.PublicSubnetIDs)),
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
            Condition=c.cloud_scp.name,
            Protocol="TCP",
            Port=spec.resources.container_port,
            TargetType="ip",
            VpcId=Ref(p.VpcID),
            HealthCheckProtocol="HTTP",
            HealthCheckPort=str(spec.resources.health_port),
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
    listener_ready = _listeners(t, inputs, nlb, target_group)
    add_gateway_endpoints(t, inputs, key)
    add_interface_endpoints(t, spec, inputs, task_sg)
    return Network(nlb, target_group, listener_ready, task_sg)
