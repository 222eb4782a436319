"""Custom resource: the route tables of the given subnets for this stack's S3 gateway endpoint.

The S3 gateway endpoint needs route table IDs, and the stack's parameters name only subnets.
A route table whose S3 route belongs to another endpoint (the customer's own) is left out:
a second S3 endpoint on it would fail the stack. A table routed by this stack's endpoint (tagged
with the stack ID) stays in, so an update keeps it. Other gateway endpoints (DynamoDB) do not
count: only routes to the Region's S3 prefix list do.
"""

import json
import urllib.request

STACK_TAG = "storescp:stack-id"


def _s3_prefix_list(ec2):
    name = f"com.amazonaws.{ec2.meta.region_name}.s3"
    lists = ec2.describe_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [name]}])
    return lists["PrefixLists"][0]["PrefixListId"]


def _own_endpoints(ec2, stack_id):
    found = ec2.describe_vpc_endpoints(
        Filters=[{"Name": f"tag:{STACK_TAG}", "Values": [stack_id]}]
    )["VpcEndpoints"]
    return {e["VpcEndpointId"] for e in found}


def route_table_ids(ec2, subnet_ids, stack_id):
    """Sorted IDs of the route tables serving subnet_ids whose S3 route, if any, is this
    stack's."""
    s3_list = _s3_prefix_list(ec2)
    own = _own_endpoints(ec2, stack_id)
    subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    tables = {}
    for subnet in subnets:
        found = ec2.describe_route_tables(
            Filters=[{"Name": "association.subnet-id", "Values": [subnet["SubnetId"]]}]
        )["RouteTables"]
        if not found:
            found = ec2.describe_route_tables(
                Filters=[
                    {"Name": "vpc-id", "Values": [subnet["VpcId"]]},
                    {"Name": "association.main", "Values": ["true"]},
                ]
            )["RouteTables"]
        tables.update((t["RouteTableId"], t) for t in found)
    return sorted(
        table_id
        for table_id, table in tables.items()
        if not any(
            r.get("DestinationPrefixListId") == s3_list and r.get("GatewayId") not in own
            for r in table.get("Routes", [])
        )
    )


def respond(event, context, status, data, reason=""):
    """Answer CloudFormation at the pre-signed ResponseURL."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason or f"see log stream {context.log_stream_name}",
            "PhysicalResourceId": event.get("PhysicalResourceId") or context.log_stream_name,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
    ).encode()
    request = urllib.request.Request(
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""}
    )
    urllib.request.urlopen(request, timeout=30)


def handler(event, context):
    import boto3

    try:
        if event["RequestType"] == "Delete":
            respond(event, context, "SUCCESS", {})
            return
        ids = route_table_ids(
            boto3.client("ec2"), event["ResourceProperties"]["SubnetIds"], event["StackId"]
        )
        respond(event, context, "SUCCESS", {"RouteTableIds": ids})
    except Exception as exc:  # CloudFormation must always get an answer
        respond(event, context, "FAILED", {}, f"{type(exc).__name__}: {exc}")
