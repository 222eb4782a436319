"""Custom resource: the route tables of the given subnets that have no gateway endpoint yet.

The S3 gateway endpoint needs route table IDs, and the stack's parameters name only subnets.
A route table that already holds a gateway endpoint route (the customer's own S3 endpoint) is
left out: adding a second S3 endpoint to it would fail the stack.
"""

import json
import urllib.request


def route_table_ids(ec2, subnet_ids):
    """Sorted IDs of the route tables serving subnet_ids, without those with a gateway endpoint."""
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
            r.get("DestinationPrefixListId") and r.get("GatewayId", "").startswith("vpce-")
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
        ids = route_table_ids(boto3.client("ec2"), event["ResourceProperties"]["SubnetIds"])
        respond(event, context, "SUCCESS", {"RouteTableIds": ids})
    except Exception as exc:  # CloudFormation must always get an answer
        respond(event, context, "FAILED", {}, f"{type(exc).__name__}: {exc}")
