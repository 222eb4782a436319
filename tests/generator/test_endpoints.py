"""Running without a NAT gateway: CreateInterfaceEndpoints adds an endpoint (interface, or gateway
for S3 and DynamoDB) for every AWS API the SCP tasks call (derived from scp/'s code and the task
definition), the Rules refuse the settings that cannot work, and off means none of it exists."""

from __future__ import annotations

import ast
import copy
import json
from typing import Any

import botocore.session

from generator.spec import ROOT, Spec
from generator.template.build import template_for
from generator.template.network import task_endpoints, without_interface_endpoint
from tests.generator.cfn_eval import Evaluator

NO_NAT = {"CreateInterfaceEndpoints": "true", "CreateS3GatewayEndpoint": "true"}
PRIVATE = "subnet-a,subnet-b"
REGION = {"AWS::Region": "us-east-1"}


def boto3_clients(source: str) -> set[str]:
    """Service names of every `boto3.client("name", ...)` call in Python source."""
    return {
        node.args[0].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "client"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "boto3"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def endpoint_services(clients: set[str]) -> set[str]:
    """The endpoint prefix of each boto3 client (botocore's service model: s3 -> s3,
    meteringmarketplace -> metering.marketplace), the name VPC endpoint services carry."""
    session = botocore.session.get_session()
    return {session.get_service_model(c).endpoint_prefix for c in clients}


def container_needs(template: dict[str, Any]) -> set[str]:
    """What the task definition makes Fargate reach: ECR for an ECR image, CloudWatch Logs for
    the awslogs driver."""
    (task,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    (container,) = task["Properties"]["ContainerDefinitions"]
    needs = set()
    if ".dkr.ecr." in container["Image"]:
        needs |= {"ecr.api", "ecr.dkr", "s3"}  # layers come from S3
    if container.get("LogConfiguration", {}).get("LogDriver") == "awslogs":
        needs.add("logs")
    if container.get("Secrets"):  # ECS fetches them through the task's network
        needs |= {"secretsmanager", "ssm"}
    return needs


def scp_needs() -> set[str]:
    sources = (ROOT / "scp").rglob("*.py")
    return endpoint_services(set().union(*(boto3_clients(p.read_text()) for p in sources)))


def endpoints(resources: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Endpoints of a kind ("Interface", "Gateway") by service ("ecr.api"), from
    com.amazonaws.${AWS::Region}.<service>."""
    return {
        r["Properties"]["ServiceName"]["Fn::Sub"].removeprefix("com.amazonaws.${AWS::Region}."): r
        for r in resources.values()
        if r["Type"] == "AWS::EC2::VPCEndpoint" and r["Properties"]["VpcEndpointType"] == kind
    }


def interface_endpoints(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return endpoints(resources, "Interface")


def missing(needs: set[str], template: dict[str, Any], spec: Spec) -> set[str]:
    """Needs with neither an endpoint (interface or gateway, when on) nor a documented reason."""
    on = Evaluator(template, {**NO_NAT, "PrivateSubnetIDs": PRIVATE}).resources()
    reasons = {k for k, v in without_interface_endpoint(spec).items() if v}
    covered = set(interface_endpoints(on)) | set(endpoints(on, "Gateway"))
    return needs - covered - reasons


def test_every_aws_api_the_tasks_call_has_an_endpoint_or_a_reason(template, spec):
    needs = scp_needs() | container_needs(template)
    assert {"s3", "dynamodb", "metering.marketplace", "ecr.api", "ecr.dkr", "logs"} <= needs
    assert missing(needs, template, spec) == set()


def test_s3_and_dynamodb_are_covered_by_their_gateway_endpoints_only(template, spec):
    """No reason stands in for them: without its gateway endpoint each would be missing."""
    assert not {"s3", "dynamodb"} & set(without_interface_endpoint(spec))
    for endpoint in ("S3GatewayEndpoint", "DynamoDBGatewayEndpoint"):
        without = copy.deepcopy(template)
        service = without["Resources"].pop(endpoint)["Properties"]["ServiceName"]["Fn::Sub"]
        assert missing(scp_needs(), without, spec) == {service.rsplit(".", 1)[1]}


def test_a_new_client_in_the_scp_without_an_endpoint_is_found(template, spec):
    """The derivation can fail: an SQS client in the SCP would need an endpoint nobody added."""
    source = 'import boto3\nclient = boto3.client("sqs", region_name="x")\n'
    assert missing(endpoint_services(boto3_clients(source)), template, spec) == {"sqs"}


def test_interface_endpoints_only_when_asked(template):
    assert template["Parameters"]["CreateInterfaceEndpoints"]["Default"] == "false"
    off = Evaluator(template, {}).resources()
    assert interface_endpoints(off) == {} and "EndpointSecurityGroup" not in off
    on = Evaluator(template, {**NO_NAT, "PrivateSubnetIDs": PRIVATE, "VpcID": "vpc-1"})
    endpoints = interface_endpoints(on.resources())
    assert set(endpoints) == {"ecr.api", "ecr.dkr", "logs"}  # this release does not meter
    for endpoint in endpoints.values():
        p = endpoint["Properties"]
        assert p["PrivateDnsEnabled"] is True
        assert p["SubnetIds"] == PRIVATE.split(",")
        assert p["SecurityGroupIds"] == [{"Ref": "EndpointSecurityGroup"}]
        assert p["VpcId"] == "vpc-1"


def test_the_endpoints_admit_https_from_the_tasks_only(resources):
    group = resources["EndpointSecurityGroup"]
    assert group["Condition"] == "CreateTaskEndpoints"
    (ingress,) = group["Properties"]["SecurityGroupIngress"]
    assert (ingress["FromPort"], ingress["ToPort"], ingress["IpProtocol"]) == (443, 443, "tcp")
    assert ingress["SourceSecurityGroupId"] == {"Ref": "TaskSecurityGroup"}
    (egress,) = group["Properties"]["SecurityGroupEgress"]
    assert (egress["IpProtocol"], egress["CidrIp"]) == ("icmp", "127.0.0.1/32")  # nothing


def test_a_metering_release_gets_the_metering_endpoint(spec):
    data = copy.deepcopy(spec.data)
    data["marketplace"] = {"registerUsage": True, "productCode": "abcdefghijklmnopqrstuvwxy"}
    metering = Spec(data, spec.definition)
    assert "metering.marketplace" in task_endpoints(metering)
    assert "metering.marketplace" not in without_interface_endpoint(metering)
    template = json.loads(template_for(metering).to_json())
    on = Evaluator(template, {**NO_NAT, "PrivateSubnetIDs": PRIVATE}).resources()
    assert set(interface_endpoints(on)) == {"ecr.api", "ecr.dkr", "logs", "metering.marketplace"}
    assert missing(scp_needs() | container_needs(template), template, metering) == set()


def test_rules_refuse_no_nat_without_s3_gateway_or_outside_the_images_region(template):
    def failed(region: str = "us-east-1", **parameters: str) -> list[str]:
        rules = Evaluator(template, parameters, names={"AWS::Region": region})
        return [r for r in rules.failed_rules() if r.startswith("InterfaceEndpoints")]

    assert failed() == []
    assert failed(**NO_NAT) == []
    assert failed(CreateInterfaceEndpoints="true") == ["InterfaceEndpointsNeedS3GatewayEndpoint"]
    assert failed("eu-west-1", **NO_NAT) == ["InterfaceEndpointsInImageRegion"]
    assert failed("eu-west-1") == []  # with a NAT gateway any Region works


def test_a_task_definition_with_secrets_needs_their_endpoints(template):
    with_secrets = copy.deepcopy(template)
    (task,) = [
        r for r in with_secrets["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"
    ]
    task["Properties"]["ContainerDefinitions"][0]["Secrets"] = [{"Name": "X", "ValueFrom": "y"}]
    assert {"secretsmanager", "ssm"} <= container_needs(with_secrets)
    assert not {"secretsmanager", "ssm"} & container_needs(template)


def test_reasons_say_why_and_name_their_source(spec):
    reasons = without_interface_endpoint(spec)
    assert "169.254.170.2" in reasons["sts"] and "Container credential provider" in reasons["sts"]
    assert "does not meter" in reasons["metering.marketplace"]
