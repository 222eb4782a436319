"""Names of a batch's import attempts: attempt 1 is the first, a redrive makes the next one.

An execution is named after its batch (attempt 1) or `{batchId}-attempt-{n}`, so a duplicate S3
event finds its execution already there. The HealthImaging clientToken is the batch id for attempt
1 and a new token for every later attempt, so that a redrive starts a new import job.
"""

from __future__ import annotations

import hashlib

TOKEN_LENGTH = 64  # StartDICOMImportJob clientToken: 1-64 of [A-Za-z0-9._-]


def execution_name(batch_id: str, attempt: int) -> str:
    """The execution of an attempt (at most 64 + 17 characters: Step Functions allows 80)."""
    return batch_id if attempt == 1 else f"{batch_id}-attempt-{attempt}"


def client_token(batch_id: str, attempt: int) -> str:
    """The idempotency token of an attempt's StartDICOMImportJob: unique per batch and attempt."""
    if attempt == 1:
        return batch_id
    suffix = f".{attempt}"
    if len(batch_id) + len(suffix) > TOKEN_LENGTH:
        batch_id = hashlib.sha256(batch_id.encode()).hexdigest()[: TOKEN_LENGTH - len(suffix)]
    return batch_id + suffix
