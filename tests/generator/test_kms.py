"""The stack's key: created (with rotation and its key policy) only when KmsKeyArn is empty,
and every role's key permission limited to one service (kms:ViaService)."""

from __future__ import annotations

from typing import Any

from tests.generator.cfn_eval import Evaluator

OWN_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CREATED = {"Fn::GetAtt": ["EncryptionKey", "Arn"]}
ROOT = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}


def _via(service: str) -> dict[str, Any]:
    return {
        "StringEquals": {"kms:ViaService": {"Fn::Sub": f"{service}.${{AWS::Region}}.amazonaws.com"}}
    }


def _policy(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    statements = resources["EncryptionKey"]["Properties"]["KeyPolicy"]["Statement"]
    assert len({s["Sid"] for s in statements}) == len(statements)
    return {s["Sid"]: s for s in statements}


def _unconditional(statement: dict[str, Any]) -> dict[str, Any]:
    """The statement of an Fn::If [Condition, statement, AWS::NoValue], or the statement."""
    return statement["Fn::If"][1] if "Fn::If" in statement else statement


def _key_statements(resources: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Role -> its statements that name a KMS action."""
    return {
        name: [
            s
            for p in r["Properties"]["Policies"]
            for s in map(_unconditional, p["PolicyDocument"]["Statement"])
            if any(a.startswith("kms:") for a in s["Action"])
        ]
        for name, r in resources.items()
        if r["Type"] == "AWS::IAM::Role"
    }


def test_empty_kms_key_arn_creates_a_rotated_retained_key(template):
    resources = Evaluator(template, {}).resources()
    key = resources["EncryptionKey"]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert (key["DeletionPolicy"], key["UpdateReplacePolicy"]) == ("Retain", "Retain")
    alias = resources["EncryptionKeyAlias"]["Properties"]
    assert alias == {
        "AliasName": {"Fn::Sub": "alias/storescp/${AWS::StackName}"},
        "TargetKeyId": {"Ref": "EncryptionKey"},
    }


def test_own_key_replaces_the_created_one_everywhere(template):
    own = Evaluator(template, {"KmsKeyArn": OWN_KEY}).resources()
    assert "EncryptionKey" not in own and "EncryptionKeyAlias" not in own
    created = Evaluator(template, {}).resources()
    for role, statements in _key_statements(own).items():
        assert all(s["Resource"] == [OWN_KEY] for s in statements), role
    for role, statements in _key_statements(created).items():
        assert all(s["Resource"] == [CREATED] for s in statements), role


def test_key_policy_administration_has_no_cryptographic_action(template):
    admin = _policy(template["Resources"])["KeyAdministration"]
    assert admin["Principal"] == {"AWS": ROOT}
    crypto = {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncrypt*", "kms:*"}
    assert not crypto & set(admin["Action"])
    # No wildcard that reaches a cryptographic action or a grant (kms:Create* holds CreateGrant).
    assert not {"kms:Create*", "kms:CreateGrant", "kms:Encrypt*", "kms:Decrypt*"} & set(
        admin["Action"]
    )
    assert "kms:PutKeyPolicy" not in admin["Action"]  # covered by kms:Put*, checked below
    assert "kms:Put*" in admin["Action"] and "kms:ScheduleKeyDeletion" in admin["Action"]
    assert "Condition" not in admin


def test_key_policy_account_use_only_through_the_stacks_services(template):
    use = _policy(template["Resources"])["UseThroughStackServices"]
    assert use["Principal"] == {"AWS": ROOT}
    assert use["Action"] == [
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey*",
        "kms:ReEncrypt*",
    ]
    assert set(use["Condition"]) == {"StringEquals"}
    condition = use["Condition"]["StringEquals"]
    assert condition["kms:CallerAccount"] == {"Fn::Sub": "${AWS::AccountId}"}
    services = condition["kms:ViaService"]  # one of them (a list under StringEquals is an OR)
    assert [s["Fn::Sub"].split(".")[0] for s in services] == [
        "s3",
        "dynamodb",
        "sqs",
        "sns",
        "medical-imaging",
    ]


def test_key_policy_grants_only_for_aws_resources_of_dynamodb_and_healthimaging(template):
    grants = _policy(template["Resources"])["GrantsForStackResources"]
    assert grants["Action"] == ["kms:CreateGrant"]
    assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
    services = grants["Condition"]["StringEquals"]["kms:ViaService"]
    assert [s["Fn::Sub"].split(".")[0] for s in services] == ["dynamodb", "medical-imaging"]


def test_key_policy_service_principals(template):
    policy = _policy(template["Resources"])
    logs = policy["CloudWatchLogs"]
    assert logs["Principal"] == {"Service": {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}}
    assert logs["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": {
                "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*"
            }
        }
    }
    alarms = policy["CloudWatchAlarmsPublish"]
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    notifications = policy["S3EventNotifications"]
    assert notifications["Principal"] == {"Service": "s3.amazonaws.com"}
    assert notifications["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert set(policy) == {
        "KeyAdministration",
        "UseThroughStackServices",
        "GrantsForStackResources",
        "CloudWatchLogs",
        "CloudWatchAlarmsPublish",
        "S3EventNotifications",
        "HealthImagingDataStore",
    }
    principals = [s["Principal"] for s in policy.values()]
    assert "*" not in principals and {"AWS": "*"} not in principals


def test_healthimaging_uses_the_key_as_its_data_encryption_page_shows(template):
    """HealthImaging developer guide, "Data encryption": the example key policy statement lets
    the medical-imaging.amazonaws.com principal Decrypt, GenerateDataKey and
    GenerateDataKeyWithoutPlaintext where the encryption context names the key (kms-arn) and a
    data store (aws:medical-imaging:datastoreId)."""
    statement = _policy(template["Resources"])["HealthImagingDataStore"]
    assert statement["Principal"] == {"Service": "medical-imaging.amazonaws.com"}
    assert statement["Action"] == [
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
    ]
    assert statement["Resource"] == ["*"] and statement["Effect"] == "Allow"
    assert statement["Condition"] == {
        "StringLike": {
            "kms:EncryptionContext:kms-arn": {
                "Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"
            },
            "kms:EncryptionContext:aws:medical-imaging:datastoreId": "*",
        }
    }


def test_every_role_key_statement_goes_through_one_service(template):
    for role, statements in _key_statements(template["Resources"]).items():
        for s in statements:
            assert set(s["Condition"]) == {"StringEquals"}, role
            (service,) = s["Condition"]["StringEquals"].values()
            assert service["Fn::Sub"].endswith(".${AWS::Region}.amazonaws.com"), role
            assert not {"kms:*", "kms:CreateGrant", "kms:ReEncrypt*"} & set(s["Action"]), role


def test_data_access_role_key_permissions(template):
    (statement,) = _key_statements(template["Resources"])["DataAccessRole"]
    assert statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Condition"] == _via("s3")


# The task role's key use, service by service: GenerateDataKey for every PutObject and Decrypt
# for multipart uploads (S3 user guide); StoreDICOM into an encrypted data store (direct
# stores); the job-table items the SCP writes for them.
TASK_ROLE_KEY_USE = {
    "s3": ["kms:Decrypt", "kms:GenerateDataKey"],
    "medical-imaging": ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"],
    "dynamodb": ["kms:Decrypt", "kms:GenerateDataKey"],
}


def test_task_role_uses_the_key_only_through_the_services_it_writes_to(template):
    statements = _key_statements(template["Resources"])["TaskRole"]
    by_service = {
        s["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Sub"].split(".")[0]: s
        for s in statements
    }
    assert len(by_service) == len(statements)
    assert {k: s["Action"] for k, s in by_service.items()} == TASK_ROLE_KEY_USE
    for service, s in by_service.items():
        assert s["Condition"] == _via(service)


def test_encrypted_with_the_stacks_key(template):
    """Everything holding DICOM data, results, job records, logs or alarms uses the key."""
    r = template["Resources"]
    key = {"Fn::If": ["CreateEncryptionKey", CREATED, {"Ref": "KmsKeyArn"}]}
    assert r["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == key
    assert r["Datastore"]["Properties"]["KmsKeyArn"] == key
    assert r["DicomImportJobTable"]["Properties"]["SSESpecification"]["KMSMasterKeyId"] == key
    for group in ("PacsServerTaskDefPacsContainerLogGroup", "RouteTablesLogGroup"):
        assert r[group]["Properties"]["KmsKeyId"] == key, group


def test_alarm_topic_policy_lets_only_this_accounts_alarms_publish_over_tls(template):
    r = template["Resources"]
    policy = r["AlarmTopicPolicy"]["Properties"]
    assert policy["Topics"] == [{"Ref": "AlarmTopic"}]
    allow_alarms, deny_plain = policy["PolicyDocument"]["Statement"]
    assert allow_alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow_alarms["Action"] == ["sns:Publish"]
    alarms_arn = "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"
    assert allow_alarms["Condition"] == {
        "ArnLike": {"aws:SourceArn": {"Fn::Sub": alarms_arn}},
        "StringEquals": {"aws:SourceAccount": {"Fn::Sub": "${AWS::AccountId}"}},
    }
    assert (deny_plain["Effect"], deny_plain["Condition"]) == (
        "Deny",
        {"Bool": {"aws:SecureTransport": "false"}},
    )
    alarms = [a for a in r.values() if a["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms and all(
        a["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms
    )
