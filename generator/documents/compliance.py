"""Security and compliance pages generated where their facts live, in the built template:
network flows (security groups, listener, roles and resource policies), data protection (each
store's encryption, transport rule and retention), shared responsibility and support policy."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from generator.contracts import contracts
from generator.documents.conformance import ELB_POLICIES, listener_protocols, listener_summary
from generator.documents.markdown import header, table
from generator.documents.outbound import flow_logs, leaving_the_account
from generator.documents.template_facts import Resource, TemplateFacts, references
from generator.spec import ROOT, Spec

SOURCES = "the CloudFormation template and config/product.yaml"
LOG_FIELDS = ROOT / "config" / "log-fields.yaml"  # every logged field, held to the code by a test
IDENTIFIES = {"instance": "an instance (UID)", "network": "a network address", "no": "no"}
FARGATE_STORAGE_PAGE = (
    "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-storage.html"
)
NLB_ACCESS_LOGS_PAGE = (
    "https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-access-logs.html"
)
HEALTHIMAGING_ENCRYPTION_PAGE = (
    "https://docs.aws.amazon.com/healthimaging/latest/devguide/data-encryption.html"
)
LABELS = {
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "load balancer",
    "AWS::ECS::Service": "SCP tasks",
    "AWS::Lambda::Function": "function",
}
# Resource types whose policy lets AWS services in, and the property holding the policy.
RESOURCE_POLICIES = {
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::KMS::Key": "KeyPolicy",
}


# -- network flows ---------------------------------------------------------------------------
def _attached(template: TemplateFacts) -> dict[str, list[str]]:
    """Security group logical ID -> what it is attached to, in words."""
    out: dict[str, list[str]] = defaultdict(list)

    def walk(node: Any, owner: Resource) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("SecurityGroups", "SecurityGroupIds"):
                    for ref in references(value):
                        label = LABELS.get(owner.type, owner.type)
                        out[ref].append(f"{label} `{owner.logical_id}`")
                else:
                    walk(value, owner)
        elif isinstance(node, list):
            for value in node:
                walk(value, owner)

    for resource in template.resources():
        walk(resource.properties, resource)
    return out


def _members(template: TemplateFacts, group: str, attached: dict[str, list[str]]) -> str:
    if group in template.parameters:
        return f"security group {template.describe({'Ref': group})}"
    return " and ".join(attached.get(group, [])) or f"members of `{group}`"


def _peer(template: TemplateFacts, rule: dict[str, Any], attached: dict[str, list[str]]) -> str:
    for key in ("SourceSecurityGroupId", "DestinationSecurityGroupId"):
        if key in rule:
            (group,) = references(rule[key])
            return _members(template, group, attached)
    cidr = rule.get("CidrIp", rule.get("CidrIpv6"))
    if cidr in ("0.0.0.0/0", "::/0"):
        return f"anywhere (`{cidr}`)"
    return f"addresses in {template.describe(cidr)}"


def _port(template: TemplateFacts, rule: dict[str, Any]) -> str:
    if rule.get("IpProtocol") == "-1":
        return "all"
    low, high = rule.get("FromPort"), rule.get("ToPort")
    return template.describe(low) if low == high else f"{low}-{high}"


def _protocol_words(template: TemplateFacts, node: Any) -> str:
    """A listener or target protocol as encryption in transit."""
    words = {"TLS": "TLS", "HTTPS": "TLS", "TCP": "none (TCP)", "HTTP": "none (HTTP)"}
    if isinstance(node, str):
        return words.get(node, node)
    if isinstance(node, dict) and "Fn::If" in node:
        name, yes, no = node["Fn::If"]
        return (
            f"{_protocol_words(template, yes)} when {template.when(name)}, "
            f"else {_protocol_words(template, no)}"
        )
    return template.describe(node)


def _encryption(
    template: TemplateFacts, rule: dict[str, Any], to_load_balancer: bool
) -> tuple[str, str]:
    """(application protocol, encryption) of a security group rule, from the listener and
    target group that use its port."""
    listeners = list(template.resources("AWS::ElasticLoadBalancingV2::Listener"))
    (target,) = template.resources("AWS::ElasticLoadBalancingV2::TargetGroup")
    port = rule.get("FromPort")
    listener_ports = [lst.properties["Port"] for lst in listeners]
    if to_load_balancer and port in listener_ports:
        return "DICOM", listener_protocols(
            template, listeners, lambda protocol: _protocol_words(template, protocol)
        )
    if port == target.properties["Port"] or port in listener_ports:
        inside = _protocol_words(template, target.properties["Protocol"])
        return "DICOM", f"{inside}, inside the VPC"
    if str(port) == str(target.properties.get("HealthCheckPort")):
        return "health check", _protocol_words(template, target.properties["HealthCheckProtocol"])
    if port == 443:
        return "HTTPS", "TLS"
    return "-", "see description"


def _rules(template: TemplateFacts) -> Iterator[tuple[str, str, dict[str, Any], str | None]]:
    """(security group, direction, rule, condition) for inline and separate rules."""
    for sg in template.resources("AWS::EC2::SecurityGroup"):
        for key, direction in (("SecurityGroupIngress", "in"), ("SecurityGroupEgress", "out")):
            for rule in sg.properties.get(key, []):
                yield sg.logical_id, direction, rule, sg.condition
    for kind, direction in (
        ("AWS::EC2::SecurityGroupIngress", "in"),
        ("AWS::EC2::SecurityGroupEgress", "out"),
    ):
        for r in template.resources(kind):
            (group,) = references(r.properties["GroupId"])
            yield group, direction, r.properties, r.condition


def security_group_flows(template: TemplateFacts) -> list[tuple[object, ...]]:
    attached = _attached(template)
    nlb_groups = {
        g
        for lb in template.resources("AWS::ElasticLoadBalancingV2::LoadBalancer")
        for g in references(lb.properties.get("SecurityGroups", []))
    }
    rows = []
    for group, direction, rule, condition in _rules(template):
        members = _members(template, group, attached)
        peer = _peer(template, rule, attached)
        source, dest = (peer, members) if direction == "in" else (members, peer)
        to_nlb = direction == "in" and group in nlb_groups
        application, encryption = _encryption(template, rule, to_nlb)
        allowed = f"`{group}` {'ingress' if direction == 'in' else 'egress'}"
        if condition:
            allowed += f" (only when {template.when(condition)})"
        rows.append(
            (
                source,
                dest,
                f"{rule.get('IpProtocol', 'tcp').upper()} {_port(template, rule)}",
                application,
                encryption,
                allowed,
                rule.get("Description", ""),
            )
        )
    return rows


def _principal_services(template: TemplateFacts, document: dict[str, Any]) -> list[str]:
    services = []
    for statement in document.get("Statement", []):
        service = statement.get("Principal", {})
        service = service.get("Service") if isinstance(service, dict) else None
        services += service if isinstance(service, list) else [service] if service else []
    return [_principal_text(template, s) for s in services]


def _principal_text(template: TemplateFacts, service: Any) -> str:
    """A service principal as text: 'logs.<region>.amazonaws.com' for an Fn::Sub."""
    if isinstance(service, dict) and isinstance(service.get("Fn::Sub"), str):
        return template.sub(service["Fn::Sub"])
    return service if isinstance(service, str) else json.dumps(service)


def _actions(document: dict[str, Any]) -> set[str]:
    out = set()
    for statement in document.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        out |= {a.split(":")[0] for a in ([actions] if isinstance(actions, str) else actions)}
    return out


def service_flows(template: TemplateFacts) -> list[tuple[object, ...]]:
    """Calls to AWS APIs (from each role's trust and policies) and deliveries between AWS
    services (from resource policies); all HTTPS."""
    rows = []
    for role in template.resources("AWS::IAM::Role"):
        callers = _principal_services(template, role.properties["AssumeRolePolicyDocument"])
        apis = set()
        for policy in role.properties.get("Policies", []):
            apis |= _actions(policy["PolicyDocument"])
        for arn in role.properties.get("ManagedPolicyArns", []):
            apis.add(f"managed policy {template.describe(arn)}")
        if apis:
            rows.append(
                (
                    ", ".join(callers),
                    ", ".join(sorted(apis)),
                    "HTTPS 443",
                    "TLS",
                    f"IAM role `{role.logical_id}`",
                )
            )
    for kind, key in RESOURCE_POLICIES.items():
        for policy in template.resources(kind):
            for statement in policy.properties[key].get("Statement", []):
                services = _principal_services(template, {"Statement": [statement]})
                if statement.get("Effect") == "Allow" and services:
                    target = ", ".join(f"`{r}`" for r in _targets(policy))
                    actions = statement["Action"]
                    actions = actions if isinstance(actions, list) else [actions]
                    rows.append(
                        (
                            ", ".join(services),
                            f"{target}: {', '.join(actions)}",
                            "HTTPS 443",
                            "TLS",
                            f"`{policy.logical_id}` statement {statement.get('Sid', '')}".strip(),
                        )
                    )
    for permission in template.resources("AWS::Lambda::Permission"):
        (function,) = references(permission.properties["FunctionName"])
        rows.append(
            (
                permission.properties["Principal"],
                f"`{function}`: lambda:InvokeFunction",
                "HTTPS 443",
                "TLS",
                f"`{permission.logical_id}`",
            )
        )
    return rows


def _targets(policy: Resource) -> list[str]:
    """What a resource policy applies to (a key's policy: the key itself)."""
    if policy.type == "AWS::KMS::Key":
        return [policy.logical_id]
    props = policy.properties
    return references(props.get("Bucket", props.get("Queues", props.get("Topics"))))


def network_flows(spec: Spec, template: TemplateFacts) -> str:
    """docs/network-flows.md."""
    public_ip = ", ".join(
        template.describe(
            s.properties["NetworkConfiguration"]["AwsvpcConfiguration"].get(
                "AssignPublicIp", "DISABLED"
            )
        ).lower()
        for s in template.resources("AWS::ECS::Service")
    )
    endpoints = [
        f"`{e.logical_id}` ({template.describe(e.properties.get('ServiceName'))}, "
        f"{e.properties.get('VpcEndpointType', 'Gateway')})"
        + (f", only when {template.when(e.condition)}" if e.condition else "")
        for e in template.resources("AWS::EC2::VPCEndpoint")
    ]
    lbs = [
        f"`{lb.logical_id}`: scheme "
        f"{template.describe(lb.properties.get('Scheme', 'internet-facing'))}, "
        f"subnets {template.describe(lb.properties['Subnets'])}"
        for lb in template.resources("AWS::ElasticLoadBalancingV2::LoadBalancer")
    ]
    out = [
        header("generator/documents/compliance.py", SOURCES),
        f"# Network communication: {spec.name} {spec.version}",
        "",
        "Every network flow the stack allows, read from the template it ships. The SCP tasks' "
        f"public IP assignment: {public_ip}; what reaches them is what their security groups "
        "below allow.",
        "",
        f"Load balancer: {'; '.join(lbs)}.",
        "",
        "## Flows allowed by security groups",
        "",
        *table(
            (
                "From",
                "To",
                "Port",
                "Application",
                "Encryption in transit",
                "Allowed by",
                "Description",
            ),
            security_group_flows(template),
        ),
        "The security group named by the `SecurityGroupID` parameter is attached to the SCP "
        "tasks as well; its rules are yours and are not listed here.",
        "",
        "## Calls to AWS services",
        "",
        "Every call to an AWS API goes to the service's regional HTTPS endpoint (TLS); the "
        "buckets and the import queue deny any request that is not over TLS "
        "(`aws:SecureTransport`, see [data-protection.md](data-protection.md)). From the private "
        "subnets these calls "
        "leave through your NAT gateway"
        + (
            f", except what goes through the VPC endpoints {', '.join(endpoints)}"
            if endpoints
            else ""
        )
        + ". Direct stores (`DirectStore` not `None`) call HealthImaging's DICOMweb endpoint "
        "`dicom-medical-imaging.<region>.amazonaws.com` (StoreDICOM, SearchDICOMInstances) the "
        "same way, through your NAT gateway: we found no VPC interface endpoint for it in AWS's "
        "documentation, so without a NAT route every direct store falls back to the batch "
        "import (`DirectStoreFallbackAlarm`). The tasks' calls to the job table in DynamoDB "
        "(Storage Commitment; the records of direct stores and, with `CommitmentCommitOn` "
        "`Stored`, of every stored instance) take the DynamoDB gateway endpoint when the stack "
        "adds it (`CreateInterfaceEndpoints`), else the NAT route: a gateway endpoint routes "
        "by the Region's prefix list, so the SDK's usual host name reaches it, where DynamoDB's "
        "interface endpoints have no private DNS name. Each gateway endpoint is added only to "
        "the private subnets' route tables whose route to that service is not another "
        "endpoint's, and carries every request to the service from those tables, not only "
        "this product's.",
        "",
        *table(
            (
                "Caller",
                "Calls (service prefixes or resources and actions)",
                "Port",
                "Encryption",
                "Allowed by",
            ),
            service_flows(template),
        ),
    ]
    return "\n".join(out)


# -- data protection -------------------------------------------------------------------------
def _tls_only(template: TemplateFacts, kind: str, target: str) -> bool:
    """True when a resource policy of this kind denies requests without TLS on target."""
    for policy in template.resources(kind):
        if target not in _targets(policy):
            continue
        for statement in policy.properties["PolicyDocument"].get("Statement", []):
            condition = statement.get("Condition", {}).get("Bool", {})
            if statement.get("Effect") == "Deny" and condition.get("aws:SecureTransport") in (
                "false",
                False,
            ):
                return True
    return False


def _bucket_row(template: TemplateFacts, bucket: Resource) -> tuple[object, ...]:
    p = bucket.properties
    rules = p.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
    at_rest = "not encrypted"
    if rules:
        default = rules[0]["ServerSideEncryptionByDefault"]
        algorithm = template.describe(default["SSEAlgorithm"])
        key = default.get("KMSMasterKeyID")
        at_rest = {"AES256": "SSE-S3 (AES-256, S3 managed keys)"}.get(algorithm, algorithm)
        if key:
            at_rest += f", key {template.describe(key)}"
        if rules[0].get("BucketKeyEnabled"):
            at_rest += ", S3 Bucket Key"
    lifecycle = [
        _lifecycle_rule(template, rule)
        for rule in p.get("LifecycleConfiguration", {}).get("Rules", [])
    ]
    public = p.get("PublicAccessBlockConfiguration", {})
    extras = [
        "versioned" if p.get("VersioningConfiguration", {}).get("Status") == "Enabled" else "",
        "public access blocked" if public and all(public.values()) else "",
        f"access logged to `{references(p['LoggingConfiguration'])[0]}`"
        if "LoggingConfiguration" in p
        else "",
    ]
    return (
        f"S3 bucket `{bucket.logical_id}`",
        at_rest,
        "TLS only (bucket policy denies other requests)"
        if _tls_only(template, "AWS::S3::BucketPolicy", bucket.logical_id)
        else "TLS (AWS API); plain HTTP not denied",
        "; ".join(lifecycle) if lifecycle else "kept until deleted",
        _deletion(bucket),
        ", ".join(e for e in extras if e),
    )


def _lifecycle_rule(template: TemplateFacts, rule: dict[str, Any]) -> str:
    """What a lifecycle rule does, in words, and from when its days count (S3 counts expiration
    from an object's creation, a noncurrent version's from when it was replaced)."""
    said = []
    if rule.get("ExpirationInDays") is not None:
        days = template.describe(rule["ExpirationInDays"])
        if rule.get("TagFilters"):
            said.append(
                f"objects with {_filter(rule)} expire {days} days after HealthImaging imported "
                "them as primary (at the import the workflow copies each onto itself with the "
                "tag, and S3 counts the days from that copy); the others stay until deleted"
            )
        else:
            said.append(f"objects expire {days} days after they were written")
    if "NoncurrentVersionExpiration" in rule:
        days = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        said.append(f"a replaced version goes {_day_count(days)} after it was replaced")
    if "AbortIncompleteMultipartUpload" in rule:
        days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        said.append(f"unfinished uploads are aborted after {_day_count(days)}")
    if rule.get("ExpiredObjectDeleteMarker"):
        said.append("a delete marker with no version left behind it is removed")
    return "; ".join(said)


def _day_count(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


def _days(template: TemplateFacts, seconds: Any) -> str:
    return f"{template.number(seconds) / 86400:g}"


def _filter(rule: dict[str, Any]) -> str:
    prefix = rule.get("Prefix") or rule.get("Filter", {}).get("Prefix")
    tags = rule.get("TagFilters") or rule.get("Filter", {}).get("TagFilters")
    parts = [f"prefix `{prefix}`" if prefix else ""]
    parts += [f"tag `{t['Key']}={t['Value']}`" for t in tags or []]
    return ", ".join(p for p in parts if p)


def _deletion(resource: Resource) -> str:
    return {
        "Retain": "kept when the stack is deleted",
        "Snapshot": "snapshot when the stack is deleted",
    }.get(resource.deletion_policy or "", "deleted with the stack")


def _log_group_name(template: TemplateFacts, group: Resource) -> str:
    """The name an operator finds a log group by: its LogGroupName, else the stack output that
    gives it, else (a name CloudFormation generates) the logical ID it starts with."""
    if "LogGroupName" in group.properties:
        return template.describe(group.properties["LogGroupName"])
    output = template.output_for(group.logical_id)
    if output:
        return f"(stack output `{output}`)"
    return f"`<stack-name>-{group.logical_id}-<suffix>`"


def _kms(template: TemplateFacts, key: Any, default: str) -> str:
    return f"KMS key {template.describe(key)}" if key else default


def store_rows(template: TemplateFacts) -> list[tuple[object, ...]]:
    rows = [_bucket_row(template, b) for b in template.resources("AWS::S3::Bucket")]
    for t in template.resources("AWS::DynamoDB::Table"):
        sse = t.properties.get("SSESpecification", {})
        pitr = t.properties.get("PointInTimeRecoverySpecification", {})
        ttl = t.properties.get("TimeToLiveSpecification", {})
        rows.append(
            (
                f"DynamoDB table `{t.logical_id}`",
                _kms(template, sse.get("KMSMasterKeyId"), "AWS managed key (aws/dynamodb)")
                if sse.get("SSEEnabled")
                else "DynamoDB default encryption (AWS owned key)",
                "TLS (DynamoDB accepts HTTPS only)",
                f"an item with attribute `{ttl['AttributeName']}` (epoch seconds) is deleted "
                "after that time (time to live, typically within two days); the others are "
                "kept until deleted (CONTRACTS.md lists which items carry it)"
                if ttl.get("Enabled")
                else "kept until deleted",
                _deletion(t),
                "point-in-time recovery (35 days)"
                if pitr.get("PointInTimeRecoveryEnabled")
                else "",
            )
        )
    for q in template.resources("AWS::SQS::Queue"):
        p = q.properties
        rows.append(
            (
                f"SQS queue `{q.logical_id}`",
                _kms(template, p.get("KmsMasterKeyId"), "SSE-SQS (SQS managed keys)")
                if p.get("KmsMasterKeyId") or p.get("SqsManagedSseEnabled")
                else "not encrypted",
                "TLS only (queue policy denies other requests)"
                if _tls_only(template, "AWS::SQS::QueuePolicy", q.logical_id)
                else "TLS (AWS API)",
                f"messages kept {_days(template, p.get('MessageRetentionPeriod', 345600))} days",
                _deletion(q),
                "",
            )
        )
    for topic in template.resources("AWS::SNS::Topic"):
        key = topic.properties.get("KmsMasterKeyId")
        rows.append(
            (
                f"SNS topic `{topic.logical_id}`",
                _kms(template, key, "not encrypted"),
                "TLS (AWS API)",
                "not stored (delivered to subscribers)",
                _deletion(topic),
                "alarm notifications only, no PHI",
            )
        )
    for group in template.resources("AWS::Logs::LogGroup"):
        p = group.properties
        rows.append(
            (
                f"CloudWatch Logs {_log_group_name(template, group)}",
                _kms(template, p.get("KmsKeyId"), "CloudWatch Logs service encryption"),
                "TLS (AWS API)",
                f"{template.describe(p['RetentionInDays'])} days"
                if "RetentionInDays" in p
                else "kept forever",
                _deletion(group),
                "no patient attributes; UIDs as LogUIDs says (see What the logs hold)",
            )
        )
    for store in template.resources("AWS::HealthImaging::Datastore"):
        key = store.properties.get("KmsKeyArn")
        rows.append(
            (
                f"HealthImaging data store `{store.logical_id}`"
                + (f" (only when {template.when(store.condition)})" if store.condition else ""),
                _kms(
                    template,
                    key,
                    f"AWS owned key ([HealthImaging]({HEALTHIMAGING_ENCRYPTION_PAGE}))",
                ),
                "TLS (AWS API)",
                "kept until deleted",
                _deletion(store),
                "the images' long-term home",
            )
        )
    for key in template.resources("AWS::KMS::Key"):
        rows.append(
            (
                f"KMS key `{key.logical_id}`"
                + (f" (only when {template.when(key.condition)})" if key.condition else ""),
                "FIPS-validated HSMs (AWS KMS)",
                "TLS (AWS API)",
                f"deletion waits {key.properties.get('PendingWindowInDays', 30)} days",
                _deletion(key),
                "rotation on" if key.properties.get("EnableKeyRotation") else "rotation off",
            )
        )
    return rows


def data_protection(spec: Spec, template: TemplateFacts) -> str:
    """docs/data-protection.md."""
    container = template.container()
    return "\n".join(
        [
            header("generator/documents/compliance.py", SOURCES),
            f"# Data protection: {spec.name} {spec.version}",
            "",
            "Where DICOM data and its metadata rest, how each store is encrypted at rest and in "
            "transit, and how long it keeps data, read from the template. Parameters are shown "
            "with their defaults; your stack's values are what you set.",
            "",
            *table(
                ("Store", "At rest", "In transit", "Retention", "On stack deletion", "Also"),
                store_rows(template),
            ),
            "## In the SCP task",
            "",
            "- Instances being received are streamed to a temporary file on the task's "
            "ephemeral storage, which Fargate encrypts with AES-256 "
            f"([Fargate task storage]({FARGATE_STORAGE_PAGE})), and removed once stored or "
            "refused. The container's root filesystem is "
            + ("read-only." if container.get("ReadonlyRootFilesystem") else "writable."),
            "- Nothing is acknowledged before it is durably in the DICOM bucket; an instance is "
            "never changed (no transcoding, no attribute coercion).",
            "- DICOM in transit: see [network-flows.md](network-flows.md) (TLS at the load "
            "balancer when "
            "`TLSCertificateARN` is set; TCP otherwise).",
            "",
            *access_logs(template),
            *log_privacy(spec),
        ]
    )


def access_logs(template: TemplateFacts) -> list[str]:
    """What the load balancer's access logs hold. Elastic Load Balancing guide, "Access logs for
    your Network Load Balancer": they are created only if the load balancer has a TLS listener,
    and hold information about TLS requests only."""
    lines = []
    for lb in template.resources("AWS::ElasticLoadBalancingV2::LoadBalancer"):
        attributes = {a["Key"]: a["Value"] for a in lb.properties.get("LoadBalancerAttributes", [])}
        if str(attributes.get("access_logs.s3.enabled")).lower() != "true":
            continue
        listeners = [
            lst
            for lst in template.resources("AWS::ElasticLoadBalancingV2::Listener")
            if lst.properties.get("Protocol") == "TLS"
        ]
        when = [template.when(lst.condition) for lst in listeners if lst.condition]
        tls = (
            f"only when it has a TLS listener (here: when {' or '.join(when)})"
            if when
            else "only for its TLS listener"
            if listeners
            else "never: it has no TLS listener"
        )
        lines += [
            "## Load balancer access logs",
            "",
            f"`{lb.logical_id}` writes access logs to "
            f"{template.describe(attributes.get('access_logs.s3.bucket'))} (prefix "
            f"`{attributes.get('access_logs.s3.prefix', '')}`), but Elastic Load Balancing "
            f"writes them {tls}, and they describe TLS connections only ([access logs for "
            f"your Network Load Balancer]({NLB_ACCESS_LOGS_PAGE})). With a TCP listener there "
            "are none: VPC Flow Logs are then the record of who connected "
            "([shared-responsibility.md](shared-responsibility.md)).",
            "",
        ]
    return lines


def log_privacy(spec: Spec) -> list[str]:
    """What the logs hold, field by field (config/log-fields.yaml, which a test holds to the
    code's log calls), and how LogUIDs changes it."""
    import yaml

    fields = yaml.safe_load(LOG_FIELDS.read_text())
    who = {"scp": "SCP", "workflow": "workflow"}
    rows = [
        (f"`{name}`", who[part], f["meaning"], IDENTIFIES[f["identifies"]])
        for part, entries in fields.items()
        for name, f in sorted(entries.items())
    ]
    uids = spec.parameter("LogUIDs")
    return [
        "## What the logs hold",
        "",
        "The SCP and the workflow functions write JSON lines to CloudWatch Logs, and the SCP "
        "metrics (counts, bytes, latencies). No patient name, patient ID, birth date, "
        "accession number or any other attribute value of a dataset is ever logged, and the "
        "state machine's logs exclude execution data. Two kinds of value can still point at a "
        "patient or a site, and many privacy officers treat them as identifiers:",
        "",
        "- Study, Series and SOP Instance UIDs: in `studyInstanceUID` and `sopInstanceUID`, "
        "and inside S3 keys (`incoming/{batch}/{study}/{series}/{sop}.dcm`) in `key`, "
        "`reason` and `error`.",
        "- The IP address of the connecting peer (`peer`: the modality's, or the load "
        "balancer's where it does not pass the client's address on).",
        "",
        f"`{uids.name}` (the SCP's `LOG_UIDS`, default `{uids.properties['Default']}`): "
        f"{uids.description.split(' docs/')[0]} DICOM's own UIDs (SOP Classes, transfer "
        "syntaxes, under 1.2.840.10008) stay readable. The workflow functions log S3 keys only "
        "in error lines (`key`, `error`); `LogUIDs` does not change them.",
        "",
        "Every field, as the code writes it:",
        "",
        *table(("Field", "Written by", "Holds", "Can identify"), rows),
    ]


# -- shared responsibility -------------------------------------------------------------------
def shared_responsibility(spec: Spec, template: TemplateFacts) -> str:
    """docs/shared-responsibility.md."""
    stores = store_rows(template)
    encrypted = sum(1 for r in stores if "not encrypted" not in str(r[1]))
    alarms = len(list(template.resources("AWS::CloudWatch::Alarm")))
    roles = len(list(template.resources("AWS::IAM::Role")))
    (service,) = template.resources("AWS::ECS::Service")
    network = service.properties["NetworkConfiguration"]["AwsvpcConfiguration"]
    container = template.container()
    retained = [f"`{r.logical_id}`" for r in template.resources() if r.deletion_policy == "Retain"]
    _, _, policy = listener_summary(template)
    protocols = " and ".join(ELB_POLICIES[policy][0])
    dashboards = len(template.deployed("AWS::CloudWatch::Dashboard"))
    routed = [
        f"`{e.logical_id}`"
        for e in template.deployed("AWS::EC2::VPCEndpoint")
        if "RouteTableIds" in e.properties
    ]
    stack = [
        f"Encrypts the stores it creates at rest ({encrypted} of {len(stores)} stores; see "
        "[data-protection.md](data-protection.md)) and denies non-TLS requests to its buckets "
        "and queue.",
        f"Offers DICOM over {protocols} at the load balancer (`{policy}`) when you give a "
        "certificate, and admits only the address ranges you name "
        "([network-flows.md](network-flows.md)).",
        f"Runs the SCP in {template.describe(network['Subnets'])}, public IP "
        f"{template.describe(network.get('AssignPublicIp', 'DISABLED')).lower()}, root "
        f"filesystem {'read-only' if container.get('ReadonlyRootFilesystem') else 'writable'}, "
        "as a non-root user (the image's `USER`).",
        f"Grants each function, task and service its own IAM role ({roles} roles), scoped to "
        "the resources it uses except for actions AWS offers no resource-level permission for "
        "(each such case is commented in the generator).",
        "Acknowledges an instance only after it is durably in the DICOM bucket, and never "
        "changes it (retention of each store: [data-protection.md](data-protection.md)).",
        f"Creates {alarms} CloudWatch alarms ([runbook.md](runbook.md)) and {dashboards} "
        f"dashboard(s); keeps "
        "PHI out of logs.",
        "Keeps these resources when the stack is deleted: " + (", ".join(retained) or "none") + ".",
    ]
    hospital = [
        "Sign the AWS Business Associate Addendum (HIPAA) or your jurisdiction's equivalent "
        "before sending PHI, and use only HIPAA-eligible services around the stack.",
        "Provide the VPC, private subnets with a NAT gateway, and subnets for the load "
        "balancer; route tables and network ACLs stay yours"
        + (
            f" (the stack adds the S3 gateway endpoint {', '.join(routed)} to the private "
            "subnets' route tables)."
            if routed
            else "."
        ),
        "Set `PeerCIDR1`-`PeerCIDR3` to your sites' ranges only. The stack refuses 0.0.0.0/0 "
        "on an internet-facing load balancer without `TLSCertificateARN` (Rule "
        "NoPlainDicomFromTheWholeInternet); avoid it with TLS too.",
        "Set `TLSCertificateARN` (an ACM certificate) whenever DICOM crosses a network you do "
        "not control; configure the modalities for TLS.",
        "Subscribe your operations address to the alarm topic and act on the runbook.",
        "Control who may read the buckets, the table and the data store (IAM, AWS Organizations "
        "policies), and review CloudTrail and the access logs.",
        "Decide retention and deletion of images under your legal duties; delete retained "
        "resources yourself when you leave.",
        "Configure modalities (AE titles, port) and verify images arrive in HealthImaging.",
        "Keep the stack up to date with the product's releases "
        "([support-policy.md](support-policy.md)).",
        flow_logs(),
    ]
    aws = [
        "Security of the cloud: data centres, hardware, the managed services' software "
        "(ECS Fargate, S3, DynamoDB, SQS, Lambda, Step Functions, HealthImaging, KMS).",
    ]
    return "\n".join(
        [
            header("generator/documents/compliance.py", SOURCES),
            f"# Shared responsibility: {spec.name} {spec.version}",
            "",
            "Three parties keep images safe: AWS (security *of* the cloud), this product's "
            "stack (what the template builds and the SCP does), and you, the hospital "
            "(everything configured and decided in your account).",
            "",
            contracts().not_a_medical_device_markdown,
            "",
            "## What AWS does",
            "",
            *(f"- {line}" for line in aws),
            "",
            "## What the stack does",
            "",
            *(f"- {line}" for line in stack),
            "",
            "## What you, the hospital, do",
            "",
            *(f"- {line}" for line in hospital),
            "",
            *leaving_the_account(spec, template),
        ]
    )


def support_policy(spec: Spec) -> str:
    """docs/support-policy.md."""
    return "\n".join(
        [
            header("generator/documents/compliance.py", "config/product.yaml"),
            f"# Support policy: {spec.name}",
            "",
            f"Current release: {spec.version}.",
            "",
            "## What is supported",
            "",
            "- The latest release, and the release before it for 90 days after a new one is "
            "published on AWS Marketplace.",
            f"- Deployment in one of the Regions where AWS HealthImaging runs "
            f"({', '.join(spec.regions)}) with the template as shipped, unmodified, with "
            "parameters within their documented constraints.",
            "- Modalities and PACS that conform to DICOM as the Conformance Statement "
            "([conformance-statement.md](conformance-statement.md)) describes.",
            "",
            "## How to get help",
            "",
            f"- E-mail <{spec.seller_contact}>, or use the seller contact on the product's "
            "AWS Marketplace listing. Include the "
            "stack name, the release, the region, and the SCP log lines around the problem "
            "(they carry no PHI). Never send images or PHI.",
            "- Security vulnerabilities: see [SECURITY.md](../SECURITY.md) (a private channel, "
            "with response times).",
            "",
            "## Response targets (business days)",
            "",
            *table(
                ("Severity", "Example", "First answer"),
                [
                    ("Critical", "no image reaches S3; images lost", "1 day"),
                    ("High", "imports fail for all batches; alarms fire", "2 days"),
                    ("Normal", "a question, one modality's configuration", "5 days"),
                ],
            ),
            "## Updates",
            "",
            "Fixes ship as new releases (a new template and image); update the stack with the "
            "new template. Security fixes are released for the supported releases. The image "
            "carries its software bill of materials in the release bundle.",
            "",
            "## Not covered",
            "",
            "Your AWS account, network, NAT gateway, modalities and PACS; AWS service outages "
            "(AWS Support); clinical use of any kind: the product is not a medical device.",
            "",
        ]
    )
