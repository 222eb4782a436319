"""The stack's encryption key: the customer's own (KmsKeyArn) or one customer managed key that
this stack creates, with rotation on and a key policy naming exactly the services that use it.

Other modules receive a `Key`: `key.arn` is the ARN expression to put on a resource, and
`key.via(service, actions)` is the IAM statement a role needs to use the key through one service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troposphere import GetAtt, Ref, Sub, Template, kms

from generator.template.iam import Statement, allow, policy_document
from generator.template.parameters import Inputs

# Services whose callers (this account's roles and users) use the key on their behalf; the key
# policy allows each only through that service (kms:ViaService), never directly.
VIA_SERVICES = ("s3", "dynamodb", "sqs", "sns", "medical-imaging")
# Data-key actions a service needs on its callers' behalf.
DATA_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*"]
# What the HealthImaging service principal does with a data store's customer managed key
# (HealthImaging developer guide, "Data encryption", its example key policy statement).
HEALTHIMAGING_PRINCIPAL = "medical-imaging.amazonaws.com"
HEALTHIMAGING_ACTIONS = [
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
]
# Key administration (KMS default key policy, "Allows key administrators to administer the key"),
# without the cryptographic actions and without kms:CreateGrant (the default's kms:Create* would
# let an administrator grant use): https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html
ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:Delete*",
    "kms:Describe*",
    "kms:Disable*",
    "kms:Enable*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:Revoke*",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:Update*",
]


def service_endpoint(service: str) -> Sub:
    """'s3' -> s3.<region>.amazonaws.com, the value of kms:ViaService for that service."""
    return Sub(f"{service}.${{AWS::Region}}.amazonaws.com")


@dataclass(frozen=True)
class Key:
    """The key every encrypted resource of the stack uses."""

    arn: Any  # Fn::If: the created key's ARN, or KmsKeyArn

    def via(self, service: str, actions: list[str]) -> Statement:
        """IAM statement: use the key for these actions only through one service (e.g. 's3')."""
        return allow(
            actions, [self.arn], {"StringEquals": {"kms:ViaService": service_endpoint(service)}}
        )


def _service(principal: Any, sid: str, actions: list[str], condition: dict | None = None) -> dict:
    statement = {"Sid": sid, "Principal": {"Service": principal}, **allow(actions, ["*"])}
    if condition:
        statement["Condition"] = condition
    return statement


def key_policy() -> dict[str, Any]:
    """The created key's policy, statement by statement (each names its source)."""
    account = Sub("${AWS::AccountId}")
    root = Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")
    return policy_document(
        [
            # The account administers the key through IAM; it cannot use it directly.
            {"Sid": "KeyAdministration", "Principal": {"AWS": root}, **allow(ADMIN_ACTIONS, ["*"])},
            # S3, DynamoDB, SQS, SNS and HealthImaging use the key for this account's principals
            # that IAM allows to (e.g. DynamoDB's documented key policy: kms:ViaService with
            # kms:CallerAccount, https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html).
            {
                "Sid": "UseThroughStackServices",
                "Principal": {"AWS": root},
                **allow(
                    [*DATA_ACTIONS, "kms:ReEncrypt*"],
                    ["*"],
                    {
                        "StringEquals": {
                            "kms:CallerAccount": account,
                            "kms:ViaService": [service_endpoint(s) for s in VIA_SERVICES],
                        }
                    },
                ),
            },
            # DynamoDB tables and HealthImaging data stores keep a grant on their key
            # (https://docs.aws.amazon.com/healthimaging/latest/devguide/data-encryption.html:
            # "kms:CreateGrant operations must be permitted in the key policy").
            {
                "Sid": "GrantsForStackResources",
                "Principal": {"AWS": root},
                **allow(
                    ["kms:CreateGrant"],
                    ["*"],
                    {
                        "StringEquals": {
                            "kms:CallerAccount": account,
                            "kms:ViaService": [
                                service_endpoint(s) for s in ("dynamodb", "medical-imaging")
                            ],
                        },
                        "Bool": {"kms:GrantIsForAWSResource": "true"},
                    },
                ),
            },
            # CloudWatch Logs encrypts this account's log groups in this Region
            # (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
            _service(
                service_endpoint("logs"),
                "CloudWatchLogs",
                [
                    "kms:Decrypt*",
                    "kms:Describe*",
                    "kms:Encrypt*",
                    "kms:GenerateDataKey*",
                    "kms:ReEncrypt*",
                ],
                {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": Sub(
                            "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
                            "log-group:*"
                        )
                    }
                },
            ),
            # CloudWatch alarms publish to the encrypted alarm topic
            # (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
            _service(
                "cloudwatch.amazonaws.com",
                "CloudWatchAlarmsPublish",
                ["kms:Decrypt", "kms:GenerateDataKey*"],
            ),
            # HealthImaging itself encrypts the data store created with this key, as the
            # developer guide's example key policy allows it ("Data encryption",
            # https://docs.aws.amazon.com/healthimaging/latest/devguide/data-encryption.html):
            # Decrypt, GenerateDataKey and GenerateDataKeyWithoutPlaintext for the service
            # principal, conditioned on the encryption context HealthImaging sends. The example
            # names the key's ARN and the data store's id; a key policy cannot name its own key,
            # and the data store does not exist before the key, so: a key of this account and
            # Region, and any data store id (the context key must be present).
            _service(
                HEALTHIMAGING_PRINCIPAL,
                "HealthImagingDataStore",
                HEALTHIMAGING_ACTIONS,
                {
                    "StringLike": {
                        "kms:EncryptionContext:kms-arn": Sub(
                            "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"
                        ),
                        "kms:EncryptionContext:aws:medical-imaging:datastoreId": "*",
                    }
                },
            ),
            # S3 event notifications reach the encrypted import queue
            # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/grant-destinations-permissions-to-s3.html).
            _service(
                "s3.amazonaws.com",
                "S3EventNotifications",
                ["kms:Decrypt", "kms:GenerateDataKey"],
            ),
        ]
    )


def add_key(t: Template, inputs: Inputs) -> Key:
    """The created key (when KmsKeyArn is empty), its alias, and the Key others receive."""
    create = inputs.conditions.create_key
    created = t.add_resource(
        kms.Key(
            "EncryptionKey",
            Condition=create.name,
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
            Description=Sub("${AWS::StackName}: DICOM objects, job table, queues, logs, alarms"),
            EnableKeyRotation=True,
            KeyPolicy=key_policy(),
        )
    )
    t.add_resource(
        kms.Alias(
            "EncryptionKeyAlias",
            Condition=create.name,
            AliasName=Sub("alias/storescp/${AWS::StackName}"),
            TargetKeyId=Ref(created),
        )
    )
    return Key(create.choose(GetAtt(created, "Arn"), Ref(inputs.parameters.KmsKeyArn)))
