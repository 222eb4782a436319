"""The Marketplace files in dist/<version>/marketplace/, checked against their sources: the
CloudFormation registry schemas (deployer policy), the template (diagram, quick-create link) and
the product overview (notice)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import cfnlint
import pytest

from generator.errors import GeneratorError
from generator.release import marketplace

SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"


@pytest.fixture(scope="module")
def files(spec, rendered) -> dict[str, bytes]:
    return marketplace.files(spec, rendered[1])


def _create_permissions(resource_type: str) -> set[str]:
    """Read independently of the generator: the registry schema's create handler."""
    providers = json.loads((SCHEMAS / "providers" / "us-east-1.json").read_text())
    schema = json.loads((SCHEMAS / "resources" / f"{providers[resource_type]}.json").read_text())
    return set((schema.get("handlers") or {}).get("create", {}).get("permissions", []))


def test_the_bundle_has_every_marketplace_file(files):
    assert set(files) == {
        "architecture.png",
        "resource-graph.dot",
        "resource-graph.svg",
        "resource-graph.png",
        "deployer-policy-1.json",
        "deployer-policy-2.json",
        "deployer-policy-3.json",
        "key-policy.json",
        "quick-create-url.txt",
        "usage-instructions.txt",
    }


def test_deployer_policies_cover_every_resource_type_and_fit_managed_policies(files, template):
    policies = [json.loads(v) for k, v in files.items() if k.startswith("deployer-policy-")]
    allowed = {a for p in policies for s in p["Statement"] for a in s["Action"]}
    for resource_type in {r["Type"] for r in template["Resources"].values()}:
        if resource_type.startswith("Custom::"):
            assert "lambda:InvokeFunction" in allowed
            continue
        missing = _create_permissions(resource_type) - allowed
        assert not missing, (resource_type, missing)
    assert {"cloudformation:CreateStack", "cloudformation:DeleteStack", "iam:PassRole"} <= allowed
    for p in policies:
        assert len(json.dumps(p, separators=(",", ":"))) <= 6144
        assert all(s["Effect"] == "Allow" and s["Resource"] == "*" for s in p["Statement"])
    sids = [s["Sid"] for p in policies for s in p["Statement"]]
    assert len(sids) == len(set(sids))


def test_deployer_can_create_a_data_store_with_the_customer_managed_key(files):
    """HealthImaging developer guide, "Data encryption", "Required IAM permissions for using a
    customer managed KMS key": CreateGrant, GenerateDataKey, RetireGrant, Decrypt, ReEncrypt*;
    and GenerateDataKey* for GenerateDataKeyWithoutPlaintext."""
    policies = [json.loads(v) for k, v in files.items() if k.startswith("deployer-policy-")]
    allowed = {a for p in policies for s in p["Statement"] for a in s["Action"]}
    needed = {"kms:CreateGrant", "kms:GenerateDataKey", "kms:RetireGrant", "kms:Decrypt"}
    assert needed | {"kms:ReEncrypt*", "kms:GenerateDataKey*"} <= allowed
    assert "kms:ReEncrypt*" not in marketplace.handler_permissions("AWS::S3::Bucket")


def test_a_resource_type_without_a_schema_is_refused():
    with pytest.raises(GeneratorError, match="AWS::Made::Up: no CloudFormation registry schema"):
        marketplace.handler_permissions("AWS::Made::Up")


def test_architecture_diagram_draws_the_template(files, template):
    dot = files["resource-graph.dot"].decode()
    for name, r in template["Resources"].items():
        if r["Type"] in marketplace.GROUPED or r["Type"] in marketplace.HIDDEN:
            continue
        assert f'label="{name}\\n{r["Type"]}' in dot, name
    alarms = sum(r["Type"] == "AWS::CloudWatch::Alarm" for r in template["Resources"].values())
    assert f"Alarms ({alarms})" in dot
    assert "n_Service -> n_TargetGroup;" in dot  # a reference (LoadBalancers) becomes an edge
    assert 'TlsListener\\nAWS::ElasticLoadBalancingV2::Listener\\nif HasTLSCertificate"' in dot
    svg = ET.fromstring(files["resource-graph.svg"])
    assert svg.tag.endswith("svg")
    assert files["resource-graph.png"].startswith(b"\x89PNG\r\n\x1a\n")


def test_quick_create_url_per_region_prefills_the_defaults_only(files, template, spec):
    lines = files["quick-create-url.txt"].decode().splitlines()
    links = dict(line.split(": ", 1) for line in lines)
    assert list(links) == list(spec.regions)
    for region, link in links.items():
        parts = urlsplit(link)
        assert parts.netloc == f"{region}.console.aws.amazon.com"
        assert dict(parse_qsl(parts.query)) == {"region": region}
    parts = urlsplit(links["eu-west-2"])
    path, _, query = parts.fragment.partition("?")
    assert path == "/stacks/create/review"
    params = dict(parse_qsl(query))
    assert params["templateURL"] == "{TemplateURL}"
    assert params["stackName"] == "storescp"
    filled = {k.removeprefix("param_"): v for k, v in params.items() if k.startswith("param_")}
    for name, value in filled.items():
        assert str(template["Parameters"][name]["Default"]) == value, name
    required = {n for n, p in template["Parameters"].items() if "Default" not in p}
    assert not required & set(filled)
    assert filled["SCPAETitle"] == "STORESCP" and filled["LoadBalancerScheme"] == "internal"


def test_usage_instructions(files, template):
    text = files["usage-instructions.txt"].decode()
    # Product overview, "Compliance": the notice, word for word.
    assert (
        "This solution is not a medical device. Do not use for medical diagnosis or treatment "
        "decisions." in text
    )
    for name, p in template["Parameters"].items():
        if "Default" not in p:
            assert name in text
    for output in template["Outputs"]:
        assert f"- {output}: " in text
    assert "deployer-policy-*.json" in text and "key-policy.json" in text


def _unwrap_sub(node):
    if isinstance(node, dict) and set(node) == {"Fn::Sub"}:
        return node["Fn::Sub"]
    if isinstance(node, dict):
        return {k: _unwrap_sub(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_unwrap_sub(v) for v in node]
    return node


def test_key_policy_file_is_the_created_keys_policy(files, template):
    created = template["Resources"]["EncryptionKey"]["Properties"]["KeyPolicy"]
    assert json.loads(files["key-policy.json"]) == _unwrap_sub(created)


def test_usage_instructions_claim_only_the_checks_the_rules_make(files, template):
    """The stack checks subnets' VPC and zones (its Rules), not their count or NAT routes."""
    text = files["usage-instructions.txt"].decode()
    assert "checks these" not in text
    messages = {a["AssertDescription"] for r in template["Rules"].values() for a in r["Assertions"]}
    claimed = [line.removeprefix("  * ") for line in text.splitlines() if line.startswith("  * ")]
    assert claimed and set(claimed) <= messages
    assert "It does not count the subnets or check their routes" in text


def test_architecture_picture_draws_the_data_flow_from_the_template(files, template):
    """The picture (AWS icons, through `diagrams`) is a PNG; its arrows are references the
    template makes, and one the template stops making stops the release."""
    from generator.documents.template_facts import TemplateFacts
    from generator.release import diagram

    png = files["architecture.png"]
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 50_000
    arrows = [(f.source, f.target) for f in diagram.flows(TemplateFacts(template))]
    assert arrows[0] == ("modality", "NetworkLoadBalancer")
    assert ("DicomBucket", "ImportQueue") in arrows and arrows[-1][1] == "DicomImportJobTable"
    broken = json.loads(json.dumps(template))
    del broken["Resources"]["DicomBucket"]["Properties"]["NotificationConfiguration"]
    with pytest.raises(GeneratorError, match=r"DicomBucket\.NotificationConfiguration no longer"):
        diagram.flows(TemplateFacts(broken))
