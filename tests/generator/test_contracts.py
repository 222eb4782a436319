"""config/contracts.json is what scp/, lambdas/ and the template agree on: each side's constants
equal the file, and the template and the generated pages take theirs from it."""

from __future__ import annotations

import json

import pytest

from generator.contracts import CONTRACTS_PATH, contracts
from lambdas import job_table, layout
from scp import contracts as scp_contracts
from scp.settings import Settings

CONTRACT = json.loads(CONTRACTS_PATH.read_text())
LAYOUT = CONTRACT["storageLayout"]
TABLE = CONTRACT["jobTable"]
ASL = "lambdas/statemachine/import_workflow.asl.json"


@pytest.mark.parametrize("side", [scp_contracts, layout], ids=["scp", "lambdas"])
def test_storage_layout(side):
    assert (
        LAYOUT["incoming"],
        LAYOUT["open"],
        LAYOUT["batches"],
        LAYOUT["direct"],
    ) == (side.INCOMING_PREFIX, side.OPEN_PREFIX, side.BATCHES_PREFIX, side.DIRECT_PREFIX)


@pytest.mark.parametrize("side", [scp_contracts, job_table], ids=["scp", "lambdas"])
def test_job_table(side):
    record_prefix = getattr(side, "INSTANCE_RECORD_PREFIX", None) or side.INSTANCE_RECORD
    assert (side.JOB_RECORD, record_prefix) == (TABLE["jobRecord"], TABLE["instanceRecordPrefix"])
    assert TABLE["instanceStates"] == [side.IMPORTED, side.CONFLICT, side.FAILED]
    assert TABLE["jobStates"]["submitted"] == side.SUBMITTED
    assert TABLE["jobStates"]["final"] == [side.COMPLETED, side.FAILED]
    assert TABLE["indexes"]["bySopInstanceUID"]["name"] == side.SOP_INSTANCE_INDEX
    assert TABLE["indexes"]["byStudyInstanceUID"]["name"] == side.STUDY_INSTANCE_INDEX
    assert list(side.LATEST_WINS) == TABLE["latestWins"]


def test_the_state_machine_writes_the_contract_s_submitted_job_item():
    """RecordSubmitted (a DynamoDB integration in the ASL, which cannot import job_table) writes
    the job item with the contract's key names, job record id and submitted state."""
    asl = json.loads((CONTRACTS_PATH.parents[1] / ASL).read_text())
    item = asl["States"]["RecordSubmitted"]["Parameters"]["Item"]
    assert item["recordId"] == {"S": TABLE["jobRecord"]}
    assert item["jobStatus"] == {"S": TABLE["jobStates"]["submitted"]}
    assert {TABLE["partitionKey"], TABLE["sortKey"]} <= set(item)
    assert TABLE["indexes"]["byStudyInstanceUID"]["hash"] in item


def test_direct_records():
    direct = TABLE["direct"]
    assert (
        direct["jobIdPrefix"],
        direct["arrivedBy"],
    ) == (scp_contracts.DIRECT_JOB_PREFIX, scp_contracts.DIRECT_ARRIVAL)
    assert direct["arrivedBy"] == job_table.DIRECT_ARRIVAL


def test_commitment_records():
    assert TABLE["commitmentRecordPrefix"] == scp_contracts.COMMITMENT_RECORD_PREFIX
    assert TABLE["commitmentRecordPrefix"] == job_table.COMMITMENT_RECORD
    states = [scp_contracts.PENDING, scp_contracts.REPORTED, scp_contracts.UNDELIVERABLE]
    assert TABLE["commitmentStates"] == states
    index = TABLE["indexes"]["pendingCommitments"]
    assert index["name"] == scp_contracts.PENDING_COMMITMENT_INDEX
    assert index["hash"] == "pendingCommitment"


def test_stored_records():
    stored = TABLE["stored"]
    assert (stored["jobIdPrefix"], stored["importStatus"], stored["attempt"]) == (
        scp_contracts.STORED_JOB_PREFIX,
        scp_contracts.STORED,
        scp_contracts.STORED_ATTEMPT,
    )
    assert stored["importStatus"] == job_table.STORED
    assert stored["importStatus"] not in TABLE["instanceStates"]  # never an import's result
    assert TABLE["expiresAttribute"]["name"] == scp_contracts.EXPIRES_AT


def test_latest_attempt_wins():
    items = [
        {"sopInstanceUID": "1.2", "attempt": 1, "recordedAt": "2026-01-01T00:00:09Z", "s": "a"},
        {"sopInstanceUID": "1.2", "attempt": 2, "recordedAt": "2026-01-01T00:00:01Z", "s": "b"},
        {"sopInstanceUID": "1.2", "attempt": 2, "recordedAt": "2026-01-01T00:00:02Z", "s": "c"},
        {"sopInstanceUID": "1.1", "attempt": 1, "recordedAt": "2026-01-01T00:00:00Z", "s": "d"},
    ]
    assert [i["s"] for i in job_table.latest(items)] == ["d", "c"]


def test_scp_defaults():
    defaults = Settings()
    assert defaults.metrics_namespace == CONTRACT["metrics"]["namespace"]
    assert defaults.s3_multipart_threshold == CONTRACT["s3MultipartThresholdBytes"]
    assert CONTRACT["s3MultipartThresholdBytes"] == scp_contracts.S3_MULTIPART_THRESHOLD


def test_template_follows_the_contract(template_dict):
    resources = template_dict["Resources"]
    table = resources["DicomImportJobTable"]["Properties"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == [
        TABLE["partitionKey"],
        TABLE["sortKey"],
    ]
    indexes = {i["IndexName"]: i["KeySchema"] for i in table["GlobalSecondaryIndexes"]}
    for index in TABLE["indexes"].values():
        keys = [k["AttributeName"] for k in indexes[index["name"]]]
        assert keys == [index["hash"], *([index["range"]] if "range" in index else [])]
    ttl = table["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": TABLE["expiresAttribute"]["name"], "Enabled": True}
    text = json.dumps(template_dict)
    assert f"/{LAYOUT['open']}*" in text
    env = resources["PacsServerTaskDef"]["Properties"]["ContainerDefinitions"][0]["Environment"]
    namespace = next(e["Value"] for e in env if e["Name"] == "METRICS_NAMESPACE")
    assert namespace == {"Fn::Sub": CONTRACT["metrics"]["namespace"] + "/${AWS::StackName}"}


def test_one_notice_everywhere():
    notice = CONTRACT["notMedicalDevice"]
    assert contracts().not_a_medical_device == notice
    root = CONTRACTS_PATH.parents[1]
    for page in ("README.md", "SECURITY.md"):
        assert notice in " ".join((root / page).read_text().replace(">", " ").split()), page


def test_the_metrics_the_scp_emits_are_the_documented_ones():
    from scp.telemetry import Metrics
    from tests.generator.contract import scp_metrics

    assert scp_metrics() == Metrics.UNITS
