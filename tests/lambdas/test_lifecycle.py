"""The buckets' lifecycle rules as the template writes them: each follows the AWS page named
below, and the DICOM bucket's retention counts from the import, not from receipt.

moto keeps lifecycle configurations but does not run them, so what S3 does with a rule is taken
from AWS's pages (RULE_PAGES); what the workflow does to the objects (a tagged copy at import) is
observed on moto's S3.
"""

from __future__ import annotations

import uuid

import pytest

from generator.spec import load
from generator.template.build import template_for
from lambdas.results import IMPORTED_TAG
from tests.fakes.pipeline import local_pipeline
from tests.lambdas.batches import write_batch

S3_LIFECYCLE = "S3 User Guide, 'Lifecycle configuration elements'"
RULE_PAGES = {
    # Expiration counts from the object's creation, rounded up to the next midnight UTC; a rule
    # with a prefix and tags (Filter And) applies only to objects carrying every tag. A tag added
    # later does not change the creation date, a copy has its own (S3 User Guide, "Copying,
    # moving, and renaming objects": "Amazon S3 resets the system-controlled metadata ... the
    # creation date of the copied object").
    "ExpireImportedInstances": S3_LIFECYCLE,
    "Expire": S3_LIFECYCLE,
    # NoncurrentDays count from when the version became noncurrent (replaced, or expired behind a
    # delete marker); AbortIncompleteMultipartUpload from the upload's initiation;
    # ExpiredObjectDeleteMarker removes a delete marker with no noncurrent version, and cannot be
    # in a rule with ExpirationInDays, ExpirationDate or TagFilters (CloudFormation reference,
    # AWS::S3::Bucket Rule; S3 API Reference, "LifecycleExpiration").
    "CleanUp": S3_LIFECYCLE + "; CloudFormation reference, AWS::S3::Bucket Rule",
}
BUCKETS = {
    "DicomBucket": ["ExpireImportedInstances", "CleanUp"],
    "ResultsBucket": ["Expire", "CleanUp"],
    "AccessLogsBucket": ["Expire", "CleanUp"],
}


@pytest.fixture(scope="module")
def template() -> dict:
    return template_for(load()).to_dict()


def rules_of(template: dict, bucket: str) -> list[dict]:
    return template["Resources"][bucket]["Properties"]["LifecycleConfiguration"]["Rules"]


def test_every_rule_follows_a_named_aws_page(template):
    for bucket, ids in BUCKETS.items():
        rules = rules_of(template, bucket)
        assert [r["Id"] for r in rules] == ids, bucket
        assert set(ids) <= set(RULE_PAGES)
        for rule in rules:
            assert rule["Status"] == "Enabled"
            if rule.get("ExpiredObjectDeleteMarker"):
                assert not {"ExpirationInDays", "ExpirationDate", "TagFilters"} & set(rule)
        (cleanup,) = [r for r in rules if r["Id"] == "CleanUp"]
        assert cleanup["ExpiredObjectDeleteMarker"] is True
        assert cleanup["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
        assert cleanup["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
        assert "Prefix" not in cleanup  # every object of the bucket


def test_dicom_bucket_expires_only_tagged_instances(template):
    (expire,) = [r for r in rules_of(template, "DicomBucket") if "ExpirationInDays" in r]
    assert expire["Prefix"] == "incoming/"
    assert expire["TagFilters"] == [IMPORTED_TAG]
    assert expire["ExpirationInDays"] == {"Ref": "IncomingRetentionDays"}


@pytest.fixture
def pipeline(moto):
    with local_pipeline(moto, f"lc-{uuid.uuid4().hex[:8]}") as p:
        yield p


def versions(s3, bucket: str, key: str) -> list[dict]:
    """The versions of one key, newest first."""
    found = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    return sorted(
        (v for v in found if v["Key"] == key), key=lambda v: v["LastModified"], reverse=True
    )


def test_an_imported_instance_is_recreated_tagged_at_the_import(pipeline):
    """GIVEN a versioned bucket and a batch of two, one of which fails to import, WHEN the batch
    runs, THEN the imported object is a new version created after the job started (its lifecycle
    days count from there), tagged, same bytes and type; the failed one is untouched."""
    s3 = pipeline.moto.client("s3")
    s3.put_bucket_versioning(Bucket=pipeline.bucket, VersioningConfiguration={"Status": "Enabled"})
    manifest = write_batch(s3, pipeline.bucket, 2)
    imported, failed = manifest["instances"]
    pipeline.fake.failing_sops.add(failed["sopInstanceUID"])
    received = s3.head_object(Bucket=pipeline.bucket, Key=imported["key"])

    pipeline.deliver(wait_seconds=5)
    pipeline.wait_for_executions(1)

    (job,) = pipeline.fake.jobs.values()
    current, original = versions(s3, pipeline.bucket, imported["key"])
    assert original["VersionId"] == received["VersionId"]
    assert current["LastModified"] > received["LastModified"]
    assert current["LastModified"].timestamp() >= int(job.wall_submitted)
    head = s3.head_object(Bucket=pipeline.bucket, Key=imported["key"])
    assert head["ETag"] == received["ETag"] and head["ContentLength"] == imported["bytes"]
    assert head["ContentType"] == "application/dicom"
    assert head["Metadata"] == {"storescp-import-job": job.job_id}
    tags = s3.get_object_tagging(Bucket=pipeline.bucket, Key=imported["key"])["TagSet"]
    assert tags == [IMPORTED_TAG]

    (untouched,) = versions(s3, pipeline.bucket, failed["key"])
    assert s3.get_object_tagging(Bucket=pipeline.bucket, Key=failed["key"])["TagSet"] == []
    assert untouched["LastModified"] <= received["LastModified"]
