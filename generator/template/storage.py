"""S3 buckets (DICOM files, import results, access logs), the job table and the data store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troposphere import GetAtt, Ref, Sub, Template, dynamodb, healthimaging, s3, sqs

from generator.contracts import contracts
from generator.spec import Spec
from generator.template.iam import (
    allow,
    arn,
    deny_insecure_transport,
    policy_document,
    same_account,
)
from generator.template.kms import Key
from generator.template.parameters import Inputs
from lambdas.results import IMPORTED_TAG

BATCHES_PREFIX = contracts().prefix("batches")
INCOMING_PREFIX = contracts().prefix("incoming")
OPEN_PREFIX = contracts().prefix("open")


@dataclass(frozen=True)
class Storage:
    dicom_bucket: s3.Bucket
    results_bucket: s3.Bucket
    access_logs_bucket: s3.Bucket
    access_logs_policy: s3.BucketPolicy
    table: dynamodb.Table
    datastore_id: Any  # the created data store's ID, or DatastoreId
    datastore_arns: list[Any]  # the data store and its image sets, for IAM statements


def _encryption(key: Key | None) -> s3.BucketEncryption:
    """SSE-KMS with the stack's key and an S3 Bucket Key (fewer KMS requests), or SSE-S3."""
    if key is None:
        by_default = s3.ServerSideEncryptionByDefault(SSEAlgorithm="AES256")
        rule = s3.ServerSideEncryptionRule(ServerSideEncryptionByDefault=by_default)
    else:
        by_default = s3.ServerSideEncryptionByDefault(
            SSEAlgorithm="aws:kms", KMSMasterKeyID=key.arn
        )
        rule = s3.ServerSideEncryptionRule(
            ServerSideEncryptionByDefault=by_default, BucketKeyEnabled=True
        )
    return s3.BucketEncryption(ServerSideEncryptionConfiguration=[rule])


# How long a replaced version stays, and an unfinished multipart upload. A version becomes
# noncurrent when it is replaced or expired; its days count from then (S3 user guide, "Lifecycle
# configuration elements").
NONCURRENT_DAYS = 1
INCOMPLETE_UPLOAD_DAYS = 1


def cleanup_rule() -> s3.LifecycleRule:
    """Every bucket's housekeeping, in a rule of its own (ExpiredObjectDeleteMarker cannot share a
    rule with ExpirationInDays, ExpirationDate or TagFilters: AWS::S3::Bucket Rule, CloudFormation
    reference): replaced versions go NONCURRENT_DAYS after they were replaced, unfinished
    multipart uploads after INCOMPLETE_UPLOAD_DAYS, and a delete marker left with no versions
    behind it (an expired object's) is removed."""
    return s3.LifecycleRule(
        Id="CleanUp",
        Status="Enabled",
        NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(NoncurrentDays=NONCURRENT_DAYS),
        AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(
            DaysAfterInitiation=INCOMPLETE_UPLOAD_DAYS
        ),
        ExpiredObjectDeleteMarker=True,
    )


def _expire_rule(days: Any) -> s3.LifecycleRule:
    """Objects expire `days` after they were created (S3 user guide, "Lifecycle configuration
    elements": the days are added to the object's creation time, rounded up to midnight UTC)."""
    return s3.LifecycleRule(Id="Expire", Status="Enabled", ExpirationInDays=days)


def imported_instances_rules(days: Any) -> list[s3.LifecycleRule]:
    """The DICOM bucket's lifecycle: an instance expires `days` after it was imported as primary,
    never before: RecordResults copies it onto itself with the tag (lambdas/results.py), and the
    copy's creation date is the import's (a tag alone would not reset the object's age). Failed
    and conflicting instances, manifests and markers stay until an operator acts."""
    tag = s3.TagFilter(**IMPORTED_TAG)
    return [
        s3.LifecycleRule(
            Id="ExpireImportedInstances",
            Status="Enabled",
            Prefix=INCOMING_PREFIX,
            TagFilters=[tag],
            ExpirationInDays=days,
        ),
        cleanup_rule(),
    ]


def _bucket(
    t: Template,
    name: str,
    expire_days: Any,
    key: Key | None,
    rules: list[s3.LifecycleRule] | None = None,
    **extra,
) -> s3.Bucket:
    """Encrypted, versioned, private, retained bucket that expires objects after expire_days
    (or follows `rules`)."""
    return t.add_resource(
        s3.Bucket(
            name,
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
            BucketEncryption=_encryption(key),
            PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
                BlockPublicAcls=True,
                BlockPublicPolicy=True,
                IgnorePublicAcls=True,
                RestrictPublicBuckets=True,
            ),
            OwnershipControls=s3.OwnershipControls(
                Rules=[s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]
            ),
            VersioningConfiguration=s3.VersioningConfiguration(Status="Enabled"),
            LifecycleConfiguration=s3.LifecycleConfiguration(
                Rules=rules or [_expire_rule(expire_days), cleanup_rule()]
            ),
            **extra,
        )
    )


def _bucket_policy(t: Template, bucket: s3.Bucket, statements: list[dict]) -> s3.BucketPolicy:
    return t.add_resource(
        s3.BucketPolicy(
            f"{bucket.title}Policy",
            Bucket=Ref(bucket),
            PolicyDocument=policy_document(
                [
                    deny_insecure_transport("s3:*", [GetAtt(bucket, "Arn"), arn(bucket, "/*")]),
                    *statements,
                ]
            ),
        )
    )


def _key_schema(hash_key: str, range_key: str | None) -> list[dynamodb.KeySchema]:
    keys = [dynamodb.KeySchema(AttributeName=hash_key, KeyType="HASH")]
    if range_key:
        keys.append(dynamodb.KeySchema(AttributeName=range_key, KeyType="RANGE"))
    return keys


def add_storage(
    t: Template,
    spec: Spec,
    inputs: Inputs,
    key: Key,
    import_queue: sqs.Queue,
    queue_policy: sqs.QueuePolicy,
) -> Storage:
    """Buckets, table and data store; the DICOM bucket notifies the import queue of manifests."""
    # Access logs stay SSE-S3: the load balancer's log delivery supports only SSE-S3 or a key
    # whose policy names delivery.logs.amazonaws.com, and these logs hold no DICOM data.
    p = inputs.parameters
    logs = _bucket(t, "AccessLogsBucket", Ref(p.AccessLogRetentionDays), None)
    log_delivery = "delivery.logs.amazonaws.com"
    logs_policy = _bucket_policy(
        t,
        logs,
        [
            {
                "Sid": "S3ServerAccessLogs",
                **allow(["s3:PutObject"], [arn(logs, "/s3/*")], same_account()),
                "Principal": {"Service": "logging.s3.amazonaws.com"},
            },
            {
                "Sid": "LoadBalancerAccessLogs",
                **allow(["s3:PutObject"], [arn(logs, "/nlb/*")], same_account()),
                "Principal": {"Service": log_delivery},
            },
            {
                "Sid": "LoadBalancerAccessLogsAcl",
                **allow(["s3:GetBucketAcl"], [GetAtt(logs, "Arn")], same_account()),
                "Principal": {"Service": log_delivery},
            },
        ],
    )

    def logged(name: str) -> s3.LoggingConfiguration:
        return s3.LoggingConfiguration(DestinationBucketName=Ref(logs), LogFilePrefix=f"s3/{name}/")

    dicom = _bucket(
        t,
        "DicomBucket",
        None,
        key,
        imported_instances_rules(Ref(p.IncomingRetentionDays)),
        LoggingConfiguration=logged("DicomBucket"),
        NotificationConfiguration=s3.NotificationConfiguration(
            QueueConfigurations=[
                s3.QueueConfigurations(
                    Event="s3:ObjectCreated:*",
                    Queue=GetAtt(import_queue, "Arn"),
                    Filter=s3.Filter(
                        S3Key=s3.S3Key(
                            Rules=[
                                s3.Rules(Name="prefix", Value=BATCHES_PREFIX),
                                s3.Rules(Name="suffix", Value=".json"),
                            ]
                        )
                    ),
                )
            ]
        ),
        DependsOn=[queue_policy],
    )
    _bucket_policy(t, dicom, [])
    results = _bucket(
        t,
        "ResultsBucket",
        Ref(p.ResultsRetentionDays),
        key,
        LoggingConfiguration=logged("ResultsBucket"),
    )
    _bucket_policy(t, results, [])

    contract = contracts().job_table
    job_table = t.add_resource(
        dynamodb.Table(
            "DicomImportJobTable",
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                dynamodb.AttributeDefinition(AttributeName=name, AttributeType="S")
                for name in (
                    contract["partitionKey"],
                    contract["sortKey"],
                    *(index["hash"] for index in contract["indexes"].values()),
                )
            ],
            KeySchema=_key_schema(contract["partitionKey"], contract["sortKey"]),
            GlobalSecondaryIndexes=[
                dynamodb.GlobalSecondaryIndex(
                    IndexName=index["name"],
                    KeySchema=_key_schema(index["hash"], index.get("range")),
                    Projection=dynamodb.Projection(ProjectionType="ALL"),
                )
                for index in contract["indexes"].values()
            ],
            PointInTimeRecoverySpecification=dynamodb.PointInTimeRecoverySpecification(
                PointInTimeRecoveryEnabled=True
            ),
            # Storage-commitment items carry an expiry (epoch seconds); DynamoDB deletes an item
            # typically within two days after it, and until then reads still return it
            # (DynamoDB API reference, "UpdateTimeToLive"; CloudFormation reference,
            # "AWS::DynamoDB::Table TimeToLiveSpecification"). Import results carry none.
            TimeToLiveSpecification=dynamodb.TimeToLiveSpecification(
                AttributeName=contract["expiresAttribute"]["name"], Enabled=True
            ),
            SSESpecification=dynamodb.SSESpecification(
                SSEEnabled=True, SSEType="KMS", KMSMasterKeyId=key.arn
            ),
        )
    )
    datastore_id, datastore_arns = _datastore(t, inputs, key)
    return Storage(dicom, results, logs, logs_policy, job_table, datastore_id, datastore_arns)


def _datastore(t: Template, inputs: Inputs, key: Key) -> tuple[Any, list[Any]]:
    """The data store, retained on delete and replace (a replacement would be empty, and a
    non-empty data store cannot be deleted), or the existing one named by DatastoreId: its ID,
    and the ARNs of it and its image sets.
    AWS::MedicalImaging::Datastore: DatastoreName, KmsKeyArn, Tags (CloudFormation reference)."""
    create = inputs.conditions.create_datastore
    datastore = t.add_resource(
        healthimaging.Datastore(
            "Datastore",
            Condition=create.name,
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
            DatastoreName=Sub("${AWS::StackName}-datastore"),
            KmsKeyArn=key.arn,
        )
    )
    existing = Ref(inputs.parameters.DatastoreId)
    existing_arn = (
        "arn:${AWS::Partition}:medical-imaging:${AWS::Region}:${AWS::AccountId}:datastore/${Id}"
    )
    arns = [
        create.choose(GetAtt(datastore, "DatastoreArn"), Sub(existing_arn, Id=existing)),
        create.choose(arn(datastore, "/*", "DatastoreArn"), Sub(existing_arn + "/*", Id=existing)),
    ]
    return create.choose(GetAtt(datastore, "DatastoreId"), existing), arns
