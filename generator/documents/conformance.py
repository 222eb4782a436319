"""The DICOM Conformance Statement (DICOM PS3.2 structure), generated from the SCP's code, its
settings and the built template, so it cannot drift from what the SCP does.

Dependency rule (DESIGN section 1): scp/ never imports generator/, and `build_template` imports
nothing from scp/ (a test checks it). The documents are the one place where the generator reads
the SCP, one way only: the constants the SCP itself uses (`scp.server.TRANSFER_SYNTAXES`, the
storage SOP classes `scp.server` takes from pynetdicom, `scp.settings.Settings` defaults,
`scp.statuses.STORE_STATUSES`). Nothing here starts a server or changes pynetdicom; the live
test (tests/scp/test_conformance_live.py) proves each fact against a running SCP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from pydicom.uid import UID
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom._globals import DEFAULT_TRANSFER_SYNTAXES
from pynetdicom.sop_class import _STORAGE_CLASSES

from generator.contracts import contracts
from generator.documents.markdown import header, table
from generator.documents.template_facts import Resource, TemplateFacts
from generator.errors import GeneratorError
from generator.spec import Spec
from scp import __version__ as scp_version
from scp.commitment import ACTION_STATUSES, FAILURE_REASONS, MAX_REFERENCES
from scp.commitment import SOP_CLASS as COMMITMENT_CLASS
from scp.commitment.reporter import BACKOFF_CAP, BACKOFF_FIRST, POLL
from scp.commitment.service import TABLE_EVALUATE_EVERY
from scp.qr.search import LEVELS, QIDO_KEYS
from scp.qr.service import FIND_MODELS, RETRIEVE_MODELS
from scp.qr.service import STATUSES as QR_STATUSES
from scp.qr.syntaxes import COMPRESSED, MAX_CONTEXTS
from scp.server import PENDING_CONNECTIONS, TRANSFER_SYNTAXES
from scp.services import service_classes
from scp.settings import Settings
from scp.statuses import STORE_STATUSES, StoreStatus

HEADER = header("generator/documents/conformance.py", "scp/ and config/product.yaml")
VERIFICATION = "1.2.840.10008.1.1"
APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
ELB_POLICIES_PAGE = (
    "https://docs.aws.amazon.com/elasticloadbalancing/latest/network/describe-ssl-policies.html"
)
# Protocols and ciphers of the load balancer's security policies, as AWS's Elastic Load
# Balancing guide lists them (ELB_POLICIES_PAGE, read 2026-11-30). A template that names
# another policy fails the generator until its row is added here from that page.
ELB_POLICIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ELBSecurityPolicy-TLS13-1-2-2021-06": (
        ("TLSv1.2", "TLSv1.3"),
        (
            "TLS_AES_128_GCM_SHA256",
            "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES128-SHA256",
            "ECDHE-RSA-AES128-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-AES256-SHA384",
            "ECDHE-RSA-AES256-SHA384",
        ),
    ),
}
# The SCP's own TLS (scp/server.py tls_context): proven by the live test, not read from code.
SCP_TLS_MINIMUM = "TLSv1.2"


@dataclass(frozen=True)
class Rejection:
    """One A-ASSOCIATE-RJ the SCP sends: (result, source, reason) and when."""

    result: str
    source: str
    reason: str
    when: str


# scp/service.py on_requested; each row is proven by the live test.
REJECTIONS = (
    Rejection(
        "1 (rejected-permanent)",
        "1 (DICOM UL service-user)",
        "7 (called-AE-title-not-recognized)",
        "`REQUIRE_CALLED_AE_TITLE` is true and the called AE title is not the SCP's AE title",
    ),
    Rejection(
        "1 (rejected-permanent)",
        "1 (DICOM UL service-user)",
        "3 (calling-AE-title-not-recognized)",
        "`REQUIRE_CALLING_AE_TITLE` lists AE titles and the calling AE title is not one of them",
    ),
    Rejection(
        "2 (rejected-transient)",
        "3 (DICOM UL service-provider, presentation related)",
        "2 (local-limit-exceeded)",
        "`MAXIMUM_ASSOCIATIONS` associations are already open on this task",
    ),
    Rejection(
        "2 (rejected-transient)",
        "3 (DICOM UL service-provider, presentation related)",
        "1 (temporary-congestion)",
        "the task began draining (SIGTERM: scale-in or deployment) while the connection was "
        "being accepted; after that the task's DICOM port is closed and the load balancer "
        "sends new connections to other tasks",
    ),
)


@dataclass(frozen=True)
class Conformance:
    """Every fact the statement lists, from the code the SCP runs."""

    storage_classes: tuple[tuple[str, str], ...]
    transfer_syntaxes: tuple[tuple[str, str], ...]
    verification_syntaxes: tuple[tuple[str, str], ...]
    implementation_class_uid: str
    implementation_version_name: str
    max_pdu_size: int
    statuses: tuple[StoreStatus, ...]
    rejections: tuple[Rejection, ...]


def facts() -> Conformance:
    """What the SCP accepts and answers, read from the constants its AE is built from
    (scp.server.build_ae: every storage class pynetdicom lists, TRANSFER_SYNTAXES in order)."""
    return Conformance(
        storage_classes=tuple(
            (uid, UID(uid).name) for uid in sorted(set(_STORAGE_CLASSES.values()), key=_uid_key)
        ),
        transfer_syntaxes=tuple((uid, UID(uid).name) for uid in TRANSFER_SYNTAXES),
        # build_ae adds Verification without syntaxes: pynetdicom's defaults apply.
        verification_syntaxes=tuple((uid, UID(uid).name) for uid in DEFAULT_TRANSFER_SYNTAXES),
        implementation_class_uid=PYNETDICOM_IMPLEMENTATION_UID,
        implementation_version_name=PYNETDICOM_IMPLEMENTATION_VERSION,
        max_pdu_size=Settings().max_pdu_size,
        statuses=STORE_STATUSES,
        rejections=REJECTIONS,
    )


def _uid_key(uid: str) -> tuple[int, ...]:
    return tuple(int(part) for part in uid.split("."))


def _container_environment(facts_: TemplateFacts) -> dict[str, object]:
    """Environment of the SCP container as the task definition sets it."""
    return {e["Name"]: e["Value"] for e in facts_.container().get("Environment", [])}


def configuration_rows(template: TemplateFacts) -> list[tuple[object, ...]]:
    """Each DICOM-relevant SCP setting: its default in the SCP, and what the template sets."""
    environment = _container_environment(template)
    relevant = (
        "ae_title",
        "port",
        "require_called_ae_title",
        "require_calling_ae_title",
        "maximum_associations",
        "acse_timeout",
        "dimse_timeout",
        "network_timeout",
        "supported_sop_class_uids",
        "remote_aes",
        "commitment_timeout",
        "commitment_delivery_window",
        "max_pdu_size",
        "tls_cert",
        "tls_key",
        "tls_ca",
    )
    by_name = {f.name: f for f in fields(Settings)}
    rows = []
    for name in relevant:
        f = by_name[name]
        env = f.metadata["env"]
        default = f.default
        if isinstance(default, tuple):
            default = ",".join(default)
        default = str(default).lower() if isinstance(default, bool) else default
        set_by = (
            template.describe(environment[env])
            if env in environment
            else "not set: the SCP's default applies"
        )
        rows.append(
            (f"`{env}`", f.metadata["doc"], f"`{default}`" if default != "" else "empty", set_by)
        )
    return rows


def listener_summary(template: TemplateFacts) -> tuple[str, str, str]:
    """The DICOM listeners' protocol (per condition), port and TLS policy, in words, and the
    policy name. The template may carry one listener per protocol, each under its condition."""
    listeners = list(template.resources("AWS::ElasticLoadBalancingV2::Listener"))
    if not listeners:
        raise GeneratorError("the template has no load balancer listener")
    policies = [p for lst in listeners for p in _strings(lst.properties.get("SslPolicy"))]
    names = sorted({p for p in policies if p.startswith("ELBSecurityPolicy")})
    if len(names) != 1:
        raise GeneratorError(f"listeners: expected one SslPolicy, got {policies}")
    if names[0] not in ELB_POLICIES:
        raise GeneratorError(
            f"the listeners use {names[0]}: add its protocols and ciphers "
            f"to generator/documents/conformance.py ELB_POLICIES from {ELB_POLICIES_PAGE}"
        )
    ports = {template.describe(lst.properties["Port"]) for lst in listeners}
    if len(ports) != 1:
        raise GeneratorError(f"listeners: expected one DICOM port, got {sorted(ports)}")
    return listener_protocols(template, listeners), ports.pop(), names[0]


def listener_protocols(
    template: TemplateFacts,
    listeners: list[Resource],
    words: Callable[[Any], str] | None = None,
) -> str:
    """'TLS when `TLSCertificateARN` is set, TCP when it is empty' (or the one protocol of an
    unconditional listener); `words` renders a protocol (default: as the template says it)."""
    words = words or template.describe
    return ", ".join(
        words(lst.properties["Protocol"])
        + (f" when {template.when(lst.condition)}" if lst.condition else "")
        for lst in listeners
    )


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [s for n in node for s in _strings(n)]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    return []


def service_label(name: str) -> str:
    """A service's row in the overview (scp/services.py names)."""
    return "Storage (every class in 2.2.1)" if name == "Storage" else name


def commitment_section(settings: Settings) -> list[str]:
    """2.2.6: Storage Commitment, from scp/commitment/ (statuses, failure reasons, timing)."""
    return [
        "#### 2.2.6 SOP specific conformance: Storage Commitment Push Model",
        "",
        f"Role: SCP of the Storage Commitment Push Model SOP Class (`{COMMITMENT_CLASS}`), "
        "on the same AE. The calling AE must be listed in `REMOTE_AES` (template parameter "
        "`RemoteAETitles`) with the `commitment` permission; its host and port there are "
        "where reports go when its association is closed.",
        "",
        "N-ACTION (Action Type ID 1, Requested SOP Instance UID `1.2.840.10008.1.20.1.1`): "
        f"the Transaction UID and a Referenced SOP Sequence of 1 to {MAX_REFERENCES} items, "
        "each with valid SOP Class and SOP Instance UIDs, are required. The request is "
        "recorded durably (the job table in AWS, a file synced to disk in a folder store) "
        "before the response, so a task restart, scale-in or SIGKILL does not lose it. "
        "Response statuses:",
        "",
        *table(
            ("Status", "Code", "When"),
            [(name, f"`0x{code:04X}`", when) for code, name, when in ACTION_STATUSES],
        ),
        "When an instance counts as committed: by default (`COMMITMENT_COMMIT_ON=imported`, "
        "template parameter `CommitmentCommitOn` Imported) when the job table's latest record "
        "of it says IMPORTED, i.e. AWS HealthImaging imported it into a primary image set, by "
        "a batch import or by StoreDICOM (a direct store). With `COMMITMENT_COMMIT_ON=stored` "
        "(`CommitmentCommitOn` Stored) once it is durably stored in the DICOM bucket: the SCP "
        "records each instance in the job table after its S3 object is durable and before "
        "it answers the C-STORE with Success (a record it cannot write makes the C-STORE fail "
        "with `0xA700`; the object stays in its batch and is imported as usual), so the "
        "report comes in seconds; the import follows as usual, and an import attempt that "
        "failed or conflicted before the report fails the instance (`0x0110`). A local "
        "folder store has no import: an instance is committed once it is stored (synced to "
        "disk). The SCP reports once every referenced instance has a final "
        "state, or at the deadline `COMMITMENT_TIMEOUT` "
        f"(default {settings.commitment_timeout:g} s, template parameter `CommitmentTimeout`) "
        "with what is known then. The report repeats the Transaction UID and lists every "
        "referenced instance: in the Referenced SOP Sequence when committed, in the Failed SOP "
        "Sequence with a Failure Reason otherwise. Event Type ID 1 when all are committed, 2 "
        "when any failed. Retrieve AE Title and Storage Media File-Set attributes are not "
        "sent.",
        "",
        *table(
            ("Failure Reason", "Code", "When"),
            [(name, f"`0x{code:04X}`", when) for code, (name, when) in FAILURE_REASONS.items()],
        ),
        "Delivery: on the association that asked while it is still open (the N-EVENT-REPORT "
        "is sent after the N-ACTION response, when the modality is not sending on it: the "
        "SCP performs one operation at a time, so a modality that keeps its association open "
        "should wait for the report there); otherwise on a new association from the SCP's "
        "AE title to the requester's AE title at its registered host and port (TLS 1.2 or "
        "later when the entry ends in `:tls`), proposing the SCP role for the Storage "
        "Commitment Push Model SOP Class by SCP/SCU role selection, with the transfer "
        "syntaxes "
        + ", ".join(UID(uid).name for uid in DEFAULT_TRANSFER_SYNTAXES)
        + " (scp/outgoing.py). In AWS these associations leave from "
        "the tasks in the private subnets to `RemoteAECIDR` (network-flows.md). A report the "
        "requester refuses, or that cannot be delivered, is retried with backoff "
        f"({BACKOFF_FIRST:g} s doubling to {BACKOFF_CAP:g} s; pending transactions are looked "
        f"at every {POLL:g} s, each at most every {TABLE_EVALUATE_EVERY:g} s against the job "
        f"table) for `COMMITMENT_DELIVERY_WINDOW` (default "
        f"{settings.commitment_delivery_window:g} s) after the deadline, then recorded as "
        "undeliverable and alarmed (runbook.md, CommitmentUndeliverableAlarm). With several "
        "tasks, exactly one sends each report (a conditional-update lease in the job table; "
        "a lock file in a folder store); a report is sent again only when its delivery was "
        "not confirmed (the SCP stopped between sending and recording it).",
        "",
        "Transaction UIDs: a request repeating a recorded one (same calling AE, same "
        "instances) is the same transaction: it is answered Success and reported (again, if "
        "it was reported already). A request reusing a recorded Transaction UID for other "
        "instances or from another AE is reported with every instance failed, Failure Reason "
        "`0x0131`.",
        "",
        "Not supported: the Storage Commitment Pull Model; Storage Media File-Set "
        "and Retrieve AE Title in reports; committing to instances that are not in AWS "
        "HealthImaging (or the folder store). How long an instance stays available after "
        "commitment is HealthImaging's retention, not the SCP's. The job table keeps a "
        "transaction for `COMMITMENT_RETENTION_DAYS` (default "
        f"{settings.commitment_retention_days} days, template parameter "
        "`ResultsRetentionDays`) after its report or after it became undeliverable, then "
        "DynamoDB deletes it (time to live); a folder store keeps it as long in "
        "`commitment/done/`. A repeat of its request after that is a new transaction.",
        "",
    ]


def query_retrieve_section() -> list[str]:
    """2.2.7: Query/Retrieve, from scp/qr/ (models, levels, keys, statuses)."""
    models = [*FIND_MODELS, *RETRIEVE_MODELS]
    filtered = [(level, ", ".join(QIDO_KEYS[level])) for level in LEVELS]
    return [
        "#### 2.2.7 SOP specific conformance: Query/Retrieve",
        "",
        "Role: SCP of the Patient Root and Study Root Query/Retrieve Information Models "
        "(FIND, MOVE, GET), offered when `HEALTHIMAGING_DATASTORE_ID` names the data store "
        "(always, in the CloudFormation deployment). The answers come from AWS HealthImaging's "
        "DICOMweb APIs, which see primary image sets only: C-FIND from QIDO-RS searches, "
        "C-MOVE and C-GET from a QIDO-RS listing and one WADO-RS GetDICOMInstance per "
        "instance. A calling AE needs the `query` permission in `REMOTE_AES` for C-FIND and "
        "`retrieve` for C-MOVE and C-GET; otherwise the request is refused (`0x0124`, a "
        "C-MOVE `0xC514`: statuses below).",
        "",
        *table(("SOP Class", "SOP Class UID"), [(UID(uid).name, f"`{uid}`") for uid in models]),
        f"Levels: {', '.join(LEVELS)} (PATIENT in the Patient Root model only; hierarchical, "
        "relational queries are not negotiated). "
        "Keys HealthImaging filters (sent in the search; a UID list is matched by the SCP):",
        "",
        *table(("Level", "Keys sent to HealthImaging"), filtered),
        "Every key of the identifier, filtered or not, is then matched by the SCP on the "
        "attributes HealthImaging returned (the others are asked for with `includefield`), "
        "per PS3.4 C.2.2.2: universal (empty or `*`), single value (Person Name "
        "case-insensitively), list of UIDs, wildcard `*` and `?` (not for dates, times, "
        "numbers or UIDs), range for DA, TM and DT (`a-b`, `a-`, `-b`, inclusive; values "
        "compared at the key's precision). Sequence keys are return keys only. A key whose "
        "attribute HealthImaging does not return is not matched and comes back empty. "
        "PATIENT level is the study search grouped by Patient ID and Patient's Name. At "
        "SERIES and IMAGE levels the search runs inside each study (and series) the "
        "identifier's UIDs name, else inside each matching study (series). Results are read "
        "page by page (`QIDO_PAGE_SIZE` records a page) up to HealthImaging's 10,000 records "
        "per search. Responses carry the requested keys, the unique keys of the levels "
        "above, Retrieve AE Title (the SCP's) when asked for, and Specific Character Set "
        "`ISO_IR 192` (UTF-8) when a value is not ASCII.",
        "",
        *table(("Status", "Code", "When"), [(n, f"`0x{c:04X}`", w) for c, n, w in QR_STATUSES]),
        "C-MOVE: the Move Destination must be in `REMOTE_AES` (any permission); the SCP opens "
        "one association per C-MOVE from its AE title to that AE's registered host and port "
        "(TLS 1.2 or later when the entry ends in `:tls`; in AWS from the tasks to "
        "`RemoteAECIDR`, network-flows.md). C-GET sends the instances on the calling "
        "association, on the storage contexts it proposed with the SCP role (SCP/SCU role "
        "selection). Pending responses carry the remaining, completed, failed and warning "
        "counts; the final response lists the SOP Instance UIDs that failed (not retrieved, "
        "or refused by the destination) and is `0xB000` when any failed (`0xA702` when all "
        "did). C-CANCEL stops a C-FIND between records and a C-MOVE/C-GET between instances "
        "(`0xFE00` with the counts). Once the peer of the sub-operations (the Move "
        "Destination, the C-GET requestor) closes or aborts the association or leaves a "
        "C-STORE unanswered, every instance not yet sent is a failed sub-operation, without "
        "being fetched.",
        "",
        "Transfer syntaxes of the sub-operations (C-STORE as SCU). For each SOP class to be "
        "sent, a C-MOVE proposes one presentation context of Explicit VR Little Endian and "
        "Implicit VR Little Endian, and then one presentation context per compressed transfer "
        "syntax the instance may be stored in: the ones the search names, else (HealthImaging's "
        f"search does not name them) each of these, for as long as the {MAX_CONTEXTS} "
        "presentation contexts of an association last (every class keeps its uncompressed "
        "one first):",
        "",
        *table(("Transfer Syntax", "UID"), [(UID(ts).name, f"`{ts}`") for ts in COMPRESSED]),
        "Each instance is then fetched from HealthImaging in its stored transfer syntax when "
        "the destination accepted a compressed transfer syntax for its SOP class, and sent "
        "as stored (no decompression, no re-compression) when the stored syntax is one it "
        "accepted. Otherwise (no compressed syntax accepted for the class, a stored syntax "
        "not accepted, or HealthImaging refusing the stored syntax) it is fetched in Explicit "
        "VR Little Endian, which HealthImaging offers for every instance, and sent in "
        "Explicit or Implicit VR Little Endian, whichever was accepted. An instance whose SOP "
        "class the destination accepted no context for is a failed sub-operation. C-GET "
        "follows the same rule on the contexts the requestor proposed: the SCP, as acceptor, "
        "takes the first of its own transfer syntaxes (2.2.3 order, uncompressed first) that "
        "a context offers, so a C-GET requestor receives stored compressed instances when it "
        "proposes their compressed syntax in a presentation context of its own.",
        "",
        "The associations the SCP opens (C-MOVE sub-operations, storage-commitment reports) "
        "use TCP_NODELAY, and carry a fix for a race in pynetdicom 3.0.4 (issues 435 and 875) "
        "in which the association's own thread could take a response another thread waited "
        "for, stalling a sub-operation for `DIMSE_TIMEOUT` and failing the rest of the C-MOVE "
        "(scp/reactor.py).",
        "",
    ]


def render(spec: Spec, template: TemplateFacts) -> str:
    """docs/conformance-statement.md."""
    c = facts()
    protocol, port, policy = listener_summary(template)
    protocols, ciphers = ELB_POLICIES[policy]
    settings = Settings()
    out = [
        HEADER,
        f"# DICOM Conformance Statement: {spec.name} {spec.version}",
        "",
        "Structure of DICOM PS3.2 (Conformance). Every list below is generated from the code "
        "the SCP runs and the CloudFormation template the product ships; "
        "`tests/scp/test_conformance_live.py` associates with a running SCP and checks that it "
        "accepts exactly what this statement lists.",
        "",
        contracts().not_a_medical_device_markdown,
        "",
        "## 1. Overview",
        "",
        f"{spec.name} is a DICOM Store SCP (software version {scp_version}) that runs on "
        "Amazon ECS Fargate behind a Network Load Balancer. It stores every received instance "
        "exactly as received (no transcoding, no change to any attribute) in Amazon S3, and an "
        "import workflow imports the instances into AWS HealthImaging. As Storage Commitment "
        "SCP it tells a modality, on request, which of its instances are safe in a primary "
        "image set of AWS HealthImaging. As Query/Retrieve SCP it answers C-FIND, C-MOVE "
        "and C-GET from the HealthImaging data store (2.2.7). It does not print.",
        "",
        *table(
            ("Network service", "User of service (SCU)", "Provider of service (SCP)"),
            [(service_label(service.name), "No", "Yes") for service in service_classes()],
        ),
        "Media interchange: none.",
        "",
        "## 2. Networking",
        "",
        "### 2.1 Implementation model",
        "",
        "One Application Entity, the Store SCP, listens on the DICOM port of each task. The "
        "load balancer forwards each TCP (or TLS) connection to one task. For each C-STORE the "
        "SCP streams the data set to a temporary file, checks it, writes it to S3 as a DICOM "
        "Part 10 file (file meta group with the accepted transfer syntax, then the data set "
        "byte for byte) and answers success only after S3 confirmed the write. At association "
        "end it writes one batch manifest per study; the manifest starts one HealthImaging "
        "import job. With the `DirectStore` parameter, the instances it selects (all, or by "
        "calling AE title and/or C-STORE Priority HIGH) are stored in HealthImaging directly "
        "with StoreDICOM (DICOMweb STOW-RS) and answered success only when HealthImaging's "
        "response lists them as stored; when StoreDICOM is throttled or unavailable they take "
        "the S3 path above, and an instance HealthImaging refuses gets a failure status.",
        "",
        "```",
        "modality (SCU) --A-ASSOCIATE/C-ECHO/C-STORE--> NLB --> Store SCP AE (Fargate task)",
        "                                        | each instance -> S3 (durable, then ack)",
        "                                        | association end -> batch manifest",
        "                                        v",
        "                        import workflow -> AWS HealthImaging data store",
        "```",
        "",
        "The SCP initiates associations only to send Storage Commitment reports (2.2.6), to "
        "the requesting AE's registered address, and for C-MOVE (2.2.7), to the Move "
        "Destination's registered address.",
        "",
        "### 2.2 AE specification: Store SCP",
        "",
        "#### 2.2.1 SOP classes",
        "",
        "The SCP accepts the Verification SOP Class and every storage SOP class below as SCP. "
        "When `SUPPORTED_SOP_CLASS_UIDS` (template parameter `SupportedSOPClassUIDs`) lists "
        "UIDs, it accepts only those storage classes (and Verification).",
        "",
        *table(
            ("SOP Class", "SOP Class UID", "SCU", "SCP"),
            [
                ("Verification", f"`{VERIFICATION}`", "No", "Yes"),
                (UID(COMMITMENT_CLASS).name, f"`{COMMITMENT_CLASS}`", "No", "Yes"),
            ],
        ),
        f"Storage SOP classes ({len(c.storage_classes)}):",
        "",
        *table(
            ("SOP Class", "SOP Class UID", "SCU", "SCP"),
            [(name, f"`{uid}`", "No", "Yes") for uid, name in c.storage_classes],
        ),
        "#### 2.2.2 Association policies",
        "",
        *table(
            ("Item", "Value"),
            [
                ("Application context name", f"`{APPLICATION_CONTEXT}`"),
                ("Maximum PDU size received", f"{c.max_pdu_size:,} bytes (`MAX_PDU_SIZE`)"),
                ("Maximum PDU size sent", "the peer's maximum, as the peer proposes it"),
                (
                    "Associations at once, per task",
                    f"`MAXIMUM_ASSOCIATIONS` (default {settings.maximum_associations}); "
                    "tasks scale out on CPU",
                ),
                (
                    "Connections not yet associated, per task",
                    f"at most {PENDING_CONNECTIONS} beyond `MAXIMUM_ASSOCIATIONS`; "
                    "more are closed without a reply",
                ),
                (
                    "Time to send A-ASSOCIATE-RQ after connecting",
                    f"`ACSE_TIMEOUT` ({settings.acse_timeout:g} s), then the connection closes",
                ),
                ("DIMSE timeout", f"`DIMSE_TIMEOUT` ({settings.dimse_timeout:g} s), then A-ABORT"),
                (
                    "Network (idle) timeout",
                    f"`NETWORK_TIMEOUT` ({settings.network_timeout:g} s), "
                    "then the connection closes",
                ),
                ("Asynchronous operations window", "not supported (one operation at a time)"),
                (
                    "SCP/SCU role selection",
                    "on associations it accepts, the SCP role of the storage SOP classes is "
                    "accepted for C-GET (2.2.7), nothing else; on associations it opens for "
                    "Storage Commitment reports it proposes the SCP role for the Storage "
                    "Commitment Push Model SOP Class (2.2.6)",
                ),
                ("Extended negotiation", "none"),
                ("Implementation Class UID", f"`{c.implementation_class_uid}`"),
                ("Implementation Version Name", f"`{c.implementation_version_name}`"),
            ],
        ),
        "The SCP rejects an association (A-ASSOCIATE-RJ) only in these cases:",
        "",
        *table(
            ("Result", "Source", "Reason/diagnosis", "When"),
            [(r.result, r.source, r.reason, r.when) for r in c.rejections],
        ),
        "AE titles: the SCP's AE title is `SCP_AE_TITLE` (template parameter `SCPAETitle`, "
        f"default `{settings.ae_title}`): 1 to 16 printable ASCII characters without backslash. "
        "The called AE title is checked only when `REQUIRE_CALLED_AE_TITLE` is true; the "
        "calling AE title only when `REQUIRE_CALLING_AE_TITLE` lists titles. Leading and "
        "trailing spaces are ignored in both.",
        "",
        "#### 2.2.3 Presentation contexts",
        "",
        "Every storage SOP class of 2.2.1 is accepted with each transfer syntax below, role "
        "SCP, no extended negotiation. Verification is accepted with "
        + ", ".join(f"{name} (`{uid}`)" for uid, name in c.verification_syntaxes)
        + ", in that order. A proposed "
        "context is accepted when its abstract syntax is supported and it proposes at least one "
        "of these syntaxes; when it proposes several, the SCP accepts the first of this table "
        "(in this order) that it proposed. Other contexts are rejected (abstract syntax not "
        "supported, or transfer syntaxes not supported) and logged once per association.",
        "",
        *table(
            ("Order", "Transfer syntax", "UID", "What the SCP does with it"),
            [
                (i, name, f"`{uid}`", "stored as received, never transcoded")
                for i, (uid, name) in enumerate(c.transfer_syntaxes, start=1)
            ],
        ),
        "#### 2.2.4 SOP specific conformance: Storage",
        "",
        "Storage level: the SCP is a Level 2 (Full) storage SCP in the sense that it keeps every "
        "attribute, private attributes included, byte for byte; it does not coerce or change "
        "any attribute and never decompresses or recompresses pixel data. An instance is "
        "refused, and nothing of it kept, when its data set does not parse to its end, when "
        "its UIDs are invalid, or when it does not match its SOP class or request (statuses "
        "below). The instance is then imported into AWS HealthImaging; the import's own result per "
        "instance is recorded by the import workflow, not reported over DICOM. Storage "
        "Commitment is not supported: an acknowledged instance is durably in Amazon S3 (or, "
        "stored directly, in AWS HealthImaging), which is what the success status means.",
        "",
        "C-STORE response statuses (every status the SCP can return):",
        "",
        *table(
            ("Status", "Code", "Meaning"),
            [(s.name, f"`0x{s.code:04X}`", s.meaning) for s in c.statuses],
        ),
        "No Warning statuses (0xB000, 0xB007, 0xB006) are sent: nothing is coerced or dropped.",
        "",
        "#### 2.2.5 SOP specific conformance: Verification",
        "",
        "A C-ECHO request on an accepted association is answered with Success (`0x0000`).",
        "",
        *commitment_section(settings),
        *query_retrieve_section(),
        "### 2.3 Network interfaces and communication profiles",
        "",
        "TCP/IP (DICOM PS3.8), IPv4. Modalities connect to the Network Load Balancer's DNS name "
        "(stack output `NetworkLoadBalancerDNS`) on the DICOM port (output `DICOMPort`). "
        "Which clients may connect is decided by the load balancer's security group: the "
        "`VpcCIDR` and `PeerCIDR1`-`PeerCIDR3` ranges (see [network-flows.md](network-flows.md)).",
        "",
        f"Load balancer listener: protocol {protocol}, port {port}.",
        "",
        f"TLS at the load balancer (when `TLSCertificateARN` is set): security policy `{policy}`, "
        f"protocols {', '.join(protocols)}; cipher suites "
        f"{', '.join(f'`{x}`' for x in ciphers)} ([AWS: security policies for your Network "
        f"Load Balancer]({ELB_POLICIES_PAGE})). The certificate is the ACM certificate you "
        "name. TLS ends at the load balancer; it forwards the connection to the task inside "
        "the VPC over TCP. Without a certificate the listener is plain TCP: use it only on "
        "private links (VPC, VPN, Direct Connect). `LoadBalancerScheme`: "
        f"{spec.parameter('LoadBalancerScheme').description}",
        "",
        f"TLS in the SCP itself (deployments without the load balancer): set `TLS_CERT_FILE` and "
        f"`TLS_KEY_FILE`; the SCP accepts {SCP_TLS_MINIMUM} and later only, with the OpenSSL "
        "default cipher suites of the image's Python. With `TLS_CA_FILE` set it requires a "
        "client certificate signed by that CA (mutual TLS). A TLS handshake must complete "
        "within `ACSE_TIMEOUT`.",
        "",
        "## 3. Configuration",
        "",
        "The SCP's settings (environment variables of the container). The CloudFormation "
        "template sets them from its parameters as shown; the defaults apply otherwise.",
        "",
        *table(
            ("Setting", "Meaning", "SCP default", "Set by the template"),
            configuration_rows(template),
        ),
        "## 4. Media interchange",
        "",
        "None.",
        "",
        "## 5. Support of character sets",
        "",
        "The SCP does not interpret or convert text values: every data set is stored as received "
        "with its Specific Character Set (0008,0005), whatever it names. AE titles are ASCII. "
        "The SCP's logs carry UIDs, AE titles, sizes and statuses only, never a patient's name "
        "or other text values.",
        "",
        "## 6. Security",
        "",
        "- Security profiles: the SCP claims no DICOM PS3.15 security profile. Transport "
        "security is TLS as described in 2.3.",
        "- Association level: AE title checks (2.2.2) and, before that, the load balancer's "
        "security group admits only the configured address ranges.",
        "- Audit: one JSON log line per association and per refused instance in CloudWatch "
        "Logs; no PHI.",
        "- At rest: see [data-protection.md](data-protection.md).",
        "",
        "## Annex: IOD contents",
        "",
        "The SCP creates no SOP instances and does not modify received ones. It adds only the "
        "file meta information group (Implementation Class UID and Version Name above) when "
        "writing the Part 10 file.",
        "",
    ]
    return "\n".join(out)
