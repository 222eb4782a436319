"""Operators' commands, with boto3's standard credential chain (or --endpoint-url for `make demo`).

`storescp-redrive` starts a new import attempt of a batch that failed or conflicted;
`storescp-lookup` answers "did instance X / study Y arrive, and in which image set?", and "where
does storage-commitment transaction T stand?".
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Sequence

import boto3
from boto3.dynamodb.conditions import Key

from lambdas.attempts import client_token, execution_name
from lambdas.executions import DEFAULT_POLL_SECONDS, execution_input
from lambdas.job_table import (
    COMMITMENT_RECORD,
    INSTANCE_RECORD,
    SOP_INSTANCE_INDEX,
    STUDY_INSTANCE_INDEX,
    latest,
)
from lambdas.layout import BATCHES_PREFIX
from lambdas.manifest import read_manifest


class OperatorError(Exception):
    """What the operator asked for cannot be done; the message says why and what to do."""


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of execution `name` of a state machine."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"


def attempts(sfn, state_machine_arn: str, batch_id: str) -> list[dict]:
    """The executions of a batch's attempts, first attempt first."""
    found: list[dict] = []
    while True:
        name = execution_name(batch_id, len(found) + 1)
        try:
            found.append(
                sfn.describe_execution(executionArn=execution_arn(state_machine_arn, name))
            )
        except sfn.exceptions.ExecutionDoesNotExist:
            return found


def redrive(
    sfn, s3, state_machine_arn: str, batch_id: str, bucket: str | None = None, force: bool = False
) -> dict:
    """Start the next import attempt of a batch; returns {"attempt", "executionArn"}."""
    previous = attempts(sfn, state_machine_arn, batch_id)
    if previous:
        last = previous[-1]
        if last["status"] == "RUNNING":
            raise OperatorError(
                f"attempt {len(previous)} of batch {batch_id} is still running; wait for it to end"
            )
        if last["status"] == "SUCCEEDED" and not force:
            raise OperatorError(
                f"batch {batch_id} was imported (attempt {len(previous)}); "
                "pass --force to import it again"
            )
        state = json.loads(previous[0]["input"])
    elif bucket:
        key = f"{BATCHES_PREFIX}{batch_id}.json"
        state = execution_input(bucket, key, read_manifest(s3, bucket, key), DEFAULT_POLL_SECONDS)
    else:
        raise OperatorError(
            f"batch {batch_id} has no execution; pass --bucket (the DICOM bucket) "
            "so that its manifest can be read"
        )
    attempt = len(previous) + 1
    state.update(attempt=attempt, clientToken=client_token(batch_id, attempt))
    name = execution_name(batch_id, attempt)
    started = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(state, sort_keys=True)
    )
    return {"attempt": attempt, "executionArn": started["executionArn"]}


def lookup(table, sop: str | None = None, study: str | None = None) -> list[dict]:
    """The latest record of each matching instance (by SOP or Study Instance UID)."""
    if sop:
        query = {
            "IndexName": SOP_INSTANCE_INDEX,
            "KeyConditionExpression": Key("sopInstanceUID").eq(sop),
        }
    else:
        query = {
            "IndexName": STUDY_INSTANCE_INDEX,
            "KeyConditionExpression": Key("studyInstanceUID").eq(study)
            & Key("recordId").begins_with(INSTANCE_RECORD),
        }
    page = table.query(**query)
    items = page["Items"]
    while "LastEvaluatedKey" in page:
        page = table.query(**query, ExclusiveStartKey=page["LastEvaluatedKey"])
        items += page["Items"]
    return latest(items)


def transactions(table, transaction_uid: str) -> list[dict]:
    """A storage-commitment transaction's records (the request, and any duplicate of its UID),
    as operators read them: state, calling AE, counts, event type, attempts, last error."""
    items = table.query(
        KeyConditionExpression=Key("jobId").eq(COMMITMENT_RECORD + transaction_uid)
    )["Items"]
    return [
        {
            "transactionUID": transaction_uid,
            "record": item["recordId"],
            "state": item.get("state"),
            "callingAETitle": item.get("callingAETitle"),
            "instances": len(_unpack(item.get("references"), [])),
            "failed": len(_unpack(item.get("failures"), {})),
            "eventType": item.get("eventType") or None,
            "attempts": item.get("attempts", 0),
            "lastError": item.get("lastError") or None,
        }
        for item in items
    ]


def _unpack(value, empty):
    """A gzip'd JSON attribute of a transaction item (scp/commitment/job_table.py)."""
    return json.loads(gzip.decompress(bytes(value))) if value is not None else empty


def _session(args: argparse.Namespace):
    def client(service: str):
        return boto3.client(service, endpoint_url=args.endpoint_url, region_name=args.region)

    def table(name: str):
        return boto3.resource(
            "dynamodb", endpoint_url=args.endpoint_url, region_name=args.region
        ).Table(name)

    return client, table


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", help="AWS endpoint (for make demo: the moto server)")
    parser.add_argument("--region", help="AWS Region (default: the standard chain's)")


def redrive_main(argv: Sequence[str] | None = None) -> int:
    """storescp-redrive: start a new import attempt of a failed or conflicting batch."""
    parser = argparse.ArgumentParser(prog="storescp-redrive", description=redrive_main.__doc__)
    parser.add_argument("batch_id", help="the batch to import again (its execution's name)")
    parser.add_argument(
        "--state-machine-arn", required=True, help="the stack's StateMachineArn output"
    )
    parser.add_argument(
        "--bucket",
        help="the stack's DicomBucketName output, for a batch that never got an execution",
    )
    parser.add_argument("--force", action="store_true", help="import a batch that succeeded")
    _common(parser)
    args = parser.parse_args(argv)
    client, _ = _session(args)
    try:
        started = redrive(
            client("stepfunctions"),
            client("s3"),
            args.state_machine_arn,
            args.batch_id,
            args.bucket,
            args.force,
        )
    except OperatorError as exc:
        print(f"storescp-redrive: {exc}", file=sys.stderr)
        return 1
    print(
        f"batch {args.batch_id}: attempt {started['attempt']} started ({started['executionArn']})"
    )
    return 0


def _print_transaction(records: list[dict], as_json: bool) -> int:
    if not records:
        print("no such storage-commitment transaction (see the SCP log: commitment-requested)")
        return 1
    for r in records:
        if as_json:
            print(json.dumps(r, default=str, sort_keys=True))
            continue
        print(
            f"{r['transactionUID']}  {r['state']:<13}  {r['record']}  from {r['callingAETitle']}  "
            f"{r['instances']} instances, {r['failed']} failed  event type {r['eventType'] or '-'}"
            f"  attempts {r['attempts']}  {r['lastError'] or ''}".rstrip()
        )
    return 0


def lookup_main(argv: Sequence[str] | None = None) -> int:
    """storescp-lookup: did an instance (or a study) arrive, and in which image set?"""
    parser = argparse.ArgumentParser(prog="storescp-lookup", description=lookup_main.__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--sop", help="SOP Instance UID")
    which.add_argument("--study", help="Study Instance UID")
    which.add_argument("--transaction", help="Storage Commitment Transaction UID")
    parser.add_argument("--table", required=True, help="the stack's JobTableName output")
    parser.add_argument("--json", action="store_true", help="one JSON object a line")
    _common(parser)
    args = parser.parse_args(argv)
    _, table = _session(args)
    if args.transaction:
        return _print_transaction(transactions(table(args.table), args.transaction), args.json)
    found = lookup(table(args.table), args.sop, args.study)
    if not found:
        print(
            "no record: not received, or its batch is not imported yet (see the SCP log and "
            "the state machine's executions)"
        )
        return 1
    for item in found:
        if args.json:
            print(json.dumps(item, default=str, sort_keys=True))
            continue
        where = item.get("imageSetId", "-")
        why = item.get("reason") or "; ".join(item.get("warnings", []))
        print(
            f"{item['sopInstanceUID']}  {item['importStatus']:<8}  image set {where}  "
            f"batch {item['batchId']} attempt {item['attempt']}  {why}".rstrip()
        )
    return 0
