"""lambdas.trigger against moto (S3, Step Functions): one execution per batch, partial failures."""

from __future__ import annotations

import json
import uuid

import pytest

from lambdas import clients, trigger
from lambdas.manifest import manifest_locations
from tests.fakes.pipeline import ACCOUNT, environment, state_machine_definition
from tests.lambdas.batches import write_batch


@pytest.fixture
def aws(moto):
    """A bucket and a state machine (not executed: the default moto backend) for the trigger."""
    name = f"tr-{uuid.uuid4().hex[:8]}"
    moto.client("s3").create_bucket(Bucket=name)
    arn = moto.client("stepfunctions").create_state_machine(
        name=name,
        definition=state_machine_definition({}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}",
    )["stateMachineArn"]
    env = {"AWS_ENDPOINT_URL": moto.endpoint, "STATE_MACHINE_ARN": arn, "STATUS_POLL_SECONDS": "7"}
    with environment(env):
        yield name, arn


def sqs_event(*bodies: dict) -> dict:
    return {
        "Records": [
            {
                "messageId": f"m{n}",
                "receiptHandle": f"r{n}",
                "body": json.dumps(body),
                "eventSource": "aws:sqs",
            }
            for n, body in enumerate(bodies)
        ]
    }


def s3_event(bucket: str, key: str, name: str = "ObjectCreated:Put") -> dict:
    return {
        "Records": [{"eventName": name, "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]
    }


def executions(moto, arn):
    return moto.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]


def test_starts_one_execution_named_after_the_batch(moto, aws):
    bucket, arn = aws
    manifest = write_batch(clients.client("s3"), bucket, 2)
    key = f"batches/{manifest['batchId']}.json"

    result = trigger.handler(sqs_event(s3_event(bucket, key)))

    assert result == {"batchItemFailures": []}
    (execution,) = executions(moto, arn)
    assert execution["name"] == manifest["batchId"]
    described = moto.client("stepfunctions").describe_execution(
        executionArn=execution["executionArn"]
    )
    assert json.loads(described["input"]) == {
        "batchId": manifest["batchId"],
        "attempt": 1,
        "clientToken": manifest["batchId"],
        "bucket": bucket,
        "manifestKey": key,
        "inputS3Uri": f"s3://{bucket}/incoming/{manifest['batchId']}/",
        "studyInstanceUID": manifest["studyInstanceUID"],
        "instanceCount": 2,
        "pollSeconds": 7,
    }


def test_duplicate_events_are_success_and_start_nothing_more(moto, aws):
    bucket, arn = aws
    manifest = write_batch(clients.client("s3"), bucket)
    event = s3_event(bucket, f"batches/{manifest['batchId']}.json")

    first = trigger.handler(sqs_event(event, event))
    second = trigger.handler(sqs_event(event))

    assert first == second == {"batchItemFailures": []}
    assert len(executions(moto, arn)) == 1


def test_bad_messages_fail_alone(moto, aws):
    bucket, arn = aws
    s3 = clients.client("s3")
    good = write_batch(s3, bucket)
    broken = write_batch(s3, bucket)
    del broken["instances"][0]["sopInstanceUID"]
    s3.put_object(Bucket=bucket, Key=f"batches/{broken['batchId']}.json", Body=json.dumps(broken))
    misplaced = write_batch(s3, bucket)
    s3.put_object(Bucket=bucket, Key="batches/other-name.json", Body=json.dumps(misplaced))

    result = trigger.handler(
        sqs_event(
            s3_event(bucket, f"batches/{broken['batchId']}.json"),
            {"Event": "s3:TestEvent"},
            s3_event(bucket, f"batches/{good['batchId']}.json"),
            s3_event(bucket, "batches/missing.json"),
            s3_event(bucket, "batches/other-name.json"),
        )
    )

    assert result == {
        "batchItemFailures": [
            {"itemIdentifier": "m0"},
            {"itemIdentifier": "m3"},
            {"itemIdentifier": "m4"},
        ]
    }
    assert [e["name"] for e in executions(moto, arn)] == [good["batchId"]]


def test_manifest_locations_decode_keys_and_skip_other_events():
    body = json.dumps(
        {
            "Records": [
                s3_event("b", "store+prefix/batches/x%3Ay.json")["Records"][0],
                s3_event("b", "batches/z.json", "ObjectRemoved:Delete")["Records"][0],
            ]
        }
    )
    assert manifest_locations(body) == [("b", "store prefix/batches/x:y.json")]
    assert manifest_locations(json.dumps({"Event": "s3:TestEvent"})) == []


def test_a_poll_interval_of_zero_is_a_config_error(moto, aws, monkeypatch):
    """The status checks' interval doubles from STATUS_POLL_SECONDS: 0 would never grow."""
    monkeypatch.setenv("STATUS_POLL_SECONDS", "0")

    with pytest.raises(Exception, match="STATUS_POLL_SECONDS='0': set a whole number of at least"):
        trigger.handler(sqs_event())
