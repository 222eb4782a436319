"""S3 buckets (DICOM files, import results, access logs), the job table and the data store."""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import GetAtt, Ref, Sub, Template, dynamodb, healthimaging, s3, sqs

from generator.iam import allow, arn, policy_document, same_account
from generator.spec import Spec

BATCHES_PREFIX = "batches/"
INCOMING_PREFIX = "incoming/"


@dataclass(frozen=True)
class Storage:
    dicom_bucket: s3.Bucket
    results_bucket: s3.Bucket
    access_logs_bucket: s3.Bucket
    access_logs_policy: s3.BucketPolicy
    table: dynamodb.Table
    datastore: healthimaging.Datastore


def _deny_insecure_transport(bucket: s3.Bucket) -> dict:
    return {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [GetAtt(bucket, "Arn"), arn(bucket, "/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _bucket(t: Template, name: str, expire_days: int, **extra) -> s3.Bucket:
    """Encrypted, versioned, private, retained bucket that expires objects after expire_days."""
    bucket = t.add_resource(
        s3.Bucket(
            name,
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
            BucketEncryption=s3.BucketEncryption(
                ServerSideEncryptionConfiguration=[
                    s3.ServerSideEncryptionRule(
                        ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(
                            SSEAlgorithm="AES256"
                        )
                    )
                ]
            ),
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
                Rules=[
                    s3.LifecycleRule(
                        Id="Expire",
                        Status="Enabled",
                        ExpirationInDays=expire_days,
                        NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(
                            NoncurrentDays=1
                        ),
                        AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(
                            DaysAfterInitiation=1
                        ),
                    )
                ]
            ),
            **extra,
        )
    )
    return bucket


def _bucket_policy(t: Template, bucket: s3.Bucket, statements: list[dict]) -> s3.BucketPolicy:
    return t.add_resource(
        s3.BucketPolicy(
            f"{bucket.title}Policy",
            Bucket=Ref(bucket),
            PolicyDocument=policy_document([_deny_insecure_transport(bucket), *statements]),
        )
    )


def add_storage(
    t: Template, spec: Spec, import_queue: sqs.Queue, queue_policy: sqs.QueuePolicy
) -> Storage:
    """Buckets, table and data store; the DICOM bucket notifies the import queue of manifests."""
    res = spec.resources
    logs = _bucket(t, "AccessLogsBucket", res.access_log_retention_days)
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
        res.received_object_retention_days,
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
        res.results_retention_days,
        LoggingConfiguration=logged("ResultsBucket"),
    )
    _bucket_policy(t, results, [])

    table = t.add_resource(
        dynamodb.Table(
            "DicomImportJobTable",
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                dynamodb.AttributeDefinition(AttributeName=name, AttributeType="S")
                for name in ("jobId", "recordId", "sopInstanceUID", "studyInstanceUID")
            ],
            KeySchema=[
                dynamodb.KeySchema(AttributeName="jobId", KeyType="HASH"),
                dynamodb.KeySchema(AttributeName="recordId", KeyType="RANGE"),
            ],
            GlobalSecondaryIndexes=[
                dynamodb.GlobalSecondaryIndex(
                    IndexName="sopInstanceUID-index",
                    KeySchema=[dynamodb.KeySchema(AttributeName="sopInstanceUID", KeyType="HASH")],
                    Projection=dynamodb.Projection(ProjectionType="ALL"),
                ),
                dynamodb.GlobalSecondaryIndex(
                    IndexName="studyInstanceUID-index",
                    KeySchema=[
                        dynamodb.KeySchema(AttributeName="studyInstanceUID", KeyType="HASH"),
                        dynamodb.KeySchema(AttributeName="recordId", KeyType="RANGE"),
                    ],
                    Projection=dynamodb.Projection(ProjectionType="ALL"),
                ),
            ],
            PointInTimeRecoverySpecification=dynamodb.PointInTimeRecoverySpecification(
                PointInTimeRecoveryEnabled=True
            ),
            SSESpecification=dynamodb.SSESpecification(SSEEnabled=True),
        )
    )
    datastore = t.add_resource(
        healthimaging.Datastore("Datastore", DatastoreName=Sub("${AWS::StackName}-datastore"))
    )
    return Storage(dicom, results, logs, logs_policy, table, datastore)
