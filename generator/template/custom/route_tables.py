"""Custom resource: the route tables of the given subnets for one of this stack's gateway
endpoints, S3's or DynamoDB's (property Service: "s3" or "dynamodb").

A gateway endpoint needs route table IDs, and the stack's parameters name only subnets.
A route table whose route to the service (the Region's prefix list
com.amazonaws.<region>.<service>) belongs to another endpoint (the customer's own) is left out:
a second endpoint for the same service on it would fail the stack. A table routed by this
stack's endpoint (tagged with the stack ID) stays in, so an update keeps it. Routes to the other
service's prefix list do not count.
"""

import json
import urllib.request

STACK_TAG = "storescp:stack-id"
SERVICES = ("s3", "dynamodb")  # the services with gateway endpoints


def _prefix_list(ec2, service):
    if service not in SERVICES:
        raise ValueError(f"Service must be one of {', '.join(SERVICES)}, not {service!r}")
    name = f"com.amazonaws.{ec2.meta.region_name}.{service}"
    lists = ec2.describe_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [name]}])
    if not lists["PrefixLists"]:
        raise ValueError(f"no prefix list {name} in this Region")
    return lists["PrefixLists"][0]["PrefixListId"]


def _own_endpoints(ec2, stack_id):
    found = ec2.describe_vpc_endpoints(
        Filters=[{"Name": f"tag:{STACK_TAG}", "Values": [stack_id]}]
    )["VpcEndpoints"]
    return {e["VpcEndpointId"] for e in found}


def route_table_ids(ec2, subnet_ids, stack_id, service):
    """Sorted IDs of the route tables serving subnet_ids whose route to service, if any, is
    this stack's."""
    prefix_list = _prefix_list(ec2, service)
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
            r.get("DestinationPrefixListId") == prefix_list and r.get("GatewayId") not in own
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
        props = event["ResourceProperties"]
        ids = route_table_ids(
            boto3.client("ec2"), props["SubnetIds"], event["StackId"], props["Service"]
        )
        respond(event, context, "SUCCESS", {"RouteTableIds": ids})
    except Exception as exc:  # CloudFormation must always get an answer
        respond(event, context, "FAILED", {}, f"{type(exc).__name__}: {exc}")
