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
    endpoint; d: a table with a DynamoDB endpoint only; e: a table with this stack's endpoint."""
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24")["Subnet"]["SubnetId"]
        for i in range(5)
    ]
    own, served, dynamo, ours = (
        ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"] for _ in range(4)
    )
    for table, subnet in ((own, 0), (served, 2), (dynamo, 3), (ours, 4)):
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

    endpoint("s3", served)
    endpoint("dynamodb", dynamo)
    endpoint("s3", ours, **{route_tables.STACK_TAG: STACK})
    main = ec2.describe_route_tables(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc]},
            {"Name": "association.main", "Values": ["true"]},
        ]
    )["RouteTables"][0]["RouteTableId"]
    return SimpleNamespace(
        subnets=subnets, own=own, main=main, served=served, dynamo=dynamo, ours=ours
    )


def test_route_tables_without_another_s3_endpoint(ec2, network):
    """The customer's S3 endpoint excludes its table; DynamoDB's and this stack's do not."""
    assert route_tables.route_table_ids(ec2, network.subnets, STACK) == sorted(
        [network.own, network.main, network.dynamo, network.ours]
    )


def test_another_stacks_endpoint_is_the_customers(ec2, network):
    other = STACK.replace("/1", "/2")
    assert network.ours not in route_tables.route_table_ids(ec2, network.subnets, other)


def test_one_subnet(ec2, network):
    assert route_tables.route_table_ids(ec2, network.subnets[:1], STACK) == [network.own]
    assert route_tables.route_table_ids(ec2, network.subnets[2:3], STACK) == []


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


def event(url: str, request_type: str, subnets: list[str]) -> dict:
    return {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": STACK,
        "RequestId": "r1",
        "LogicalResourceId": "PrivateRouteTables",
        "ResourceProperties": {"SubnetIds": subnets},
    }


def test_handler_answers_create_update_delete(moto, network, cloudformation, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
    url, received = cloudformation
    context = SimpleNamespace(log_stream_name="stream-1")
    for request_type in ("Create", "Update", "Delete"):
        route_tables.handler(event(url, request_type, network.subnets), context)
    create, update, delete = received
    assert create["Status"] == "SUCCESS" and update["Status"] == "SUCCESS"
    tables = sorted([network.own, network.main, network.dynamo, network.ours])
    assert create["Data"] == update["Data"] == {"RouteTableIds": tables}
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


def test_code_fits_inline(resources):
    code = resources["RouteTablesFunction"]["Properties"]["Code"]["ZipFile"]
    assert len(code) <= 4096  # CloudFormation's limit for inline Lambda code
    endpoint = resources["S3GatewayEndpoint"]["Properties"]
    assert endpoint["RouteTableIds"] == {"Fn::GetAtt": ["PrivateRouteTables", "RouteTableIds"]}
    assert endpoint["Tags"] == [{"Key": route_tables.STACK_TAG, "Value": {"Ref": "AWS::StackId"}}]
    assert resources["PrivateRouteTables"]["Properties"]["ServiceTimeout"] == 300


def test_endpoint_is_opt_in(template):
    """Off by default: no endpoint, no custom resource, no EC2 read rights; on: all of them."""
    from tests.generator.cfn_eval import Evaluator

    parts = {
        "S3GatewayEndpoint",
        "PrivateRouteTables",
        "RouteTablesFunction",
        "RouteTablesFunctionRole",
        "RouteTablesLogGroup",
    }
    assert template["Parameters"]["CreateS3GatewayEndpoint"]["Default"] == "false"
    assert not parts & set(Evaluator(template, {}).resources())
    on = Evaluator(template, {"CreateS3GatewayEndpoint": "true"}).resources()
    assert parts <= set(on)
    (statement,) = [
        s
        for s in on["RouteTablesFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"][
            "Statement"
        ]
        if s["Resource"] == ["*"]
    ]
    assert all(a.startswith("ec2:Describe") for a in statement["Action"])
