"""The DICOM bucket's lifecycle as the template writes it, applied to a bucket (moto S3): an
instance that was not imported as primary matches no expiring rule; one that was, does.

S3 applies a rule to an object when the object's key starts with the rule's prefix and the object
carries every tag of the rule (S3 user guide, "Lifecycle configuration elements", Filter with And).
"""

from __future__ import annotations

import uuid

import pytest

from generator.spec import load
from generator.template.build import template_for
from lambdas.results import IMPORTED_TAG
from tests.fakes.pipeline import local_pipeline
from tests.lambdas.batches import write_batch


def api_rules(template_rules: list[dict], days: int) -> list[dict]:
    """The template's rules (CloudFormation shape) as PutBucketLifecycleConfiguration takes them."""
    rules = []
    for rule in template_rules:
        api = {"ID": rule["Id"], "Status": rule["Status"]}
        tags = rule.get("TagFilters", [])
        if tags:
            api["Filter"] = {"And": {"Prefix": rule.get("Prefix", ""), "Tags": tags}}
        else:
            api["Filter"] = {"Prefix": rule.get("Prefix", "")}
        if "ExpirationInDays" in rule:
            api["Expiration"] = {"Days": days}
        if "NoncurrentVersionExpiration" in rule:
            api["NoncurrentVersionExpiration"] = {
                "NoncurrentDays": rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
            }
        if "AbortIncompleteMultipartUpload" in rule:
            api["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
        rules.append(api)
    return rules


def expiring_rules_for(rules: list[dict], key: str, tags: list[dict]) -> list[str]:
    """IDs of the rules that would expire the current version of this object."""
    matching = []
    for rule in rules:
        if "Expiration" not in rule:
            continue
        condition = rule["Filter"].get("And", rule["Filter"])
        wanted = condition.get("Tags", [])
        if key.startswith(condition.get("Prefix", "")) and all(t in tags for t in wanted):
            matching.append(rule["ID"])
    return matching


@pytest.fixture
def pipeline(moto):
    with local_pipeline(moto, f"lc-{uuid.uuid4().hex[:8]}") as p:
        yield p


def test_only_instances_imported_as_primary_may_expire(pipeline):
    template = template_for(load()).to_dict()
    days = template["Parameters"]["IncomingRetentionDays"]["Default"]
    rules = template["Resources"]["DicomBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    s3 = pipeline.moto.client("s3")
    s3.put_bucket_versioning(Bucket=pipeline.bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(
        Bucket=pipeline.bucket, LifecycleConfiguration={"Rules": api_rules(rules, days)}
    )
    manifest = write_batch(s3, pipeline.bucket, 2)
    failed = manifest["instances"][1]
    pipeline.fake.failing_sops.add(failed["sopInstanceUID"])

    pipeline.deliver(wait_seconds=5)
    pipeline.wait_for_executions(1)

    applied = s3.get_bucket_lifecycle_configuration(Bucket=pipeline.bucket)["Rules"]
    imported = manifest["instances"][0]
    for instance, expected in ((imported, ["ExpireImportedInstances"]), (failed, [])):
        tags = s3.get_object_tagging(Bucket=pipeline.bucket, Key=instance["key"])["TagSet"]
        assert expiring_rules_for(applied, instance["key"], tags) == expected
    manifest_key = f"batches/{manifest['batchId']}.json"
    assert expiring_rules_for(applied, manifest_key, []) == []
    assert (
        IMPORTED_TAG in s3.get_object_tagging(Bucket=pipeline.bucket, Key=imported["key"])["TagSet"]
    )
