"""Lambda handler (state RecordResults): record the results of a finished import job."""

from __future__ import annotations

import os

from lambdas.clients import client, table
from lambdas.results import record_results


def handler(event: dict, context: object = None) -> dict:
    """Event: the execution state with $.status (GetDICOMImportJob). Returns status and counts."""
    return record_results(event, client("s3"), table(os.environ["JOB_TABLE_NAME"]))
