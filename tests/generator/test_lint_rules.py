"""The project's cfn-lint rules (generator/template/lint_rules/), each with a passing and a failing
fixture template; the full rule set runs on each fixture so the project rules are really loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.release import gates

FIXTURES = Path(__file__).parent / "fixtures" / "lint_rules"


def findings(spec, name: str, rule: str) -> list[str]:
    return [f for f in gates.cfn_lint((FIXTURES / name).read_text(), spec) if f.startswith(rule)]


@pytest.mark.parametrize("rule", ["E9001", "E9002", "E9003"])
def test_good_fixture_passes(spec, rule):
    assert gates.cfn_lint((FIXTURES / f"{rule}_good.yaml").read_text(), spec) == []


def test_parameter_without_label_description_or_group(spec):
    assert findings(spec, "E9001_bad.yaml", "E9001") == [
        "E9001 Parameter Prefix has no console label (Parameters/Prefix)",
        "E9001 Parameter Suffix has no Description (Parameters/Suffix)",
        "E9001 Parameter Suffix has no console label (Parameters/Suffix)",
        "E9001 Parameter Suffix is in no console group (Parameters/Suffix)",
    ]


def test_hard_coded_account_and_region(spec):
    found = findings(spec, "E9002_bad.yaml", "E9002")
    assert len(found) == 2
    assert (
        "account ID '123456789012'" in found[0]
        and "Resources/Queue/Properties/QueueName" in found[0]
    )
    assert "region 'eu-west-1'" in found[1] and "Outputs/QueueArn" in found[1]


def test_marketplace_image_is_the_only_exemption(spec):
    """The spec's image URI may carry the Marketplace account and region; nothing else may."""
    image = """AWSTemplateFormatVersion: "2010-09-09"
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: "{name}"
      SqsManagedSseEnabled: true
"""

    def e9002(name: str) -> list[str]:
        return [f for f in gates.cfn_lint(image.format(name=name), spec) if f.startswith("E9002")]

    assert e9002(spec.image_uri) == []
    other = spec.image_uri.replace(spec.data["image"]["tag"], "other")
    assert len(e9002(other)) == 2  # its account and its region


def test_unencrypted_bucket_and_queue(spec):
    bucket, queue = findings(spec, "E9003_bad.yaml", "E9003")
    assert bucket.startswith("E9003 AWS::S3::Bucket Bucket is not encrypted at rest; add BucketEnc")
    assert queue.startswith("E9003 AWS::SQS::Queue Queue is not encrypted at rest; add SqsManaged")


def test_one_rule_per_file():
    rules = sorted(p.stem for p in gates.LINT_RULES.glob("[A-Z]*.py"))
    assert rules == ["EncryptedStorage", "NoHardcodedAccountOrRegion", "ParameterDocumented"]
    for path in gates.LINT_RULES.glob("[A-Z]*.py"):
        assert path.read_text().count("(CloudFormationLintRule)") == 1
