"""docs/troubleshooting.md: for each symptom a hospital sees, the cause and the fix.

The lists come from where the behaviour lives, so a new one cannot go undocumented: association
rejections from `scp.admission` (each `Rejection` constant), C-STORE statuses from
`scp.statuses.STORE_STATUSES`, stack creation guards from the built template's Rules, the
workflow's failure states and its backoff from the state machine definition. A status or
rejection without a fix below stops the generator (GeneratorError).
"""

from __future__ import annotations

from typing import Any

from generator.documents.conformance import ELB_POLICIES, listener_summary
from generator.documents.markdown import header, table
from generator.documents.template_facts import TemplateFacts
from generator.errors import GeneratorError
from generator.spec import Spec
from scp import admission, statuses
from scp.admission import Rejection
from scp.statuses import STORE_STATUSES, StoreStatus

HEADER = header(
    "generator/documents/troubleshooting.py",
    "scp/admission.py, scp/statuses.py, the state machine and the template",
)
# CloudFormation user guide, "DeletionPolicy attribute": Retain keeps a resource when its stack
# is deleted and, unlike RetainExceptOnCreate, also when the creating operation rolls back.
DELETION_POLICY_PAGE = (
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
    "aws-attribute-deletionpolicy.html"
)
QUOTAS_PAGE = (
    "https://docs.aws.amazon.com/servicequotas/latest/userguide/request-quota-increase.html"
)
# What to do about each association rejection (scp/admission.py), by its reason.
REJECTION_FIXES: dict[str, str] = {
    admission.CALLED_AE_UNKNOWN.reason: "Set the modality's called AE title to the stack "
    "output `DICOMAETitle` (parameter `SCPAETitle`), or set `RequireCalledAETitle` to false.",
    admission.CALLING_AE_REFUSED.reason: "Add the modality's own AE title to "
    "`RequireCallingAETitle` (comma-separated; stack update), or correct the AE title "
    "configured on the modality.",
    admission.LIMIT_EXCEEDED.reason: "Transient: the modality retries. If it persists, raise "
    "`MaximumAssociations` (per task) or `TaskDesiredCount`/`AutoscaleMaxCapacity`, or make "
    "the modality reuse one association for a study instead of one per image.",
    admission.DRAINING.reason: "Transient: the task is stopping (scale-in or a deployment); "
    "the modality's next attempt reaches another task. Nothing to do unless it persists.",
}
# What to do about each C-STORE failure status (scp/statuses.py), by its code.
STATUS_FIXES: dict[int, str] = {
    statuses.OUT_OF_RESOURCES.code: "The modality resends later. Find the `store-failed` line "
    "in the SCP log group (stack output `SCPLogGroupName`): an S3 error names its code "
    "(AccessDenied: the task role or a KMS key policy; SlowDown: retry). Nothing was stored, "
    "unless the reason reads `stored, but not recorded for storage commitment` "
    "(`CommitmentCommitOn` Stored): then the job table refused the record (throttling, "
    "AccessDenied, its KMS key) and the object is in the bucket and imported as usual.",
    statuses.NO_DISK_SPACE.code: "The task's temporary storage is full (log event "
    "`disk-low`): fewer concurrent large transfers per task (`MaximumAssociations`), or more "
    "tasks. The modality resends later.",
    statuses.DATASET_MISMATCH.code: "A modality or PACS error: the SOP Class or Instance UID "
    "in the request disagrees with the dataset. Fix the sender's export; the instance is not "
    "stored.",
    statuses.CANNOT_UNDERSTAND.code: "The file is damaged or truncated at the sender: "
    "re-export it (dcmtk `dcmdump` shows where it breaks). Nothing was stored.",
    statuses.UNEXPECTED_ERROR.code: "Read the SCP log line for the association (it names the "
    "error), and send it to support with the release; the modality may resend.",
    statuses.INVALID_UID.code: "The sender wrote a UID with characters other than digits and "
    "dots, or longer than 64 characters: fix the sender.",
    statuses.NOT_IMPORTABLE.code: "HealthImaging needs a Study and Series Instance UID: fix the "
    "sender (or its coercion rules) so that both are set.",
    statuses.REFUSED_BY_HEALTHIMAGING.code: "Only for direct stores (`DirectStore`): the SCP "
    "log line `store-failed` (status 0xC214) gives HealthImaging's Failure Reason. Fix the "
    "instance at the sender (HealthImaging's import rules apply), or send it from an AE title "
    "that is not routed direct, so that it takes the batch import, whose result "
    "`storescp-lookup` shows.",
    statuses.NOT_AUTHORISED.code: "`RemoteAETitles` (the SCP's `REMOTE_AES`) lists the calling AE "
    "title without `store`: add `store` to its permissions (e.g. `CT1=host:104:store+commitment`), "
    "or remove the entry if the AE only sends (AEs not listed may store).",
}


def rejections() -> list[Rejection]:
    """Every A-ASSOCIATE-RJ the SCP can send: the Rejection constants of scp/admission.py."""
    return [v for v in vars(admission).values() if isinstance(v, Rejection)]


def _rejection_rows() -> list[tuple[object, ...]]:
    missing = [r.reason for r in rejections() if r.reason not in REJECTION_FIXES]
    if missing:
        raise GeneratorError(
            f"scp/admission.py rejections {missing} have no fix: add them to REJECTION_FIXES in "
            "generator/documents/troubleshooting.py"
        )
    return [
        (
            f"`{r.reason}`",
            f"{r.result} ({'permanent' if r.result == 1 else 'transient'}) / {r.source} / "
            f"{r.diagnostic}",
            REJECTION_FIXES[r.reason],
        )
        for r in rejections()
    ]


def _status_rows() -> list[tuple[object, ...]]:
    failures: list[StoreStatus] = [s for s in STORE_STATUSES if s.code != statuses.SUCCESS.code]
    missing = [f"0x{s.code:04X}" for s in failures if s.code not in STATUS_FIXES]
    if missing:
        raise GeneratorError(
            f"scp/statuses.py statuses {missing} have no fix: add them to STATUS_FIXES in "
            "generator/documents/troubleshooting.py"
        )
    return [(f"0x{s.code:04X}", s.name, s.meaning, STATUS_FIXES[s.code]) for s in failures]


def _rule_rows(template: TemplateFacts) -> list[tuple[object, ...]]:
    """(Rule, applies when, the console's messages) for every Rule; a Rule with one assertion
    per value (AutoscaleMaxNotBelowDesired) shows its first and last message."""
    rows: list[tuple[object, ...]] = []
    for name, rule in sorted(template.data.get("Rules", {}).items()):
        applies = rule.get("RuleCondition")
        when = _rule_condition(template, applies) if applies else "always"
        messages = [a["AssertDescription"] for a in rule["Assertions"]]
        if len(messages) > 3:
            messages = [messages[0], f"... ({len(messages)} messages in all) ...", messages[-1]]
        rows.append((f"`{name}`", when, " ".join(messages)))
    return rows


def _rule_condition(template: TemplateFacts, node: dict[str, Any]) -> str:
    """A RuleCondition in words; one the words cannot say is shown as it is."""
    try:
        return template.condition_words(node)
    except ValueError:
        return template.describe(node)


def _states(spec: Spec, kind: str) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in spec.definition["States"].items() if s["Type"] == kind}


def start_import_backoff(spec: Spec) -> tuple[int, int]:
    """(the longest wait between tries, the most tries) of StartImport's throttling retrier, read
    from the state machine definition."""
    retriers = spec.definition["States"]["StartImport"]["Retry"]
    throttled = next(
        r for r in retriers if "MedicalImaging.ThrottlingException" in r["ErrorEquals"]
    )
    return int(throttled["MaxDelaySeconds"]), int(throttled["MaxAttempts"])


def render(spec: Spec, template: TemplateFacts) -> str:
    """docs/troubleshooting.md."""
    _, port, policy = listener_summary(template)
    protocols = " or ".join(ELB_POLICIES[policy][0])
    retained = [f"`{r.logical_id}`" for r in template.resources() if r.deletion_policy == "Retain"]
    max_delay, attempts = start_import_backoff(spec)
    fail_rows = [
        (f"`{name}`", f"`{state['Error']}`", state.get("Cause", ""))
        for name, state in _states(spec, "Fail").items()
    ]
    (target,) = template.resources("AWS::ElasticLoadBalancingV2::TargetGroup")
    health = target.properties
    out = [
        HEADER,
        f"# Troubleshooting: {spec.name} {spec.version}",
        "",
        "For each symptom: what causes it and what to do. Where to look first: the SCP log "
        "group (stack output `SCPLogGroupName`; one JSON line per association and per "
        "failure, with an `event` field), the dashboard (output `DashboardURL`), and the "
        "alarms ([runbook.md](runbook.md)). Commands below use the stack's outputs in "
        "angle brackets.",
        "",
        "## The modality cannot connect (no association at all)",
        "",
        *table(
            ("Cause", "How to tell", "Fix"),
            [
                (
                    "The modality's address is not in `VpcCIDR` or `PeerCIDR1`-`PeerCIDR3`",
                    "The connection times out; nothing in the SCP log",
                    "Add the modality's (or its NAT's) public range as a `PeerCIDR` (stack "
                    "update); see [network-flows.md](network-flows.md) for the rule that "
                    "admits each range.",
                ),
                (
                    "Wrong host or port",
                    "Connection refused or timed out",
                    f"Use the outputs `NetworkLoadBalancerDNS` and `DICOMPort` (the listener's "
                    f"port: {port}).",
                ),
                (
                    "`LoadBalancerScheme` is `internal` and the modality is outside the VPC "
                    "(no VPN, Direct Connect or peering)",
                    "The DNS name resolves to private addresses",
                    "Join the networks, or use `internet-facing` with TLS and narrow "
                    "`PeerCIDR` ranges.",
                ),
                (
                    "No healthy task behind the load balancer",
                    "EC2 console, target group: targets `unhealthy` or none; ECS service "
                    "events show tasks stopping",
                    f"Each task answers HTTP `{health['HealthCheckPath']}` on port "
                    f"{health['HealthCheckPort']}; read the stopped task's reason in the ECS "
                    "console and the SCP log (an image pull error means the private subnets "
                    "have no route to the registry: a NAT gateway or the endpoints in "
                    "[deployment-guide.md](deployment-guide.md)).",
                ),
            ],
        ),
        "## Association rejected",
        "",
        "The SCP answers A-ASSOCIATE-RJ with these (result / source / reason-diagnostic), and "
        "logs one `association-rejected` line with the reason (scp/admission.py):",
        "",
        *table(("Reason in the log", "Result / source / diagnostic", "Fix"), _rejection_rows()),
        "An association accepted with presentation contexts refused (log event "
        "`contexts-rejected`, listing each refused SOP class and the reason) means the "
        "modality offered SOP classes outside `SupportedSOPClassUIDs`, or only transfer "
        "syntaxes the SCP does not accept ([conformance-statement.md](conformance-statement.md) "
        'lists them); the modality then reports "no presentation context" for those images. '
        "Widen `SupportedSOPClassUIDs`, or configure the modality to offer Explicit VR Little "
        "Endian.",
        "",
        "## C-STORE failure statuses",
        "",
        "Every status other than 0x0000 means the instance was **not** stored; the modality "
        "keeps it and may resend (scp/statuses.py):",
        "",
        *table(("Status", "Name", "Cause", "Fix"), _status_rows()),
        "## TLS handshake fails",
        "",
        f"With `TLSCertificateARN` set, the load balancer ends TLS with `{policy}`: {protocols} "
        "only. The handshake fails when:",
        "",
        "- the modality offers only TLS 1.0 or 1.1, or no cipher of that policy "
        "([conformance-statement.md](conformance-statement.md) lists them): update or "
        "configure the modality;",
        "- the modality does not trust the certificate's issuer, or connects by a name the "
        "certificate does not cover: give it the CA, and connect by a name in the certificate "
        "(a DNS record pointing to `NetworkLoadBalancerDNS`);",
        "- the modality speaks TLS and the stack has no certificate (or the other way round): "
        "both sides must agree;",
        "- with the SCP's own TLS (outside the stack: `TLS_CERT_FILE`), the SCP logs "
        "`tls-refused` with the reason, and a client without a certificate signed by "
        "`TLS_CA_FILE` is refused.",
        "",
        "## The stack fails to create",
        "",
        "The CloudFormation console's Events tab names the first resource that failed and why. "
        "A parameter set the template can refuse before creating anything fails with one of "
        "these Rules' messages; change the parameters it names:",
        "",
        *table(("Rule", "Checked when", "Message"), _rule_rows(template)),
        "Other causes:",
        "",
        '- `LimitExceeded`, `ServiceQuotaExceededException` or "maximum number of ... '
        'reached" (load balancers, data stores, VPC endpoints, log groups): an account quota '
        "in the Region. Delete unused resources or request an increase in the Service Quotas "
        f"console ([requesting a quota increase]({QUOTAS_PAGE})), then create the stack "
        "again.",
        "- `Service ... did not stabilize` or the ECS deployment circuit breaker: the tasks "
        "never became healthy. Read the stopped tasks' reason (ECS console) and the SCP log; "
        "an image that cannot be pulled needs a route to the registry.",
        "- Access denied: the deploying principal lacks a permission; attach the "
        "`deployer-policy-*.json` policies shipped with the release.",
        "- After a failed creation the stack rolls back, but resources with `DeletionPolicy: "
        f"Retain` stay ([DeletionPolicy attribute]({DELETION_POLICY_PAGE})): "
        + ", ".join(retained)
        + ". Delete them (or reuse the data store through `DatastoreId`, the key through "
        "`KmsKeyArn`) before you retry, or they accumulate.",
        "",
        "## Imports failed or in conflict",
        "",
        "An execution of the state machine (named after the batch id) that does not end in "
        "success ends in one of these states:",
        "",
        *table(("State", "Error", "Meaning"), fail_rows),
        "Find the instances with `storescp-lookup --table <JobTableName> --study STUDY_UID` (or "
        "`--sop`); each has `importStatus` IMPORTED, CONFLICT or FAILED and a `reason`. Fix the "
        "cause (a conflict: the patient or study attributes disagree with the primary image "
        "set already in the data store), then import the batch again with "
        "`storescp-redrive --state-machine-arn <StateMachineArn> BATCH_ID`. The alarms "
        "`FailedImportsAlarm` and `ImportConflictAlarm` fire for both "
        "([runbook.md](runbook.md)).",
        "",
        "## Sends are slow, or images arrive late in HealthImaging",
        "",
        "- **Slow C-STOREs**: the tasks are busy (alarm `ServiceCPUUtilizationAlarm`, the "
        "dashboard's CPU widget) or few; raise `TaskCPU`/`TaskMemoryLimit` or "
        "`AutoscaleMaxCapacity`. Over long distances, latency dominates: send several "
        "associations in parallel from the modality or PACS.",
        "- **Images stored, import late**: HealthImaging throttles StartDICOMImportJob and "
        "limits import jobs in flight per data store. The workflow then waits with capped "
        f"exponential backoff and full jitter, up to {max_delay} seconds between tries and up "
        f"to {attempts:,} tries, instead of failing; the batch imports when a slot is free. "
        "Nothing is lost meanwhile: every acknowledged instance is in the DICOM bucket.",
        "",
    ]
    return "\n".join(out)
