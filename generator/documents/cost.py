"""Monthly cost estimate per hospital profile, from the built template's defaults, the Fargate
sizing the image benchmark measured (bench/fargate-sizing.json) and a dated price table
(config/prices-us-east-1.yaml)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from generator.documents.markdown import header, money, table
from generator.documents.sizing import SIZING
from generator.documents.template_facts import TemplateFacts, references
from generator.errors import SpecError
from generator.spec import ROOT, Spec, first_error
from generator.template.fargate_sizes import TASK_MEMORY_MIB
from scp.telemetry import Metrics

PRICES_PATH = ROOT / "config" / "prices-us-east-1.yaml"
PRICES_SCHEMA = ROOT / "config" / "prices.schema.json"
OVERVIEW_SMALL = (60, 90)  # the product overview's "Small Hospital" total, USD a month
# The overview's lines for that hospital (USD a month), and which of our lines each covers.
OVERVIEW_LINES = (
    ("ECS Fargate (1 task)", (30, 40), ("ECS Fargate",)),
    ("Network Load Balancer", (16, 20), ("Network Load Balancer", "Public IPv4")),
    ("AWS HealthImaging", (5, 15), ("AWS HealthImaging",)),
    ("S3 Storage", (2, 5), ("S3",)),
    ("Other Services", (5, 10), ()),
)
MIB = 2**20


@dataclass(frozen=True)
class Inputs:
    """The price table with its profiles and assumptions, and the measured Fargate sizing."""

    prices: dict[str, Any]
    sizing: dict[str, Any]
    used: set[str] = field(default_factory=set, compare=False)  # names read, for a test

    def usd(self, name: str) -> float:
        self.used.add(name)
        try:
            return float(self.prices["prices"][name]["usd"])
        except KeyError:
            raise SpecError(
                f"{PRICES_PATH}: $.prices.{name} is missing; add it with its source"
            ) from None

    def assume(self, name: str) -> float:
        self.used.add(name)
        try:
            return float(self.prices["assumptions"][name])
        except KeyError:
            raise SpecError(f"{PRICES_PATH}: $.assumptions.{name} is missing; add it") from None


def load_inputs(prices: Path = PRICES_PATH, sizing: Path = SIZING) -> Inputs:
    """Read and validate the price table; read the sizing measurements."""
    data = yaml.safe_load(prices.read_text())
    error = first_error(PRICES_SCHEMA, data)
    if error:
        path, e = error
        raise SpecError(f"{prices}: {path}: {e.message}; see {PRICES_SCHEMA.name}")
    return Inputs(data, json.loads(sizing.read_text()))


@dataclass(frozen=True)
class Size:
    cpu: int
    memory: int

    @property
    def label(self) -> str:
        return f"{self.cpu} CPU units / {self.memory} MiB"


@dataclass(frozen=True)
class Line:
    item: str
    basis: str
    usd: float


@dataclass(frozen=True)
class Stack:
    """What the template deploys with its defaults, as far as cost goes."""

    default_size: Size
    tasks: int
    load_balancers: int
    internet_facing: bool
    s3_endpoint: bool
    dicom_retention_days: float
    logs_retention_days: float
    alarm_metrics: int
    dashboards: int
    kms_keys: int
    functions: int
    scheduled_calls_per_month: float
    lambda_gb: float
    lambda_arm: bool
    global_indexes: int
    states: int
    container_insights: bool
    cpu_target_percent: float

    @classmethod
    def read(cls, spec: Spec, t: TemplateFacts) -> Stack:
        (task,) = t.deployed("AWS::ECS::TaskDefinition")
        (service,) = t.deployed("AWS::ECS::Service")
        lbs = t.deployed("AWS::ElasticLoadBalancingV2::LoadBalancer")
        functions = t.deployed("AWS::Lambda::Function")
        # Functions a batch invokes: not custom-resource handlers (ServiceToken), not schedules.
        elsewhere = {
            ref
            for r in t.deployed()
            for key in ("ServiceToken", "Targets")
            if key in r.properties
            for ref in references(r.properties[key])
        }
        workflow = [f for f in functions if f.logical_id not in elsewhere]
        (cluster,) = t.deployed("AWS::ECS::Cluster")
        return cls(
            default_size=Size(
                int(t.number(task.properties["Cpu"])), int(t.number(task.properties["Memory"]))
            ),
            tasks=int(t.number(service.properties["DesiredCount"])),
            load_balancers=len(lbs),
            internet_facing=any(
                t.resolve(lb.properties.get("Scheme", "internet-facing")) == "internet-facing"
                for lb in lbs
            ),
            s3_endpoint=any(
                "s3" in json.dumps(e.properties.get("ServiceName"))
                for e in t.deployed("AWS::EC2::VPCEndpoint")
            ),
            dicom_retention_days=_expiration(t, "DicomBucket"),
            logs_retention_days=max(
                t.number(g.properties.get("RetentionInDays", 3650))
                for g in t.deployed("AWS::Logs::LogGroup")
            ),
            alarm_metrics=sum(
                sum(1 for q in a.properties["Metrics"] if "MetricStat" in q)
                if "Metrics" in a.properties
                else 1
                for a in t.deployed("AWS::CloudWatch::Alarm")
            ),
            dashboards=len(t.deployed("AWS::CloudWatch::Dashboard")),
            kms_keys=len(t.deployed("AWS::KMS::Key")),
            functions=len(workflow),
            scheduled_calls_per_month=sum(
                _calls_per_month(str(t.resolve(rule.properties.get("ScheduleExpression", ""))))
                for rule in t.deployed("AWS::Events::Rule")
            ),
            lambda_gb=max(
                (t.number(f.properties.get("MemorySize", 128)) for f in workflow), default=0
            )
            / 1024,
            lambda_arm=all(f.properties.get("Architectures") == ["arm64"] for f in workflow),
            global_indexes=max(
                len(table.properties.get("GlobalSecondaryIndexes", []))
                for table in t.deployed("AWS::DynamoDB::Table")
            ),
            states=len(spec.definition.get("States", {})),
            container_insights=any(
                s.get("Name") == "containerInsights" and s.get("Value") != "disabled"
                for s in cluster.properties.get("ClusterSettings", [])
            ),
            cpu_target_percent=min(
                (
                    t.number(
                        p.properties["TargetTrackingScalingPolicyConfiguration"]["TargetValue"]
                    )
                    for p in t.deployed("AWS::ApplicationAutoScaling::ScalingPolicy")
                    if "TargetTrackingScalingPolicyConfiguration" in p.properties
                ),
                default=100.0,
            ),
        )


def _expiration(t: TemplateFacts, bucket: str) -> float:
    """Longest expiration of a bucket's lifecycle rules, in days (10 years when none)."""
    rules = t.resource(bucket).properties.get("LifecycleConfiguration", {}).get("Rules", [])
    days = [t.number(r["ExpirationInDays"]) for r in rules if r.get("ExpirationInDays") is not None]
    return max(days, default=3650)


def _calls_per_month(expression: str) -> float:
    """Invocations a month of an EventBridge `rate(...)` schedule (0 for anything else)."""
    m = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression)
    if not m:
        return 0.0
    minutes = {"minute": 1, "hour": 60, "day": 1440}[m.group(2).rstrip("s")]
    return 30 * 1440 / (int(m.group(1)) * minutes)


def required_rate(stack: Stack, profile: dict[str, Any]) -> tuple[float, float]:
    """(MB/s, images/s) a task must measure to receive the busiest hour within the profile's
    minutes while at the autoscaling CPU target, so that one task does it without scaling out."""
    seconds = profile["receiveMinutes"] * 60 * stack.cpu_target_percent / 100
    images = profile["peakHourImages"]
    return images * profile["mibPerImage"] * MIB / 1e6 / seconds, images / seconds


def cheapest_size(
    spec: Spec, stack: Stack, inputs: Inputs, profile: dict[str, Any]
) -> tuple[Size, dict] | None:
    """The smallest measured Fargate CPU size with the required rate, and the measurement it
    rests on (CT slices over one association: the conservative row)."""
    need_mb, need_rate = required_rate(stack, profile)
    rows = sorted(
        (r for r in inputs.sizing["rows"] if r["dataset"] == "ct" and r["associations"] == 1),
        key=lambda r: r["task_cpu"],
    )
    for row in rows:
        if row["mb_per_s"] >= need_mb and row["instances_per_s"] >= need_rate:
            memory = min(TASK_MEMORY_MIB[row["task_cpu"]])
            return Size(row["task_cpu"], memory), row
    return None


def estimate(stack: Stack, inputs: Inputs, profile: dict[str, Any], size: Size) -> list[Line]:
    """The month's bill, line by line, for one profile with the SCP tasks at `size`."""
    p, a = inputs.usd, inputs.assume
    hours = inputs.prices["hoursPerMonth"]
    images = profile["imagesPerMonth"]
    gib = images * profile["mibPerImage"] / 1024
    batches = images / profile["imagesPerStudy"]
    polls = a("statusPollsPerJob")
    # Workflow: each function once per batch (the status check once per poll), plus schedules.
    calls = batches * (stack.functions - 1 + polls) + stack.scheduled_calls_per_month
    lambda_gb_s = calls * a("lambdaMillisecondsPerCall") / 1000 * stack.lambda_gb
    transitions = batches * (stack.states + 2 * polls)
    sqs = a("sqsPollRequestsPerMonth") + 3 * batches  # polls; send, receive, delete a manifest
    imaging_calls = batches * (1 + polls)
    s3_gb = gib * min(stack.dicom_retention_days, 30) / 30
    s3_puts = images + batches * 3  # instance, manifest, open-batch marker (put, delete)
    s3_gets = images + batches * 4  # HealthImaging reads each instance; manifests are read
    writes = images * (1 + stack.global_indexes)  # one item per instance, and per index
    ddb_gb = images * a("ddbItemKib") * (1 + stack.global_indexes) / 2**20
    metrics = len(Metrics.UNITS) + (
        a("containerInsightsMetrics") if stack.container_insights else 0
    )
    log_gb = (
        batches * a("logBytesPerAssociation")
        + calls * a("logBytesPerLambdaCall")
        + stack.tasks * a("emfBytesPerMinute") * hours * 60
    ) / 1e9
    nat_gb = (0 if stack.s3_endpoint else gib) + a("imagePullsPerMonth") * a("imageGb")
    ips = a("publicSubnets") if stack.internet_facing else 0
    vcpu, memory_gb = size.cpu / 1024, size.memory / 1024
    lines = [
        Line(
            "ECS Fargate (SCP tasks)",
            f"{stack.tasks} task(s) x {size.label} x {hours} h",
            stack.tasks * hours * (vcpu * p("fargateVcpuHour") + memory_gb * p("fargateGbHour")),
        ),
        Line(
            "Network Load Balancer",
            f"{stack.load_balancers} x {hours} h + {gib:,.1f} GB processed (NLCU)",
            stack.load_balancers * hours * p("nlbHour") + gib * p("nlcuHour"),
        ),
        Line(
            "Public IPv4 addresses (internet-facing load balancer)",
            f"{ips:g} x {hours} h",
            ips * hours * p("publicIpv4Hour"),
        ),
        Line(
            "AWS HealthImaging",
            f"{gib:,.2f} GB in Frequent Access (first month), {imaging_calls:,.0f} API calls",
            gib * p("healthImagingFrequentGbMonth")
            + imaging_calls / 1000 * p("healthImagingApi1000"),
        ),
        Line(
            "S3 (DICOM, results, access logs)",
            f"{s3_gb:,.2f} GB-month, {s3_puts:,.0f} PUT, {s3_gets:,.0f} GET",
            s3_gb * p("s3StandardGbMonth")
            + s3_puts / 1000 * p("s3Put1000")
            + s3_gets / 1000 * p("s3Get1000"),
        ),
        Line(
            "DynamoDB (job table)",
            f"{writes:,.0f} write units, {ddb_gb:.3f} GB with point-in-time recovery",
            writes / 1e6 * p("dynamodbWriteMillion")
            + ddb_gb * (p("dynamodbGbMonth") + p("dynamodbPitrGbMonth")),
        ),
        Line(
            "Lambda, Step Functions, SQS",
            f"{calls:,.0f} invocations, {transitions:,.0f} transitions, {sqs:,.0f} SQS requests",
            calls / 1e6 * p("lambdaRequestMillion")
            + lambda_gb_s * p("lambdaArmGbSecond" if stack.lambda_arm else "lambdaX86GbSecond")
            + transitions / 1000 * p("stepFunctionsTransition1000")
            + sqs / 1e6 * p("sqsMillion"),
        ),
        Line(
            "CloudWatch (alarms, dashboard, metrics, logs)",
            f"{stack.alarm_metrics} alarm metrics, {stack.dashboards} dashboard(s), "
            f"{metrics:g} custom metrics, {log_gb:.3f} GB of logs",
            stack.alarm_metrics * p("alarmMetricMonth")
            + stack.dashboards * p("dashboardMonth")
            + metrics * p("customMetricMonth")
            + log_gb * (p("logsIngestGb") + p("logsStoreGbMonth")),
        ),
        Line(
            "NAT gateway data processing (your NAT gateway)",
            f"{nat_gb:,.2f} GB: image pulls"
            + ("" if stack.s3_endpoint else " and every received image (no S3 gateway endpoint)"),
            nat_gb * p("natGatewayGb"),
        ),
    ]
    if stack.kms_keys:
        lines.append(
            Line("KMS keys", f"{stack.kms_keys} key(s)", stack.kms_keys * p("kmsKeyMonth"))
        )
    return lines


def monthly_growth(inputs: Inputs, profile: dict[str, Any], stack: Stack) -> float:
    """What each further month of archive adds a month: last month's images move to the
    Archive Instant Access tier (when not viewed) and the job table keeps its items."""
    gib = profile["imagesPerMonth"] * profile["mibPerImage"] / 1024
    ddb_gb = (
        profile["imagesPerMonth"] * inputs.assume("ddbItemKib") * (1 + stack.global_indexes) / 2**20
    )
    return gib * inputs.usd("healthImagingArchiveGbMonth") + ddb_gb * (
        inputs.usd("dynamodbGbMonth") + inputs.usd("dynamodbPitrGbMonth")
    )


def render(spec: Spec, template: TemplateFacts, inputs: Inputs | None = None) -> str:
    """docs/cost-estimate.md."""
    inputs = inputs or load_inputs()
    stack = Stack.read(spec, template)
    sizing = inputs.sizing
    profiles = inputs.prices["profiles"]
    cheapest = {name: cheapest_size(spec, stack, inputs, prof) for name, prof in profiles.items()}
    out = [
        header(
            "generator/documents/cost.py",
            "the template, bench/fargate-sizing.json and config/prices-us-east-1.yaml",
        ),
        f"# Monthly cost estimate: {spec.name} {spec.version}",
        "",
        f"{inputs.prices['region']}, on-demand prices as of {inputs.prices['read']} "
        "(config/prices-us-east-1.yaml names each price's AWS pricing page; the prices not "
        "confirmed on it are marked unknown at the end), without free tiers, "
        "savings plans or taxes, and without the product's own AWS Marketplace software charge "
        "(shown on the listing). Computed from what the template deploys with its defaults "
        f"({stack.tasks} task(s) of {stack.default_size.label}, {stack.load_balancers} Network "
        f"Load Balancer, DICOM objects kept {stack.dicom_retention_days:g} days, logs kept "
        f"{stack.logs_retention_days:g} days) and from the SCP image's throughput measured under "
        f"Fargate CPU quotas (bench/fargate-sizing.json, measured {sizing['measured_at']}"
        + (f", source: {sizing['source']}" if "source" in sizing else "")
        + "). Your bill depends on your volumes: the inputs are in the price table.",
        "",
        "A size *serves* a profile when one task receives the busiest hour's images within "
        "the profile's minutes while using no more CPU than the autoscaling target "
        f"({stack.cpu_target_percent:g} %), at the rate measured for CT slices over one "
        "association.",
        "",
        *table(
            ("Profile", "Images a month", "Busiest hour", "Needs", "Cheapest size that serves it"),
            [
                (
                    f"**{name}**: {prof['label']}. {prof['basis']}",
                    f"{prof['imagesPerMonth']:,} x {prof['mibPerImage']:g} MiB",
                    f"{prof['peakHourImages']:,} images in {prof['receiveMinutes']:g} min",
                    f"{required_rate(stack, prof)[0]:.1f} MB/s",
                    _size_cell(cheapest[name]),
                )
                for name, prof in profiles.items()
            ],
        ),
    ]
    totals: dict[str, tuple[float, float | None]] = {}
    small_lines: tuple[list[Line], list[Line] | None] | None = None
    for name, prof in profiles.items():
        found = cheapest[name]
        default_lines = estimate(stack, inputs, prof, stack.default_size)
        cheap_lines = estimate(stack, inputs, prof, found[0]) if found else None
        rows = [
            (
                line.item,
                line.basis,
                money(line.usd),
                money(cheap_lines[i].usd) if cheap_lines else "-",
            )
            for i, line in enumerate(default_lines)
        ]
        total = sum(line.usd for line in default_lines)
        cheap_total = sum(line.usd for line in cheap_lines) if cheap_lines else None
        totals[name] = (total, cheap_total)
        if name == "small":
            small_lines = (default_lines, cheap_lines)
        out += [
            f"## {name}: {prof['label']}",
            "",
            *table(
                (
                    "Component",
                    "Basis (template defaults)",
                    f"Defaults ({stack.default_size.label})",
                    f"Cheapest size ({found[0].label})" if found else "Cheapest size",
                ),
                [
                    *rows,
                    (
                        "**Total a month**",
                        "",
                        f"**{money(total)}**",
                        f"**{money(cheap_total)}**" if cheap_total is not None else "-",
                    ),
                ],
            ),
            "Each further month of archive adds "
            f"{_small_money(monthly_growth(inputs, prof, stack))} a month (earlier images in "
            "HealthImaging's Archive Instant Access tier, the job table's items).",
            "",
        ]
    if small_lines is not None:
        low, high = OVERVIEW_SMALL
        total, cheap = totals["small"]
        where = "inside" if low <= total <= high else "below" if total < low else "above"
        small = profiles["small"]
        out += [
            "## Against the product overview",
            "",
            f"The product overview estimates USD {low}-{high} a month for a small hospital "
            f"(100-500 images). This estimate, for {small['imagesPerMonth']:,} images: "
            f"**{money(total)}** with the template's defaults, {where} that range"
            + (
                f"; **{money(cheap)}** with the cheapest Fargate size that serves it"
                if cheap is not None
                else ""
            )
            + ". Line by line:",
            "",
            *table(
                ("Overview line", "Overview (USD)", "This estimate, defaults", "Cheapest size"),
                overview_rows(*small_lines),
            ),
        ]
    prices = inputs.prices["prices"]
    unknown = [n for n, e in prices.items() if "confirmed" not in e]
    out += [
        "## Prices used",
        "",
        f"{len(prices) - len(unknown)} of {len(prices)} prices were read on AWS's own pages "
        "(the page, the date and its words below). The others are **unknown**: AWS's pricing "
        "pages fill their price tables by script and no readable copy was at hand, so the "
        "figure used is a placeholder to be checked on the named page before anyone relies on "
        "the lines that use it. No figure comes from anyone but AWS.",
        "",
        *table(
            ("Price", "USD", "Unit", "AWS pricing page", "Confirmed on AWS's page"),
            [
                (name, f"{entry['usd']:g}", entry["unit"], entry["source"], _confirmed(entry))
                for name, entry in prices.items()
            ],
        ),
    ]
    return "\n".join(out)


def _confirmed(entry: dict[str, Any]) -> str:
    """Where an AWS page shows the price, or that it is unknown."""
    seen = entry.get("confirmed")
    if not seen:
        return "**unknown**: not confirmed on AWS's page; check it"
    return f'read {seen["read"]} on {seen["page"]}: "{seen["says"]}"'


def _small_money(usd: float) -> str:
    return f"about {money(usd)}" if usd >= 0.005 else "less than $0.01"


def _size_cell(found: tuple[Size, dict] | None) -> str:
    if not found:
        return "none measured: add tasks (TaskDesiredCount) or measure larger sizes"
    size, row = found
    return f"{size.label} ({row['mb_per_s']:g} MB/s, {row['instances_per_s']:g} images/s measured)"


def overview_rows(
    default_lines: list[Line], cheap_lines: list[Line] | None
) -> list[tuple[object, ...]]:
    """Our lines grouped as the overview's; everything the overview does not name is Other."""
    named = {prefix for _, _, prefixes in OVERVIEW_LINES for prefix in prefixes}

    def group(lines: list[Line], prefixes: tuple[str, ...]) -> float:
        if prefixes:
            return sum(x.usd for x in lines if x.item.startswith(prefixes))
        return sum(x.usd for x in lines if not x.item.startswith(tuple(named)))

    return [
        (
            label,
            f"{low}-{high}",
            money(group(default_lines, prefixes)),
            money(group(cheap_lines, prefixes)) if cheap_lines else "-",
        )
        for label, (low, high), prefixes in OVERVIEW_LINES
    ]
