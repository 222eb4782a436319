"""What an AWS Marketplace submission needs, generated from the spec and the built template:
the architecture picture (the data flow with AWS's icons, generator/release/diagram.py) and,
beside it for review, the graph of every resource (Graphviz DOT rendered to SVG and PNG), the IAM
policies a deployer
needs (from the CloudFormation registry schemas of the template's resource types), the console
quick-create URL pattern, and the usage instructions text."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cfnlint

from generator.contracts import contracts
from generator.documents.template_facts import TemplateFacts
from generator.errors import GeneratorError
from generator.release import diagram
from generator.spec import Spec
from generator.template.kms import key_policy

# A managed policy holds at most 6,144 characters without whitespace (IAM quotas).
MANAGED_POLICY_CHARACTERS = 6144
# Permissions the CloudFormation registry schemas cannot give: the stack itself, the console's
# checks of the AWS-specific parameter types and of the Rules, and the custom resource.
STACK_PERMISSIONS = [
    "cloudformation:CreateChangeSet",
    "cloudformation:CreateStack",
    "cloudformation:DeleteChangeSet",
    "cloudformation:DeleteStack",
    "cloudformation:DescribeChangeSet",
    "cloudformation:DescribeStackEvents",
    "cloudformation:DescribeStackResources",
    "cloudformation:DescribeStacks",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:GetTemplate",
    "cloudformation:GetTemplateSummary",
    "cloudformation:ListStackResources",
    "cloudformation:UpdateStack",
    "cloudformation:ValidateTemplate",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
]
CUSTOM_RESOURCE_PERMISSIONS = {"Custom::RouteTables": ["lambda:InvokeFunction"]}
# What creating a resource needs beyond its registry schema's handlers. A HealthImaging data store
# with a customer managed key: the creator's IAM policy in the HealthImaging developer guide
# ("Data encryption", "Required IAM permissions for using a customer managed KMS key",
# https://docs.aws.amazon.com/healthimaging/latest/devguide/data-encryption.html) adds
# kms:ReEncrypt* to the schema's CreateGrant, GenerateDataKey, RetireGrant and Decrypt;
# GenerateDataKey* also covers GenerateDataKeyWithoutPlaintext, which HealthImaging uses with it.
EXTRA_PERMISSIONS = {"AWS::HealthImaging::Datastore": ["kms:GenerateDataKey*", "kms:ReEncrypt*"]}
HANDLERS = ("create", "read", "update", "delete")

# Architecture diagram: one box per concern; repeated helpers are drawn once with a count.
CLUSTERS = {
    "Network": ("AWS::EC2::", "AWS::ElasticLoadBalancingV2::", "Custom::"),
    "SCP service (ECS Fargate)": ("AWS::ECS::", "AWS::ApplicationAutoScaling::"),
    "Storage": ("AWS::S3::", "AWS::DynamoDB::", "AWS::HealthImaging::"),
    "Import workflow": ("AWS::SQS::", "AWS::Lambda::", "AWS::StepFunctions::", "AWS::Events::"),
    "Monitoring": ("AWS::CloudWatch::", "AWS::SNS::", "AWS::Logs::"),
    "Security": ("AWS::KMS::", "AWS::IAM::", "AWS::RolesAnywhere::"),
}
GROUPED = {
    "AWS::IAM::Role": "IAM roles",
    "AWS::Logs::LogGroup": "Log groups",
    "AWS::CloudWatch::Alarm": "Alarms",
    "AWS::Lambda::Permission": "Lambda permissions",
    "AWS::EC2::SecurityGroupIngress": "Optional ingress rules",
    "AWS::S3::BucketPolicy": "Bucket policies",
}
HIDDEN = {"AWS::CloudFormation::WaitConditionHandle"}
# References drawn as words, not edges: the dashboard names nearly everything, and everything
# encrypted uses the key.
NO_EDGES_FROM = {"AWS::CloudWatch::Dashboard", *GROUPED}
NO_EDGES_TO = {"AWS::KMS::Key", *GROUPED}


def _references(node: Any) -> set[str]:
    """Logical IDs a resource refers to: Ref, Fn::GetAtt, ${X} and ${X.Attr} in Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([A-Za-z0-9.]+)\}", text)}
                found |= _references(value[1:] if isinstance(value, list) else [])
            else:
                found |= _references(value)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item)
    return found


def _node(name: str, kind: str) -> str:
    return "n_" + re.sub(r"\W", "_", GROUPED.get(kind, name))


def architecture_dot(spec: Spec, template: dict[str, Any]) -> str:
    """The template's resources as a Graphviz digraph, clustered by concern; conditional
    resources are dashed and say their condition; edges follow Ref/GetAtt/Sub references."""
    resources = {n: r for n, r in template["Resources"].items() if r["Type"] not in HIDDEN}
    counts: dict[str, int] = defaultdict(int)
    for r in resources.values():
        counts[r["Type"]] += 1
    nodes: dict[str, tuple[str, str]] = {}  # node -> (cluster, attributes)
    for name, r in sorted(resources.items()):
        kind = r["Type"]
        cluster = next(c for c, prefixes in CLUSTERS.items() if kind.startswith(prefixes))
        if kind in GROUPED:
            label = f"{GROUPED[kind]} ({counts[kind]})\\n{kind}"
            style = "rounded"
        else:
            condition = f"\\nif {r['Condition']}" if "Condition" in r else ""
            label = f"{name}\\n{kind}{condition}"
            style = "rounded,dashed" if condition else "rounded"
        nodes[_node(name, kind)] = (cluster, f'label="{label}", style="{style}"')
    edges = sorted(
        {
            (_node(name, r["Type"]), _node(target, resources[target]["Type"]))
            for name, r in resources.items()
            for target in _references(r) | set(_depends_on(r))
            if target in resources
            and r["Type"] not in NO_EDGES_FROM
            and resources[target]["Type"] not in NO_EDGES_TO
            and _node(name, r["Type"]) != _node(target, resources[target]["Type"])
        }
    )
    lines = [
        "digraph architecture {",
        f'  label="{spec.name} {spec.version}: resources of the CloudFormation template";',
        '  labelloc="t"; rankdir="LR"; fontname="Helvetica";',
        '  node [shape="box", fontname="Helvetica", fontsize="10"];',
        '  edge [color="#555555", arrowsize="0.6", fontname="Helvetica", fontsize="10"];',
        '  modality [label="Modalities and PACS\\n(DICOM SCU)", shape="ellipse"];',
        '  modality -> n_NetworkLoadBalancer [label="DICOM (TCP or TLS), SCPPort"];',
    ]
    notes = {
        "Security": "Security: every bucket, table, queue, topic, log group and the data store"
        "\\nuse EncryptionKey, or the key given as KmsKeyArn",
        "Monitoring": "Monitoring: the dashboard shows every part",
    }
    for i, cluster in enumerate(CLUSTERS):
        members = sorted(n for n, (c, _) in nodes.items() if c == cluster)
        title = notes.get(cluster, cluster)
        lines.append(f'  subgraph cluster_{i} {{ label="{title}"; style="rounded";')
        lines += [f"    {n} [{nodes[n][1]}];" for n in members]
        lines.append("  }")
    lines += [f"  {a} -> {b};" for a, b in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _depends_on(resource: dict[str, Any]) -> list[str]:
    depends = resource.get("DependsOn", [])
    return [depends] if isinstance(depends, str) else depends


def render(dot: str, fmt: str) -> bytes:
    """Graphviz `dot` output in fmt ("svg" or "png")."""
    exe = shutil.which("dot")
    if exe is None:
        raise GeneratorError(
            "Graphviz `dot` not found; install the Debian package graphviz (make deps does)"
        )
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot.encode(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise GeneratorError(f"dot -T{fmt} failed: {proc.stderr.decode(errors='replace')[:500]}")
    return proc.stdout


@cache
def _registry() -> tuple[dict[str, str], Path]:
    """cfn-lint's copy of the CloudFormation registry schemas (us-east-1, the product's Region)."""
    base = Path(cfnlint.__file__).parent / "data" / "schemas"
    return json.loads((base / "providers" / "us-east-1.json").read_text()), base / "resources"


def handler_permissions(resource_type: str) -> list[str]:
    """The create, read, update and delete handler permissions of one resource type, from its
    registry schema (`handlers.<action>.permissions`), and EXTRA_PERMISSIONS."""
    if resource_type in CUSTOM_RESOURCE_PERMISSIONS:
        return CUSTOM_RESOURCE_PERMISSIONS[resource_type]
    providers, schemas = _registry()
    if resource_type not in providers:
        raise GeneratorError(
            f"{resource_type}: no CloudFormation registry schema in cfn-lint; add its "
            "permissions to CUSTOM_RESOURCE_PERMISSIONS in generator/release/marketplace.py"
        )
    handlers = json.loads((schemas / f"{providers[resource_type]}.json").read_text())
    handlers = handlers.get("handlers") or {}
    listed = {p for action in HANDLERS for p in handlers.get(action, {}).get("permissions", [])}
    return sorted(listed | set(EXTRA_PERMISSIONS.get(resource_type, [])))


def deployer_policies(template: dict[str, Any]) -> list[dict[str, Any]]:
    """IAM policy documents that together let a principal create, update and delete the stack,
    each within the managed-policy size; actions are grouped by service."""
    types = sorted({r["Type"] for r in template["Resources"].values()})
    actions = {a for t in types for a in handler_permissions(t)} | set(STACK_PERMISSIONS)
    by_service: dict[str, list[str]] = defaultdict(list)
    for action in sorted(actions):
        by_service[action.split(":")[0]].append(action)
    policies: list[list[dict[str, Any]]] = [[]]
    for service, service_actions in sorted(by_service.items()):
        statement = {
            "Sid": re.sub(r"[^A-Za-z0-9]", "", service.title()),
            "Effect": "Allow",
            "Action": service_actions,
            "Resource": "*",
        }
        candidate = policies[-1] + [statement]
        if len(_compact({"Version": "2012-10-17", "Statement": candidate})) > (
            MANAGED_POLICY_CHARACTERS
        ):
            policies.append([statement])
        else:
            policies[-1] = candidate
    return [{"Version": "2012-10-17", "Statement": s} for s in policies]


def _compact(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def quick_create_url(spec: Spec, template: dict[str, Any]) -> str:
    """The console quick-create link pattern (CloudFormation user guide, "Creating quick-create
    links for stacks"), one line per supported Region (`region: link`): the template URL is a
    placeholder, each parameter with a default is pre-filled with it, the required ones are
    left for the buyer."""
    params = "".join(
        f"&param_{name}={quote(str(p['Default']), safe='')}"
        for name, p in template["Parameters"].items()
        if "Default" in p and p["Default"] != ""
    )
    return "".join(
        f"{region}: https://{region}.console.aws.amazon.com/cloudformation/home?region={region}"
        f"#/stacks/create/review?templateURL={{TemplateURL}}&stackName=storescp{params}\n"
        for region in spec.regions
    )


def key_policy_json() -> str:
    """The key policy of the key this stack creates, with ${AWS::...} left for the buyer to
    fill: what their own key (KmsKeyArn) must allow."""

    def plain(node: Any) -> Any:
        if hasattr(node, "to_dict"):
            node = node.to_dict()
        if isinstance(node, dict) and set(node) == {"Fn::Sub"}:
            return node["Fn::Sub"]
        if isinstance(node, dict):
            return {k: plain(v) for k, v in node.items()}
        if isinstance(node, list):
            return [plain(v) for v in node]
        return node

    return json.dumps(plain(key_policy()), indent=2) + "\n"


def usage_instructions(spec: Spec, template: dict[str, Any]) -> str:
    """The listing's usage instructions, from the spec's parameters and outputs."""
    required = [n for n, p in template["Parameters"].items() if "Default" not in p]
    outputs = template["Outputs"]
    # What the Rules check about the network, in their own words; nothing else is claimed.
    network_checks = [
        a["AssertDescription"]
        for rule in template.get("Rules", {}).values()
        for a in rule["Assertions"]
        if "subnet" in a["AssertDescription"].lower()
    ]
    lines = [
        f"{spec.name} {spec.version}: usage instructions",
        "",
        contracts().not_a_medical_device,
        "",
        f"Regions: {', '.join(spec.regions)} (where AWS HealthImaging runs); the stack refuses",
        "any other Region before it creates anything.",
        "",
        "Before you launch",
        "- A VPC with two or more private subnets (with a route to a NAT gateway) in different",
        "  Availability Zones; for an internet-facing load balancer, public subnets in the same",
        "  zones. Before it creates anything the stack checks (CloudFormation Rules):",
        *(f"  * {check}" for check in network_checks),
        "  It does not count the subnets or check their routes: providing them is yours.",
        "- Permissions to create the stack: attach the policies in deployer-policy-*.json.",
        "- Optional: an ACM certificate for DICOM over TLS (TLSCertificateARN), your own KMS key",
        "  (KmsKeyArn), an existing HealthImaging data store (DatastoreId).",
        "",
        "Network exposure (secure by default)",
        *(
            f"- {name}: {spec.parameter(name).description}"
            for name in ("LoadBalancerScheme", "TLSCertificateARN", "PeerCIDR1")
        ),
        "",
        "Launch",
        "1. Subscribe to the product, choose the CloudFormation fulfillment option and launch.",
        f"2. Fill the required parameters: {', '.join(required)}.",
        "3. Review the optional parameters (defaults shown in the console), acknowledge that the",
        "   stack creates IAM roles, and create the stack.",
        "",
        "After the stack is created",
        *(f"- {name}: {o['Description']}" for name, o in outputs.items()),
        "- Configure each modality with the host NetworkLoadBalancerDNS, the port DICOMPort and",
        "  the called AE title DICOMAETitle; test with a C-ECHO (e.g. dcmtk echoscu).",
        "- With AlarmEmail set, confirm the subscription e-mail SNS sends, or the alarms reach",
        "  nobody.",
        "",
        "Your own KMS key (KmsKeyArn) must allow what the key this stack creates allows: see",
        "key-policy.json (replace ${AWS::Partition}, ${AWS::Region} and ${AWS::AccountId}).",
        "",
        "Deleting the stack keeps the data: the S3 buckets, the job table, the data store and the",
        "key this stack created are retained (DeletionPolicy Retain).",
        "",
    ]
    return "\n".join(lines)


def files(spec: Spec, template_json: str) -> dict[str, bytes]:
    """dist/<version>/marketplace/ by file name."""
    template = json.loads(template_json)
    dot = architecture_dot(spec, template)
    policies = {
        f"deployer-policy-{i}.json": (json.dumps(p, indent=2) + "\n").encode()
        for i, p in enumerate(deployer_policies(template), start=1)
    }
    return {
        "architecture.png": diagram.render_png(spec, TemplateFacts(template)),
        "resource-graph.dot": dot.encode(),
        "resource-graph.svg": render(dot, "svg"),
        "resource-graph.png": render(dot, "png"),
        **policies,
        "key-policy.json": key_policy_json().encode(),
        "quick-create-url.txt": quick_create_url(spec, template).encode(),
        "usage-instructions.txt": usage_instructions(spec, template).encode(),
    }
