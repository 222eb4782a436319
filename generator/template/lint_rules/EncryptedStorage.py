"""E9003: every S3 bucket and SQS queue is encrypted at rest."""

from __future__ import annotations

from cfnlint.rules import CloudFormationLintRule, RuleMatch


def _bucket_encrypted(properties: dict) -> bool:
    rules = properties.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
    return any(
        isinstance(r, dict)
        and r.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
        in ("AES256", "aws:kms", "aws:kms:dsse")
        for r in rules
    )


def _queue_encrypted(properties: dict) -> bool:
    managed = properties.get("SqsManagedSseEnabled") in (True, "true", "True")
    return managed or bool(properties.get("KmsMasterKeyId"))


class EncryptedStorage(CloudFormationLintRule):
    """Buckets need BucketEncryption; queues need SqsManagedSseEnabled or KmsMasterKeyId."""

    id = "E9003"
    shortdesc = "Buckets and queues are encrypted"
    description = "Every AWS::S3::Bucket and AWS::SQS::Queue declares encryption at rest."
    source_url = "https://github.com/storescp-healthimaging"
    tags = ("resources", "project", "encryption")

    def match(self, cfn):
        matches = []
        checks = {"AWS::S3::Bucket": _bucket_encrypted, "AWS::SQS::Queue": _queue_encrypted}
        for name, resource in cfn.template.get("Resources", {}).items():
            check = checks.get(resource.get("Type"))
            if check and not check(resource.get("Properties", {})):
                matches.append(
                    RuleMatch(
                        ["Resources", name],
                        f"{resource['Type']} {name} is not encrypted at rest; add "
                        + (
                            "BucketEncryption"
                            if "Bucket" in resource["Type"]
                            else "SqsManagedSseEnabled"
                        ),
                    )
                )
        return matches
