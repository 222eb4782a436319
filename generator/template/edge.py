"""Edge sites: the role an edge SCP in a hospital assumes through IAM Roles Anywhere to forward
its batches into the DICOM bucket, and the Roles Anywhere profile that hands it out. Created
when EdgeTrustAnchorArn names the customer's trust anchor (their CA in IAM Roles Anywhere).

The role may put objects under the keys the SCP writes (incoming/ instances, batches/ manifests)
and abort its own multipart uploads; it reads, lists and deletes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troposphere import GetAtt, Ref, Sub, Template, iam, rolesanywhere

from generator.template.iam import allow, arn, policy_document
from generator.template.kms import Key
from generator.template.parameters import Inputs
from generator.template.storage import BATCHES_PREFIX, INCOMING_PREFIX, Storage

NO_EDGE = "none (EdgeTrustAnchorArn is empty)"
# "The IAM Roles Anywhere trust model" (IAM Roles Anywhere User Guide): a role used with IAM
# Roles Anywhere trusts rolesanywhere.amazonaws.com for sts:AssumeRole, sts:SetSourceIdentity
# and sts:TagSession; aws:SourceArn limits it to the customer's trust anchor.
TRUST_ACTIONS = ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]


@dataclass(frozen=True)
class EdgeAccess:
    """Output values: the role's and the profile's ARNs, or NO_EDGE."""

    role_arn: Any
    profile_arn: Any


def add_edge_access(t: Template, inputs: Inputs, key: Key, storage: Storage) -> EdgeAccess:
    anchor = inputs.parameters.EdgeTrustAnchorArn
    condition = inputs.conditions.has_edge_sites
    bucket = storage.dicom_bucket
    statements = [
        allow(
            ["s3:PutObject"],
            [arn(bucket, f"/{INCOMING_PREFIX}*"), arn(bucket, f"/{BATCHES_PREFIX}*")],
        ),
        allow(["s3:AbortMultipartUpload"], [arn(bucket, f"/{INCOMING_PREFIX}*")]),
        # SSE-KMS uploads: GenerateDataKey, and Decrypt for multipart uploads
        # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html), through S3 only.
        key.via("s3", ["kms:Decrypt", "kms:GenerateDataKey"]),
    ]
    trust = {
        "Effect": "Allow",
        "Principal": {"Service": "rolesanywhere.amazonaws.com"},
        "Action": TRUST_ACTIONS,
        "Condition": {"ArnEquals": {"aws:SourceArn": Ref(anchor)}},
    }
    role = t.add_resource(
        iam.Role(
            "EdgeSiteRole",
            Condition=condition.name,
            AssumeRolePolicyDocument=policy_document([trust]),
            Policies=[
                iam.Policy(PolicyName="EdgeSiteRole", PolicyDocument=policy_document(statements))
            ],
        )
    )
    profile = t.add_resource(
        rolesanywhere.Profile(
            "EdgeSiteProfile",
            Condition=condition.name,
            Name=Sub("${AWS::StackName}-edge-sites"),
            Enabled=True,
            RoleArns=[GetAtt(role, "Arn")],
        )
    )
    return EdgeAccess(
        role_arn=condition.choose(GetAtt(role, "Arn"), NO_EDGE),
        profile_arn=condition.choose(GetAtt(profile, "ProfileArn"), NO_EDGE),
    )
