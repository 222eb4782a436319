"""Alarms (DLQ depth, Lambda error rate, failed imports, ECS CPU and memory, the SCP's store
failures and rejected associations, the load balancer's healthy and unhealthy targets) and a
dashboard."""

from __future__ import annotations

import json
from typing import Any

from troposphere import GetAtt, Ref, Sub, Template, cloudwatch, sns

from generator.contracts import contracts
from generator.spec import Alarms, Spec
from generator.template.iam import (
    allow,
    deny_insecure_transport,
    policy_document,
    same_account,
    var,
)
from generator.template.kms import Key
from generator.template.network import Network
from generator.template.parameters import Inputs
from generator.template.service import Service
from generator.template.workflow import Queues, Workflow, logical_name

PERIOD = 300
TARGET_HEALTH_PERIOD = 60  # the load balancer reports target health every minute
FAILED_EXECUTIONS = ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")


def _alarm(t: Template, name: str, description: str, topic: sns.Topic, **props: Any) -> None:
    props.setdefault("EvaluationPeriods", 1)
    props.setdefault("TreatMissingData", "notBreaching")
    t.add_resource(
        cloudwatch.Alarm(
            name,
            AlarmDescription=description,
            AlarmActions=[Ref(topic)],
            OKActions=[Ref(topic)],
            **props,
        )
    )


def _scp_alarm(
    t: Template,
    name: str,
    description: str,
    topic: sns.Topic,
    metric: str,
    threshold: Any,
    periods: Any = 1,
) -> None:
    """An alarm on the 5-minute Sum of one of the SCP's EMF metrics (scp/telemetry.py) reaching
    `threshold` in `periods` consecutive periods."""
    _alarm(
        t,
        name,
        description,
        topic,
        EvaluationPeriods=periods,
        Namespace=Sub(contracts().stack_metrics_namespace),
        MetricName=metric,
        Statistic="Sum",
        Period=PERIOD,
        Threshold=threshold,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def _metric(
    metric_id: str, namespace: str, name: str, dimension: str, value: Any
) -> cloudwatch.MetricDataQuery:
    """A 5-minute Sum of one metric with one dimension, as input to a math expression."""
    return cloudwatch.MetricDataQuery(
        Id=metric_id,
        ReturnData=False,
        MetricStat=cloudwatch.MetricStat(
            Metric=cloudwatch.Metric(
                Namespace=namespace,
                MetricName=name,
                Dimensions=[cloudwatch.MetricDimension(Name=dimension, Value=value)],
            ),
            Period=PERIOD,
            Stat="Sum",
        ),
    )


def _expression(expression: str, label: str) -> cloudwatch.MetricDataQuery:
    return cloudwatch.MetricDataQuery(
        Id="result", Expression=expression, Label=label, ReturnData=True
    )


def _topic(t: Template, inputs: Inputs, key: Key) -> sns.Topic:
    """The alarm topic, encrypted with the stack's key (whose policy lets CloudWatch use it: the
    AWS managed SNS key does not, so alarms could not publish), published to by this account's
    alarms only, over TLS; the AlarmEmail subscription when that is set."""
    topic = t.add_resource(sns.Topic("AlarmTopic", KmsMasterKeyId=key.arn))
    alarms = Sub("arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*")
    t.add_resource(
        sns.TopicPolicy(
            "AlarmTopicPolicy",
            Topics=[Ref(topic)],
            PolicyDocument=policy_document(
                [
                    {
                        "Sid": "CloudWatchAlarms",
                        "Principal": {"Service": "cloudwatch.amazonaws.com"},
                        **allow(
                            ["sns:Publish"],
                            [Ref(topic)],
                            {"ArnLike": {"aws:SourceArn": alarms}, **same_account()},
                        ),
                    },
                    deny_insecure_transport("sns:Publish", [Ref(topic)]),
                ]
            ),
        )
    )
    t.add_resource(
        sns.SubscriptionResource(
            "AlarmEmailSubscription",
            Condition=inputs.conditions.has_alarm_email.name,
            TopicArn=Ref(topic),
            Protocol="email",
            Endpoint=Ref(inputs.parameters.AlarmEmail),
        )
    )
    return topic


def add_monitoring(
    t: Template,
    spec: Spec,
    inputs: Inputs,
    key: Key,
    network: Network,
    service: Service,
    queues: Queues,
    workflow: Workflow,
) -> None:
    limits = spec.resources.alarms
    topic = _topic(t, inputs, key)
    _alarm(
        t,
        "DeadLetterQueueAlarm",
        "Batch manifest events reached the dead-letter queue: their batches were not imported.",
        topic,
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[
            cloudwatch.MetricDimension(
                Name="QueueName", Value=GetAtt(queues.dead_letter_queue, "QueueName")
            )
        ],
        Statistic="Maximum",
        Period=PERIOD,
        Threshold=limits.dlq_depth,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    _alarm(
        t,
        "FailedImportsAlarm",
        "HealthImaging import workflow executions failed, timed out or were aborted.",
        topic,
        Metrics=[
            *(
                _metric(f"m{i}", "AWS/States", name, "StateMachineArn", Ref(workflow.state_machine))
                for i, name in enumerate(FAILED_EXECUTIONS)
            ),
            _expression("m0 + m1 + m2", "Failed imports"),
        ],
        Threshold=limits.failed_imports,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    _alarm(
        t,
        "ImportConflictAlarm",
        "Instances went to a non-primary image set (importStatus CONFLICT): their metadata "
        "conflicts with the primary image set of their series, and viewers of the study do not "
        "show them. Find them with storescp-lookup; fix the data, then storescp-redrive.",
        topic,
        Namespace=workflow.metric_namespace,
        MetricName="ConflictInstances",
        Statistic="Sum",
        Period=PERIOD,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    _scp_alarm(
        t,
        "DirectStoreFallbackAlarm",
        "Instances routed to HealthImaging's StoreDICOM keep falling back to the batch import "
        "(throttled, unreachable or failing): urgent studies are stored but not viewable in "
        "seconds.",
        topic,
        "DirectFallbacks",
        limits.direct_fallbacks,
        limits.direct_fallback_periods,
    )
    _scp_alarm(
        t,
        "CommitmentUndeliverableAlarm",
        "A Storage Commitment report could not be delivered within CommitmentDeliveryWindow: "
        "the modality does not know its images are safe. See the runbook.",
        topic,
        "CommitmentsUndeliverable",  # scp/commitment/reporter.py
        1,
    )
    for name, function in workflow.functions.items():
        _alarm(
            t,
            f"{logical_name(name)}ErrorRateAlarm",
            f"Error rate of the {name} function is above {limits.lambda_error_rate_percent} %.",
            topic,
            Metrics=[
                _metric("errors", "AWS/Lambda", "Errors", "FunctionName", Ref(function)),
                _metric("invocations", "AWS/Lambda", "Invocations", "FunctionName", Ref(function)),
                _expression("IF(invocations > 0, 100 * errors / invocations, 0)", "Error rate (%)"),
            ],
            Threshold=limits.lambda_error_rate_percent,
            ComparisonOperator="GreaterThanThreshold",
        )
    for metric, limit in (
        ("CPUUtilization", limits.cpu_percent),
        ("MemoryUtilization", limits.memory_percent),
    ):
        _alarm(
            t,
            f"Service{metric}Alarm",
            f"Average {metric} of the SCP service is above {limit} %.",
            topic,
            Condition=inputs.conditions.cloud_scp.name,
            Namespace="AWS/ECS",
            MetricName=metric,
            Dimensions=[
                cloudwatch.MetricDimension(Name="ClusterName", Value=Ref(service.cluster)),
                cloudwatch.MetricDimension(
                    Name="ServiceName", Value=GetAtt(service.service, "Name")
                ),
            ],
            Statistic="Average",
            Period=PERIOD,
            Threshold=limit,
            ComparisonOperator="GreaterThanThreshold",
        )
    _scp_alarms(t, limits, topic)
    _target_alarms(t, limits, topic, network, inputs.conditions.cloud_scp.name)
    t.add_resource(
        cloudwatch.Dashboard(
            "Dashboard",
            DashboardBody=inputs.conditions.cloud_scp.choose(
                Sub(_dashboard_body(network, service, queues, workflow)),
                Sub(_dashboard_body(None, None, queues, workflow)),
            ),
        )
    )


def _scp_alarms(t: Template, limits: Alarms, topic: sns.Topic) -> None:
    """What a hospital notices first: images refused, modalities turned away."""
    _scp_alarm(
        t,
        "StoreFailuresAlarm",
        f"The SCPs answered at least {limits.store_failures} C-STORE(s) with a failure status "
        f"in each of {limits.store_failures_periods} consecutive 5-minute periods: modalities "
        "keep images they cannot send.",
        topic,
        "StoreFailures",
        limits.store_failures,
        limits.store_failures_periods,
    )
    _scp_alarm(
        t,
        "RejectedAssociationsAlarm",
        f"The SCPs rejected at least {limits.rejected_associations} associations in 5 minutes "
        "(calling or called AE title not allowed, or the association limit reached).",
        topic,
        "RejectedAssociations",
        limits.rejected_associations,
    )


def _target_alarms(
    t: Template, limits: Alarms, topic: sns.Topic, network: Network, condition: str
) -> None:
    """Targets behind the load balancer (which exists under `condition`), as its health checks
    of GET /health see them (503 while an SCP cannot store). AWS/NetworkELB HealthyHostCount
    and UnHealthyHostCount, dimensions LoadBalancer and TargetGroup (Elastic Load Balancing,
    "CloudWatch metrics for your Network Load Balancer")."""
    dimensions = [
        cloudwatch.MetricDimension(
            Name="LoadBalancer", Value=GetAtt(network.load_balancer, "LoadBalancerFullName")
        ),
        cloudwatch.MetricDimension(
            Name="TargetGroup", Value=GetAtt(network.target_group, "TargetGroupFullName")
        ),
    ]
    _alarm(
        t,
        "NoHealthyTargetsAlarm",
        f"No healthy SCP behind the load balancer for {limits.no_healthy_target_minutes} "
        "minutes: every association is refused.",
        topic,
        Condition=condition,
        Namespace="AWS/NetworkELB",
        MetricName="HealthyHostCount",
        Dimensions=dimensions,
        Statistic="Minimum",
        Period=TARGET_HEALTH_PERIOD,
        EvaluationPeriods=limits.no_healthy_target_minutes,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching",  # no report of a healthy target is no healthy target
    )
    _alarm(
        t,
        "UnhealthyTargetsAlarm",
        f"At least one SCP behind the load balancer was unhealthy in each of "
        f"{limits.unhealthy_target_periods} consecutive 5-minute periods.",
        topic,
        Condition=condition,
        Namespace="AWS/NetworkELB",
        MetricName="UnHealthyHostCount",
        Dimensions=dimensions,
        Statistic="Maximum",
        Period=PERIOD,
        EvaluationPeriods=limits.unhealthy_target_periods,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def _widget(title: str, metrics: list[list], y: int, x: int, stat: str = "Sum") -> dict:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "stat": stat,
            "period": PERIOD,
            "metrics": metrics,
        },
    }


def _dashboard_body(
    network: Network | None, service: Service | None, queues: Queues, workflow: Workflow
) -> str:
    """Dashboard JSON as an Fn::Sub string (resource names resolved by CloudFormation); without
    the cloud SCP (network and service None) the workflow's widgets only."""
    widgets = _workflow_widgets(queues, workflow)
    if network is not None and service is not None:
        widgets = _scp_widgets(network, service) + widgets
    return json.dumps({"widgets": widgets}, sort_keys=True)


def _scp_widgets(network: Network, service: Service) -> list[dict]:
    dimensions = ["ClusterName", var(service.cluster), "ServiceName", var(service.service, "Name")]
    scp = contracts().stack_metrics_namespace
    return [
        _widget(
            "SCP service CPU and memory (%)",
            [
                ["AWS/ECS", "CPUUtilization", *dimensions],
                ["AWS/ECS", "MemoryUtilization", *dimensions],
            ],
            0,
            0,
            "Average",
        ),
        _widget(
            "Load balancer active connections",
            [
                [
                    "AWS/NetworkELB",
                    "ActiveFlowCount",
                    "LoadBalancer",
                    var(network.load_balancer, "LoadBalancerFullName"),
                ]
            ],
            0,
            12,
            "Average",
        ),
        _widget(
            "Load balancer targets (SCP tasks able to store)",
            [
                [
                    "AWS/NetworkELB",
                    metric,
                    "LoadBalancer",
                    var(network.load_balancer, "LoadBalancerFullName"),
                    "TargetGroup",
                    var(network.target_group, "TargetGroupFullName"),
                ]
                for metric in ("HealthyHostCount", "UnHealthyHostCount")
            ],
            18,
            0,
            "Minimum",
        ),
        _widget(
            "Instances stored and failures (SCP)",
            [[scp, "InstancesStored"], [scp, "StoreFailures"], [scp, "RejectedAssociations"]],
            6,
            0,
        ),
        _widget("Storage commitment (SCP)", _commitment_metrics(scp), 18, 12),
    ]


# The storage-commitment reporter's metrics (scp/commitment/reporter.py): the per-period sums,
# and the gauge of pending transactions, which every task reports for the whole table (so its
# Maximum, on the right axis). A metric's last element may be an object of rendering properties
# that override the widget's (CloudWatch API reference, "Dashboard Body Structure and Syntax",
# "Metric Widget: Format for Each Metric in the Array").
COMMITMENT_SUMS = {
    "InstancesCommitted": "Instances committed",
    "CommitmentFailures": "Instances failed (Failed SOP Sequence)",
    "CommitmentsUndeliverable": "Reports undeliverable",
}
COMMITMENT_PENDING = "CommitmentsPending"


def _commitment_metrics(namespace: str) -> list[list]:
    return [
        *([namespace, name, {"label": label}] for name, label in COMMITMENT_SUMS.items()),
        [
            namespace,
            COMMITMENT_PENDING,
            {"label": "Transactions pending", "stat": "Maximum", "yAxis": "right"},
        ],
    ]


def _workflow_widgets(queues: Queues, workflow: Workflow) -> list[dict]:
    return [
        _widget(
            "Import workflow executions",
            [
                ["AWS/States", m, "StateMachineArn", var(workflow.state_machine)]
                for m in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed")
            ],
            6,
            12,
        ),
        _widget(
            "Lambda invocations and errors",
            [
                ["AWS/Lambda", m, "FunctionName", var(f)]
                for f in workflow.functions.values()
                for m in ("Invocations", "Errors")
            ],
            12,
            0,
        ),
        _widget(
            "Import queues",
            [
                [
                    "AWS/SQS",
                    "ApproximateNumberOfMessagesVisible",
                    "QueueName",
                    var(q, "QueueName"),
                ]
                for q in (queues.queue, queues.dead_letter_queue)
            ],
            12,
            12,
            "Maximum",
        ),
    ]
