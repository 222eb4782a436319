"""The route-table custom resource against EC2 on a moto server, answering CloudFormation over
real HTTP."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from generator.template.custom import route_tables


@pytest.fixture
def ec2(moto):
    return moto.client("ec2")


STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/scp/1"


@pytest.fixture
def network(ec2):
    """Subnet a: own route table; b: the VPC's main table; c: a table with the customer's S3
    endpoint; d: a table with the customer's DynamoDB endpoint; e: a table with this stack's S3
    endpoint; f: a table with this stack's DynamoDB endpoint."""
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24")["Subnet"]["SubnetId"]
        for i in range(6)
    ]
    own, s3, dynamodb, our_s3, our_dynamodb = (
        ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"] for _ in range(5)
    )
    for table, subnet in ((own, 0), (s3, 2), (dynamodb, 3), (our_s3, 4), (our_dynamodb, 5)):
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnets[subnet])

    def endpoint(service: str, table: str, **tags: str) -> None:
        ec2.create_vpc_endpoint(
            VpcId=vpc,
            ServiceName=f"com.amazonaws.us-east-1.{service}",
            VpcEndpointType="Gateway",
            RouteTableIds=[table],
            TagSpecifications=[
                {"ResourceType": "vpc-endpoint", "Tags": [{"Key": k, "Value": v}]}
                for k, v in tags.items()
            ],
        )

    endpoint("s3", s3)
    endpoint("dynamodb", dynamodb)
    endpoint("s3", our_s3, **{route_tables.STACK_TAG: STACK})
    endpoint("dynamodb", our_dynamodb, **{route_tables.STACK_TAG: STACK})
    main = ec2.describe_route_tables(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc]},
            {"Name": "association.main", "Values": ["true"]},
        ]
    )["RouteTables"][0]["RouteTableId"]
    return SimpleNamespace(
        subnets=subnets,
        own=own,
        main=main,
        customers={"s3": s3, "dynamodb": dynamodb},
        ours={"s3": our_s3, "dynamodb": our_dynamodb},
    )


def expected(network: SimpleNamespace, service: str) -> list[str]:
    """Every table but the one routing service through the customer's endpoint."""
    tables = [network.own, network.main, *network.customers.values(), *network.ours.values()]
    return sorted(t for t in tables if t != network.customers[service])


def test_moto_has_both_prefix_lists(ec2):
    """The tests below mean something only if moto routes both services by prefix list."""
    names = {f"com.amazonaws.us-east-1.{service}" for service in route_tables.SERVICES}
    lists = ec2.describe_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [*names]}])
    assert {p["PrefixListName"] for p in lists["PrefixLists"]} == names


@pytest.mark.parametrize("service", route_tables.SERVICES)
def test_another_endpoint_for_the_service_excludes_its_table(ec2, network, service):
    """The customer's endpoint for the service excludes its table; the other service's
    endpoint and this stack's own do not."""
    tables = route_tables.route_table_ids(ec2, network.subnets, STACK, service)
    assert network.customers[service] not in tables
    assert tables == expected(network, service)


@pytest.mark.parametrize("service", route_tables.SERVICES)
def test_another_stacks_endpoint_is_the_customers(ec2, network, service):
    other = STACK.replace("/1", "/2")
    tables = route_tables.route_table_ids(ec2, network.subnets, other, service)
    assert network.ours[service] not in tables
    assert network.ours[service] in route_tables.route_table_ids(
        ec2, network.subnets, STACK, service
    )


def test_one_subnet(ec2, network):
    assert route_tables.route_table_ids(ec2, network.subnets[:1], STACK, "dynamodb") == [
        network.own
    ]
    assert route_tables.route_table_ids(ec2, network.subnets[2:3], STACK, "s3") == []
    assert route_tables.route_table_ids(ec2, network.subnets[3:4], STACK, "dynamodb") == []
    assert route_tables.route_table_ids(ec2, network.subnets[3:4], STACK, "s3") == [
        network.customers["dynamodb"]
    ]


def test_a_service_without_gateway_endpoints_is_refused(ec2, network):
    with pytest.raises(ValueError, match="Service must be one of s3, dynamodb, not 'sqs'"):
        route_tables.route_table_ids(ec2, network.subnets, STACK, "sqs")


@pytest.fixture
def cloudformation():
    """A stand-in for CloudFormation's pre-signed response URL: records every PUT."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/response", received
    server.shutdown()
    server.server_close()
    thread.join()


def event(url: str, request_type: str, subnets: list[str], service: str = "s3") -> dict:
    return {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": STACK,
        "RequestId": "r1",
        "LogicalResourceId": "PrivateRouteTables",
        "ResourceProperties": {"SubnetIds": subnets, "Service": service},
    }


@pytest.mark.parametrize("service", route_tables.SERVICES)
def test_handler_answers_create_update_delete(moto, network, cloudformation, monkeypatch, service):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
    url, received = cloudformation
    context = SimpleNamespace(log_stream_name="stream-1")
    for request_type in ("Create", "Update", "Delete"):
        route_tables.handler(event(url, request_type, network.subnets, service), context)
    create, update, delete = received
    assert create["Status"] == "SUCCESS" and update["Status"] == "SUCCESS"
    assert create["Data"] == update["Data"] == {"RouteTableIds": expected(network, service)}
    assert (delete["Status"], delete["Data"]) == ("SUCCESS", {})
    assert create["PhysicalResourceId"] == "stream-1"


def test_handler_reports_failure(moto, cloudformation, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
    url, received = cloudformation
    route_tables.handler(
        event(url, "Create", ["subnet-missing"]), SimpleNamespace(log_stream_name="s")
    )
    (answer,) = received
    assert answer["Status"] == "FAILED" and "subnet-missing" in answer["Reason"]


GATEWAYS = (
    ("s3", "S3GatewayEndpoint", "PrivateRouteTables"),
    ("dynamodb", "DynamoDBGatewayEndpoint", "DynamoDBRouteTables"),
)


def test_code_fits_inline(resources):
    code = resources["RouteTablesFunction"]["Properties"]["Code"]["ZipFile"]
    assert len(code) <= 4096  # CloudFormation's limit for inline Lambda code


@pytest.mark.parametrize(("service", "endpoint_id", "tables_id"), GATEWAYS)
def test_each_gateway_endpoint_routes_the_tables_its_custom_resource_found(
    resources, service, endpoint_id, tables_id
):
    endpoint = resources[endpoint_id]["Properties"]
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert endpoint["ServiceName"] == {"Fn::Sub": f"com.amazonaws.${{AWS::Region}}.{service}"}
    assert endpoint["RouteTableIds"] == {"Fn::GetAtt": [tables_id, "RouteTableIds"]}
    assert endpoint["Tags"] == [{"Key": route_tables.STACK_TAG, "Value": {"Ref": "AWS::StackId"}}]
    assert "PolicyDocument" not in endpoint  # full access, like S3's: see network.py
    tables = resources[tables_id]["Properties"]
    assert tables["Service"] == service
    assert tables["ServiceToken"] == {"Fn::GetAtt": ["RouteTablesFunction", "Arn"]}
    assert tables["ServiceTimeout"] == 300


def test_endpoints_are_opt_in(template):
    """Off by default: no endpoint, no custom resource, no EC2 read rights. S3's comes with
    CreateS3GatewayEndpoint; DynamoDB's only with CreateInterfaceEndpoints (no NAT gateway)."""
    from tests.generator.cfn_eval import Evaluator

    s3 = {
        "S3GatewayEndpoint",
        "PrivateRouteTables",
        "RouteTablesFunction",
        "RouteTablesFunctionRole",
        "RouteTablesLogGroup",
    }
    dynamodb = {"DynamoDBGatewayEndpoint", "DynamoDBRouteTables"}
    assert template["Parameters"]["CreateS3GatewayEndpoint"]["Default"] == "false"
    assert not (s3 | dynamodb) & set(Evaluator(template, {}).resources())
    on = Evaluator(template, {"CreateS3GatewayEndpoint": "true"}).resources()
    assert s3 <= set(on) and not dynamodb & set(on)
    no_nat = {"CreateS3GatewayEndpoint": "true", "CreateInterfaceEndpoints": "true"}
    assert s3 | dynamodb <= set(Evaluator(template, no_nat).resources())
    edge_only = Evaluator(template, {**no_nat, "DeployCloudSCP": "false"}).resources()
    assert not dynamodb & set(edge_only)  # no SCP tasks in the VPC, no job-table traffic
    (statement,) = [
        s
        for s in on["RouteTablesFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"][
            "Statement"
        ]
        if s["Resource"] == ["*"]
    ]
    assert all(a.startswith("ec2:Describe") for a in statement["Action"])
