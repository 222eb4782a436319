"""Trigger core: one Step Functions execution per batch manifest announced on SQS."""

from __future__ import annotations

import json

from lambdas.attempts import client_token
from lambdas.errors import ManifestError
from lambdas.layout import BATCHES_PREFIX
from lambdas.log import log
from lambdas.manifest import manifest_locations, read_manifest

DEFAULT_POLL_SECONDS = 30


def execution_input(
    bucket: str, key: str, manifest: dict, poll_seconds: int, attempt: int = 1
) -> dict:
    """The state machine input for a batch: where things are, never PHI, same for a duplicate."""
    batch_id = manifest["batchId"]
    return {
        "batchId": batch_id,
        "attempt": attempt,
        "clientToken": client_token(batch_id, attempt),
        "bucket": bucket,
        "manifestKey": key,
        "inputS3Uri": f"s3://{bucket}/{manifest['inputPrefix']}",
        "studyInstanceUID": manifest["studyInstanceUID"],
        "instanceCount": manifest["instanceCount"],
        "pollSeconds": poll_seconds,
    }


def start_batch_execution(
    s3, sfn, state_machine_arn: str, bucket: str, key: str, poll_seconds: int
) -> None:
    """Start the execution named after the batch; an existing one means a duplicate event: fine."""
    manifest = read_manifest(s3, bucket, key)
    batch_id = manifest["batchId"]
    if not key.endswith(f"{BATCHES_PREFIX}{batch_id}.json"):
        raise ManifestError(
            f"s3://{bucket}/{key} holds batch {batch_id}; "
            f"its key must be {BATCHES_PREFIX}{batch_id}.json"
        )
    payload = json.dumps(execution_input(bucket, key, manifest, poll_seconds), sort_keys=True)
    try:
        sfn.start_execution(stateMachineArn=state_machine_arn, name=batch_id, input=payload)
    except sfn.exceptions.ExecutionAlreadyExists:
        log("execution-exists", batchId=batch_id)
        return
    log("execution-started", batchId=batch_id, instanceCount=manifest["instanceCount"])


def start_executions(event: dict, s3, sfn, state_machine_arn: str, poll_seconds: int) -> dict:
    """Handle an SQS batch; report the messages that failed so that only they are retried."""
    failures = []
    for record in event.get("Records", []):
        try:
            for bucket, key in manifest_locations(record["body"]):
                start_batch_execution(s3, sfn, state_machine_arn, bucket, key, poll_seconds)
        except Exception as exc:  # one bad message must not fail the others
            log("message-failed", "ERROR", messageId=record.get("messageId"), error=str(exc))
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
