"""The alarms a hospital needs: sustained store failures, rejected associations, no healthy
target behind the load balancer; each watching what the SCP and the load balancer really emit,
each with a runbook entry whose claims name real log events."""

from __future__ import annotations

import ast
import io
import json
import re
from pathlib import Path

from scp.telemetry import Metrics
from tests.generator.test_resources import of_type

REPO = Path(__file__).resolve().parents[2]


def _task_environment(resources) -> dict:
    (task,) = of_type(resources, "AWS::ECS::TaskDefinition").values()
    (container,) = task["Properties"]["ContainerDefinitions"]
    return {e["Name"]: e["Value"] for e in container["Environment"]}


def test_scp_alarms_watch_the_metrics_the_scp_emits(resources, spec):
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    limits = spec.resources.alarms
    emitted = io.StringIO()
    Metrics("StoreSCP/test", emitted).flush(0)
    (directive,) = json.loads(emitted.getvalue())["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [[]]  # so the alarms name no dimension
    namespace = _task_environment(resources)["METRICS_NAMESPACE"]
    expected = {
        "StoreFailuresAlarm": (
            "StoreFailures",
            limits.store_failures,
            limits.store_failures_periods,
        ),
        "RejectedAssociationsAlarm": ("RejectedAssociations", limits.rejected_associations, 1),
    }
    for name, (metric, threshold, periods) in expected.items():
        props = alarms[name]["Properties"]
        assert metric in {m["Name"] for m in directive["Metrics"]}
        assert (props["Namespace"], props["MetricName"], props["Statistic"]) == (
            namespace,
            metric,
            "Sum",
        )
        assert "Dimensions" not in props
        assert (props["Threshold"], props["EvaluationPeriods"]) == (threshold, periods)
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert limits.store_failures_periods > 1, "one failing file is not a sustained failure"


def test_target_alarms_watch_the_load_balancers_target_group(resources, spec):
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    (balancer,) = of_type(resources, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    (group,) = of_type(resources, "AWS::ElasticLoadBalancingV2::TargetGroup")
    dimensions = [
        {"Name": "LoadBalancer", "Value": {"Fn::GetAtt": [balancer, "LoadBalancerFullName"]}},
        {"Name": "TargetGroup", "Value": {"Fn::GetAtt": [group, "TargetGroupFullName"]}},
    ]
    none = alarms["NoHealthyTargetsAlarm"]["Properties"]
    assert (none["Namespace"], none["MetricName"], none["Statistic"]) == (
        "AWS/NetworkELB",
        "HealthyHostCount",
        "Minimum",
    )
    assert none["Dimensions"] == dimensions
    assert (none["ComparisonOperator"], none["Threshold"]) == ("LessThanThreshold", 1)
    assert none["EvaluationPeriods"] == spec.resources.alarms.no_healthy_target_minutes
    assert (none["Period"], none["TreatMissingData"]) == (60, "breaching")
    some = alarms["UnhealthyTargetsAlarm"]["Properties"]
    assert (some["MetricName"], some["Statistic"], some["Dimensions"]) == (
        "UnHealthyHostCount",
        "Maximum",
        dimensions,
    )
    assert (some["ComparisonOperator"], some["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    # The load balancer's health check is the SCP's /health, which is 503 while it cannot store.
    props = resources[group]["Properties"]
    assert (props["HealthCheckPath"], props["HealthCheckPort"]) == (
        "/health",
        str(spec.resources.health_port),
    )


def test_the_runbook_names_only_log_events_the_scp_writes(spec):
    written = set()
    for source in (REPO / "scp").rglob("*.py"):
        written |= set(re.findall(r'"event": "([a-z-]+)"', source.read_text()))
    for alarm, entry in spec.runbook.items():
        for event in re.findall(r'event = "([a-z-]+)"', entry.meaning + entry.action):
            assert event in written, f"runbook {alarm} names log event {event!r} nobody writes"
    named = {
        e
        for entry in spec.runbook.values()
        for e in re.findall(r'event = "([a-z-]+)"', entry.action)
    }
    assert {"store-failed", "storage-unavailable", "association-rejected"} <= named


def test_the_runbooks_operator_commands_carry_what_they_need(spec):
    """`storescp-redrive BATCH_ID` alone fails (no state machine): each command names the stack,
    whose outputs give the state machine, the bucket and the table."""
    commands = [
        c
        for entry in spec.runbook.values()
        for c in re.findall(r"`(storescp-[a-z]+ [^`]*)`", entry.action)
    ]
    assert commands
    for command in commands:
        assert "--stack STACK_NAME" in command, command


def _reporter_metrics() -> set[str]:
    """The metric names the commitment reporter passes to Metrics.add and Metrics.gauge."""
    tree = ast.parse((REPO / "scp/commitment/reporter.py").read_text())
    return {
        call.args[0].value
        for call in ast.walk(tree)
        if isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in ("add", "gauge")
        and isinstance(call.func.value, ast.Attribute)
        and call.func.value.attr == "metrics"
        and isinstance(call.args[0], ast.Constant)
    }


def test_the_dashboard_shows_the_commitment_metrics_the_scp_emits(resources):
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::If"][1]["Fn::Sub"]
    (widget,) = [
        w for w in json.loads(body)["widgets"] if w["properties"]["title"].startswith("Storage co")
    ]
    namespace = _task_environment(resources)["METRICS_NAMESPACE"]["Fn::Sub"]
    metrics = widget["properties"]["metrics"]
    assert {m[0] for m in metrics} == {namespace}
    emitted = _reporter_metrics()
    assert emitted == {"CommitmentsPending", "InstancesCommitted", "CommitmentFailures",
                       "CommitmentsUndeliverable"}  # fmt: skip
    assert {m[1] for m in metrics} == emitted and emitted <= set(Metrics.UNITS)
    # Every task reports the pending count of the whole table: its maximum, not the sum.
    (pending,) = [m for m in metrics if m[1] == "CommitmentsPending"]
    assert pending[-1]["stat"] == "Maximum" and widget["properties"]["stat"] == "Sum"
