"""The operator runbook: every CloudWatch alarm the template creates, what triggers it (read
from the alarm itself), what it means and what to do (the spec's `runbook:` section)."""

from __future__ import annotations

from typing import Any

from generator.documents.markdown import header, table
from generator.documents.template_facts import Resource, TemplateFacts
from generator.errors import SpecError
from generator.spec import Spec

HEADER = header("generator/documents/runbook.py", "config/product.yaml (runbook:) and the template")
ALARM = "AWS::CloudWatch::Alarm"
COMPARISONS = {
    "GreaterThanOrEqualToThreshold": ">=",
    "GreaterThanThreshold": ">",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}


def check(spec: Spec, template: TemplateFacts) -> None:
    """Every alarm has a runbook entry and every entry names an alarm; else SpecError."""
    alarms = {a.logical_id for a in template.resources(ALARM)}
    entries = set(spec.runbook)
    missing, extra = sorted(alarms - entries), sorted(entries - alarms)
    if missing or extra:
        raise SpecError(
            "config/product.yaml: $.runbook does not match the template's alarms: "
            f"no entry for {missing}, no alarm for {extra}; add or remove entries "
            "(meaning, action) so each alarm's logical ID has one"
        )


def _metric(template: TemplateFacts, props: dict[str, Any]) -> str:
    """What the alarm watches, in words."""
    if "Metrics" not in props:
        return _statistic(template, props["Statistic"], props, props["Period"])
    parts = []
    for query in props["Metrics"]:
        if "Expression" in query:
            parts.append(f"`{query['Id']} = {query['Expression']}`")
        else:
            stat = query["MetricStat"]
            words = _statistic(template, stat["Stat"], stat["Metric"], stat["Period"])
            parts.append(f"`{query['Id']}`: {words}")
    return "; ".join(parts)


def _statistic(template: TemplateFacts, statistic: str, metric: dict[str, Any], period: Any) -> str:
    """'Sum of AWS/SQS NumberOfMessages (QueueName = `X`) per 300 s'; a namespace given as
    Fn::Sub reads as the stack fills it in ('`StoreSCP/<stack-name>`')."""
    dimensions = ", ".join(
        f"{d['Name']} = {template.describe(d['Value'])}" for d in metric.get("Dimensions", [])
    )
    namespace, where = template.describe(metric["Namespace"]), f" ({dimensions})" * bool(dimensions)
    return f"{statistic} of {namespace} {metric['MetricName']}{where} per {period} s"


def _when(template: TemplateFacts, alarm: Resource) -> str:
    props = alarm.properties
    comparison = COMPARISONS.get(props["ComparisonOperator"], props["ComparisonOperator"])
    periods = props.get("EvaluationPeriods", 1)
    return (
        f"value {comparison} {template.describe(props['Threshold'])} in {periods} "
        f"evaluation period(s); missing data: {props.get('TreatMissingData', 'missing')}"
    )


def render(spec: Spec, template: TemplateFacts) -> str:
    """docs/runbook.md."""
    check(spec, template)
    alarms = list(template.resources(ALARM))
    out = [
        HEADER,
        f"# Operator runbook: {spec.name} {spec.version}",
        "",
        f"The stack creates {len(alarms)} CloudWatch alarms. Each notifies the alarm topic "
        "(stack output `AlarmTopicArn`) when it fires and when it clears: subscribe your "
        "operations address to that topic. The instances themselves are never lost when an "
        "alarm fires: every acknowledged instance is in the DICOM bucket until it is imported.",
        "",
        *table(
            ("Alarm", "Fires when"),
            [(f"[`{a.logical_id}`](#{a.logical_id.lower()})", _when(template, a)) for a in alarms],
        ),
    ]
    for alarm in alarms:
        props = alarm.properties
        entry = spec.runbook[alarm.logical_id]
        condition = (
            f" Exists only when {template.when(alarm.condition)}." if alarm.condition else ""
        )
        out += [
            f"## {alarm.logical_id}",
            "",
            f"*{props.get('AlarmDescription', '')}*{condition}",
            "",
            f"- Watches: {_metric(template, props)}",
            f"- Fires when: {_when(template, alarm)}",
            f"- Notifies: {template.describe(props.get('AlarmActions', []))}",
            "",
            f"**What it means.** {entry.meaning}",
            "",
            f"**What to do.** {entry.action}",
            "",
        ]
    return "\n".join(out)
