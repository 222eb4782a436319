"""The route-table custom resource against EC2 on a moto server, answering CloudFormation over
real HTTP."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from generator.custom import route_tables


@pytest.fixture
def ec2(moto):
    return moto.client("ec2")


@pytest.fixture
def network(ec2):
    """Subnet a: own route table; b: the VPC's main table; c: a table with an S3 endpoint."""
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24")["Subnet"]["SubnetId"]
        for i in range(3)
    ]
    own, served = (
        ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"] for _ in range(2)
    )
    ec2.associate_route_table(RouteTableId=own, SubnetId=subnets[0])
    ec2.associate_route_table(RouteTableId=served, SubnetId=subnets[2])
    ec2.create_vpc_endpoint(
        VpcId=vpc,
        ServiceName="com.amazonaws.us-east-1.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[served],
    )
    main = ec2.describe_route_tables(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc]},
            {"Name": "association.main", "Values": ["true"]},
        ]
    )["RouteTables"][0]["RouteTableId"]
    return SimpleNamespace(subnets=subnets, own=own, main=main, served=served)


def test_route_tables_of_the_subnets_without_an_s3_endpoint(ec2, network):
    assert route_tables.route_table_ids(ec2, network.subnets) == sorted([network.own, network.main])


def test_one_subnet(ec2, network):
    assert route_tables.route_table_ids(ec2, network.subnets[:1]) == [network.own]
    assert route_tables.route_table_ids(ec2, network.subnets[2:]) == []


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
        "StackId": "stack",
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
    assert create["Data"] == {"RouteTableIds": sorted([network.own, network.main])}
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
    assert resources["S3GatewayEndpoint"]["Properties"]["RouteTableIds"] == {
        "Fn::GetAtt": ["PrivateRouteTables", "RouteTableIds"]
    }
