"""Operators' commands, with boto3's standard credential chain (or --endpoint-url for `make demo`).

`storescp-redrive` starts a new import attempt of a batch that failed or conflicted;
`storescp-lookup` answers "did instance X / study Y arrive, and in which image set?", lists a
study's batches whose import job is still running, and answers "where does storage-commitment
transaction T stand?". Both take `--stack NAME` to read the state machine, the table and the
bucket from the stack's outputs, and answer every error with one sentence that says what to do.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections.abc import Callable, Sequence

import boto3
from boto3.dynamodb.conditions import Key
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from lambdas.attempts import client_token, execution_name
from lambdas.executions import DEFAULT_POLL_SECONDS, execution_input
from lambdas.job_table import (
    COMMITMENT_RECORD,
    INSTANCE_RECORD,
    JOB_RECORD,
    SOP_INSTANCE_INDEX,
    STORED,
    STUDY_INSTANCE_INDEX,
    SUBMITTED,
    latest,
)
from lambdas.layout import BATCHES_PREFIX
from lambdas.manifest import BATCH_ID, read_manifest


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
    if not BATCH_ID.fullmatch(batch_id):
        raise OperatorError(
            f"{batch_id!r} is not a batch id (1 to 64 letters, digits, '.', '_' or '-')"
        )
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
        try:
            manifest = read_manifest(s3, bucket, key)
        except ClientError as exc:
            if _code(exc) not in ("NoSuchKey", "404"):
                raise
            raise OperatorError(
                f"batch {batch_id} has no execution and no manifest s3://{bucket}/{key}: check "
                'the batch id (the batchId of the SCP\'s "batch closed" log line)'
            ) from None
        state = execution_input(bucket, key, manifest, DEFAULT_POLL_SECONDS)
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
    return latest(_query(table, query))


def in_progress(table, study: str) -> list[dict]:
    """The job items of a study's batches whose import job has started and not yet been
    recorded (jobStatus SUBMITTED), oldest first."""
    query = {
        "IndexName": STUDY_INSTANCE_INDEX,
        "KeyConditionExpression": Key("studyInstanceUID").eq(study)
        & Key("recordId").eq(JOB_RECORD),
    }
    running = [i for i in _query(table, query) if i.get("jobStatus") == SUBMITTED]
    return sorted(running, key=lambda i: (i.get("submittedAt", ""), i["batchId"]))


def _query(table, query: dict) -> list[dict]:
    """Every item a query finds, page after page."""
    page = table.query(**query)
    items = page["Items"]
    while "LastEvaluatedKey" in page:
        page = table.query(**query, ExclusiveStartKey=page["LastEvaluatedKey"])
        items += page["Items"]
    return items


STACK_OUTPUTS = {  # the template's outputs each option can come from
    "state_machine_arn": "StateMachineArn",
    "table": "JobTableName",
    "bucket": "DicomBucketName",
}


def stack_outputs(cloudformation, stack: str) -> dict[str, str]:
    """OutputKey -> OutputValue of a stack."""
    try:
        (found,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        if _code(exc) == "ValidationError":
            raise OperatorError(
                f"no stack {stack!r} in this Region: check --stack and --region "
                "(or AWS_DEFAULT_REGION)"
            ) from None
        raise
    return {o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def explain(exc: BotoCoreError | ClientError) -> str:
    """An AWS error as one sentence for an operator."""
    if isinstance(exc, NoCredentialsError):
        return (
            "no AWS credentials: set AWS_PROFILE (after `aws sso login` or `aws configure`) or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, NoRegionError):
        return "no AWS Region: pass --region or set AWS_DEFAULT_REGION (the stack's Region)"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach AWS ({exc}); check the network, --region and --endpoint-url"
    if isinstance(exc, ClientError):
        code, message = _code(exc), exc.response.get("Error", {}).get("Message", "")
        operation = exc.operation_name
        if code == "ResourceNotFoundException":
            return f"{message or 'not found'} ({operation}): check --table or --stack and --region"
        if code in ("StateMachineDoesNotExist", "InvalidArn"):
            return f"{message} ({operation}): check --state-machine-arn or --stack and --region"
        if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
            return f"access denied for {operation}: the credentials in use need permission for it"
        if code in ("UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken"):
            return f"the AWS credentials were refused ({code}): renew them or pick another profile"
        return f"{operation} failed: {code}: {message}"
    return str(exc)


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
    parser.add_argument(
        "--stack",
        help="the stack's name: read the options below that are not given from its outputs",
    )
    parser.add_argument("--endpoint-url", help="AWS endpoint (for make demo: the moto server)")
    parser.add_argument("--region", help="AWS Region (default: the standard chain's)")


def _from_stack(args: argparse.Namespace, client: Callable, needed: str, *optional: str) -> None:
    """Fill args' options from --stack's outputs; OperatorError when a needed one is missing."""
    option = "--" + needed.replace("_", "-")
    if args.stack and not all(getattr(args, n) for n in (needed, *optional)):
        outputs = stack_outputs(client("cloudformation"), args.stack)
        for name in (needed, *optional):
            if not getattr(args, name):
                setattr(args, name, outputs.get(STACK_OUTPUTS[name]))
    if not getattr(args, needed):
        raise OperatorError(
            f"give {option}, or --stack with the stack's name to read it from its "
            f"{STACK_OUTPUTS[needed]} output"
        )


def _run(prog: str, action: Callable[[], int]) -> int:
    """Run an operator command: any failure is one line on stderr and exit status 1."""
    try:
        return action()
    except OperatorError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
    except (BotoCoreError, ClientError) as exc:
        print(f"{prog}: {explain(exc)}", file=sys.stderr)
    return 1


def redrive_main(argv: Sequence[str] | None = None) -> int:
    """storescp-redrive: start a new import attempt of a failed or conflicting batch."""
    parser = argparse.ArgumentParser(prog="storescp-redrive", description=redrive_main.__doc__)
    parser.add_argument("batch_id", help="the batch to import again (its execution's name)")
    parser.add_argument(
        "--state-machine-arn", help="the stack's StateMachineArn output (or give --stack)"
    )
    parser.add_argument(
        "--bucket",
        help="the stack's DicomBucketName output, for a batch that never got an execution "
        "(read from --stack when given)",
    )
    parser.add_argument("--force", action="store_true", help="import a batch that succeeded")
    _common(parser)
    args = parser.parse_args(argv)
    client, _ = _session(args)

    def action() -> int:
        _from_stack(args, client, "state_machine_arn", "bucket")
        started = redrive(
            client("stepfunctions"),
            client("s3"),
            args.state_machine_arn,
            args.batch_id,
            args.bucket,
            args.force,
        )
        print(
            f"batch {args.batch_id}: attempt {started['attempt']} started "
            f"({started['executionArn']})"
        )
        return 0

    return _run(parser.prog, action)


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
    parser.add_argument("--table", help="the stack's JobTableName output (or give --stack)")
    parser.add_argument("--json", action="store_true", help="one JSON object a line")
    _common(parser)
    args = parser.parse_args(argv)
    client, table = _session(args)

    def action() -> int:
        _from_stack(args, client, "table")
        if args.transaction:
            return _print_transaction(transactions(table(args.table), args.transaction), args.json)
        found = lookup(table(args.table), args.sop, args.study)
        running = in_progress(table(args.table), args.study) if args.study else []
        for job in running:
            if args.json:
                print(json.dumps(job, default=str, sort_keys=True))
                continue
            print(
                f"batch {job['batchId']} attempt {job['attempt']}  IMPORTING  "
                f"job {job['jobId']} submitted {job.get('submittedAt', '-')}  "
                f"{job.get('instanceCount', '?')} instances"
            )
        if not found and not running:
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
            how = (
                f"via {item['arrivedBy']}"
                if "arrivedBy" in item
                else f"batch {item['batchId']}, not imported yet"
                if item["importStatus"] == STORED
                else f"batch {item['batchId']} attempt {item['attempt']}"
            )
            print(
                f"{item['sopInstanceUID']}  {item['importStatus']:<8}  image set {where}  "
                f"{how}  {why}".rstrip()
            )
        return 0

    return _run(parser.prog, action)
