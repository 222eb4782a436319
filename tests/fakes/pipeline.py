"""The deployed import workflow, stood up locally: moto (S3 -> SQS, DynamoDB, Step Functions running
the real ASL, its HealthImaging tasks routed to the fake), our handlers in-process, and the
HealthImaging fake. Used by tests and `make demo`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import types
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
from boto3.dynamodb.conditions import Key

import lambdas
from generator.contracts import contracts
from generator.template.inline import inline_source
from lambdas import clients
from tests.fakes.healthimaging import DATASTORE_ID, FakeHealthImaging
from tests.fakes.lambda_runtime import in_process_lambdas
from tests.fakes.sfn_sdk import SigV4Router, pascal_case_error_names, sdk_model_dir
from tests.support.aws import MotoServer

ACCOUNT = "123456789012"
ASL_PATH = Path(lambdas.__file__).parent / "statemachine" / "import_workflow.asl.json"
# The functions the state machine invokes: placeholder -> (function name, module under lambdas/).
FUNCTIONS = {
    "RecordResultsFunctionArn": ("record-results", "record_results"),
    "RecordFailureFunctionArn": ("record-failure", "record_failure"),
}
RETRY_TIMES = ("IntervalSeconds", "MaxDelaySeconds")
EXECUTING = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
NOT_EXECUTING = {"stepfunctions": {"execute_state_machine": False}, "lambda": {"use_docker": True}}


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"


def inline_handler(module: str) -> Callable[[dict, object], object]:
    """The handler of a function's inline code, as the template carries it, loaded as Lambda
    loads index.py."""
    index = types.ModuleType("index")
    exec(compile(inline_source(module), f"index.py ({module})", "exec"), index.__dict__)
    return index.handler


def state_machine_definition(
    values: dict[str, str], retry_cap: int | None = None, max_polls: int | None = None
) -> str:
    """The ASL file with its placeholders filled, as the template's DefinitionSubstitutions do.

    `retry_cap` caps every retry interval and delay (seconds), so that tests wait out hours of
    throttling in seconds against a fake whose clock runs as much faster; `max_polls` replaces
    the bound of status checks (PollAgain's counter rule), so that a test reaches it.
    """
    text = ASL_PATH.read_text()
    for placeholder, (name, _) in FUNCTIONS.items():
        text = text.replace("${" + placeholder + "}", function_arn(name))
    for placeholder, value in values.items():
        text = text.replace("${" + placeholder + "}", value)
    definition = json.loads(text)
    if retry_cap:
        for state in definition["States"].values():
            for retry in state.get("Retry", []):
                for name in RETRY_TIMES:
                    if name in retry:
                        retry[name] = min(retry[name], retry_cap)
    if max_polls is not None:
        choices = definition["States"]["PollAgain"]["Choices"]
        (bound,) = [c for c in choices if c["Variable"] == "$.poll.count"]
        bound["NumericGreaterThanEquals"] = max_polls
    return json.dumps(definition)


@dataclass
class Pipeline:
    """Names and clients of one local pipeline."""

    moto: MotoServer
    fake: FakeHealthImaging
    bucket: str
    table_name: str
    queue_url: str
    state_machine_arn: str
    invocations: list[tuple[str, dict]]
    handlers: dict[str, Callable[[dict, object], object]]

    def deliver(self, wait_seconds: int = 0) -> int:
        """Receive the queued S3 events and hand them to the trigger as Lambda's SQS poller does.

        Messages the trigger reports as failed stay on the queue; returns the messages handled.
        """
        sqs = self.moto.client("sqs")
        messages = sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        ).get("Messages", [])
        if not messages:
            return 0
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "eventSource": "aws:sqs",
                }
                for m in messages
            ]
        }
        answer = self.handlers["trigger"](event, None)
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def sweep(self) -> list[str]:
        return self.handlers["sweeper"]({}, None)["closedBatchIds"]

    def executions(self) -> list[dict]:
        sfn = self.moto.client("stepfunctions")
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.state_machine_arn
        )
        return [e for page in pages for e in page["executions"]]

    def wait_for_executions(self, count: int, timeout: float = 60) -> list[dict]:
        """Block until `count` executions exist and none is running; return them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            executions = self.executions()
            if len(executions) >= count and all(e["status"] != "RUNNING" for e in executions):
                return executions
            time.sleep(0.2)
        raise TimeoutError(f"expected {count} finished executions, have {self.executions()}")

    def history(self, execution_arn: str) -> list[dict]:
        sfn = self.moto.client("stepfunctions")
        return sfn.get_execution_history(executionArn=execution_arn)["events"]

    def query(self, index: str, attribute: str, value: str) -> list[dict]:
        """Every item of the job table whose `attribute` (the hash key of `index`) is `value`."""
        table = boto3.resource("dynamodb", endpoint_url=self.moto.endpoint).Table(self.table_name)
        kwargs = {"IndexName": index, "KeyConditionExpression": Key(attribute).eq(value)}
        page = table.query(**kwargs)
        items = page["Items"]
        while "LastEvaluatedKey" in page:
            page = table.query(ExclusiveStartKey=page["LastEvaluatedKey"], **kwargs)
            items += page["Items"]
        return items

    def records_for_sop(self, sop_uid: str) -> list[dict]:
        return self.query("sopInstanceUID-index", "sopInstanceUID", sop_uid)

    def records_for_study(self, study_uid: str) -> list[dict]:
        return self.query("studyInstanceUID-index", "studyInstanceUID", study_uid)

    def job_items(self) -> list[dict]:
        table = self.moto.client("dynamodb")
        pages = table.get_paginator("scan").paginate(
            TableName=self.table_name,
            FilterExpression="recordId = :job",
            ExpressionAttributeValues={":job": {"S": "JOB"}},
        )
        return [item for page in pages for item in page["Items"]]


def create_job_table(dynamodb, name: str) -> None:
    """DicomImportJobTable as config/contracts.json defines it (as the template builds it)."""
    table = contracts().job_table
    indexes = table["indexes"].values()
    strings = [table["partitionKey"], table["sortKey"], *(index["hash"] for index in indexes)]

    def key_schema(hash_key: str, range_key: str | None) -> list[dict]:
        keys = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        return keys + ([{"AttributeName": range_key, "KeyType": "RANGE"}] if range_key else [])

    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in strings],
        KeySchema=key_schema(table["partitionKey"], table["sortKey"]),
        GlobalSecondaryIndexes=[
            {
                "IndexName": index["name"],
                "Projection": {"ProjectionType": "ALL"},
                "KeySchema": key_schema(index["hash"], index.get("range")),
            }
            for index in indexes
        ],
    )
    ttl = {"AttributeName": table["expiresAttribute"]["name"], "Enabled": True}
    dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)


def set_moto_config(moto: MotoServer, config: dict) -> None:
    request = urllib.request.Request(
        f"{moto.endpoint}/moto-api/config", data=json.dumps(config).encode(), method="POST"
    )
    urllib.request.urlopen(request, timeout=10).close()


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables (the Lambda environment, endpoints) and restore them after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    _fresh_clients()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _fresh_clients()


def _fresh_clients() -> None:
    """Clients that see the current environment (endpoints, AWS_DATA_PATH)."""
    boto3.setup_default_session()
    clients.client.cache_clear()
    clients.table.cache_clear()


@contextmanager
def local_pipeline(
    moto: MotoServer,
    name: str,
    poll_seconds: int = 1,
    clock_scale: float = 1.0,
    retry_cap: int | None = 1,
    max_polls: int | None = None,
) -> Iterator[Pipeline]:
    """Stand up the workflow under names starting with `name` (lowercase, unique per test).

    The fake's clock runs `clock_scale` times faster than real time; `retry_cap` caps the ASL's
    retry waits and `max_polls` its bound of status checks (see state_machine_definition).
    """
    bucket, results, table_name = f"{name}-dicom", f"{name}-results", f"{name}-jobs"
    s3, sqs, sfn = moto.client("s3"), moto.client("sqs"), moto.client("stepfunctions")
    set_moto_config(moto, EXECUTING)
    models = Path(tempfile.mkdtemp(prefix="sfn-sdk-"))
    try:
        with (
            FakeHealthImaging(moto.endpoint, clock_scale=clock_scale) as fake,
            SigV4Router(
                {"medical-imaging": f"127.0.0.1:{fake.port}"}, f"127.0.0.1:{moto.port}"
            ) as router,
            pascal_case_error_names(),
        ):
            for b in (bucket, results):
                s3.create_bucket(Bucket=b)
            queue_url = sqs.create_queue(QueueName=f"{name}-batches")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            s3.put_bucket_notification_configuration(
                Bucket=bucket,
                NotificationConfiguration={
                    "QueueConfigurations": [
                        {
                            "QueueArn": queue_arn,
                            "Events": ["s3:ObjectCreated:*"],
                            "Filter": {
                                "Key": {
                                    "FilterRules": [
                                        {"Name": "prefix", "Value": "batches/"},
                                        {"Name": "suffix", "Value": ".json"},
                                    ]
                                }
                            },
                        }
                    ]
                },
            )
            create_job_table(moto.client("dynamodb"), table_name)
            substitutions = {
                "DatastoreId": DATASTORE_ID,
                "DataAccessRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{name}-import",
                "OutputS3Uri": f"s3://{results}/",
                "JobTableName": table_name,
            }
            arn = sfn.create_state_machine(
                name=f"{name}-import",
                definition=state_machine_definition(substitutions, retry_cap, max_polls),
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}-workflow",
            )["stateMachineArn"]
            env = {
                "MOTO_PORT": str(router.port),
                "AWS_DATA_PATH": str(sdk_model_dir(models)),
                "AWS_ENDPOINT_URL": moto.endpoint,
                "STATE_MACHINE_ARN": arn,
                "JOB_TABLE_NAME": table_name,
                "DICOM_BUCKET": bucket,
                "STORE_PREFIX": "",
                "STATUS_POLL_SECONDS": str(poll_seconds),
            }
            with environment(env):
                handlers = {m: inline_handler(m) for m in ("trigger", "sweeper")}
                invoked = {name: inline_handler(module) for name, module in FUNCTIONS.values()}
                with in_process_lambdas(invoked) as invocations:
                    yield Pipeline(
                        moto, fake, bucket, table_name, queue_url, arn, invocations, handlers
                    )
    finally:
        set_moto_config(moto, NOT_EXECUTING)
        shutil.rmtree(models, ignore_errors=True)
