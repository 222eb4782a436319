"""The architecture picture a reviewer and a hospital's IT read: the data flow, drawn with AWS's
architecture icons (the `diagrams` package, which ships them and renders through Graphviz, with
no network), from the built template.

Every node is a resource of the template, found by its logical ID, and every arrow is a
reference the template makes (a listener's target group, a bucket's notification, an event
source mapping, the state machine's substitutions, an alarm's action). A template that no longer
makes one stops the release with the arrow's name, so the picture cannot drift from the stack.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.documents.template_facts import TemplateFacts, references
from generator.errors import GeneratorError
from generator.spec import Spec


@dataclass(frozen=True)
class Flow:
    """One arrow: from, to, its label, and the template property path that makes it."""

    source: str
    target: str
    label: str
    evidence: str


def _refers(template: TemplateFacts, source: str, target: str, *path: str) -> bool:
    """True when the resource `source` names `target` (Ref, GetAtt or ${X} in a Sub) under the
    property path given."""
    try:
        node: Any = template.resource(source).properties
    except StopIteration:
        return False
    for key in path:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    in_subs = {m.split(".")[0] for m in re.findall(r"\$\{([A-Za-z0-9.]+)\}", repr(node))}
    return target in references(node) or target in in_subs


def _one(template: TemplateFacts, kind: str) -> str:
    (found,) = [r.logical_id for r in template.resources(kind)]
    return found


def flows(template: TemplateFacts) -> list[Flow]:
    """The data flow, modality to HealthImaging, with the evidence for each arrow checked."""
    lb = _one(template, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    target_group = _one(template, "AWS::ElasticLoadBalancingV2::TargetGroup")
    service = _one(template, "AWS::ECS::Service")
    state_machine = _one(template, "AWS::StepFunctions::StateMachine")
    mapping = _one(template, "AWS::Lambda::EventSourceMapping")
    queue = references(template.resource(mapping).properties["EventSourceArn"])[0]
    trigger = references(template.resource(mapping).properties["FunctionName"])[0]
    listeners = [r.logical_id for r in template.resources("AWS::ElasticLoadBalancingV2::Listener")]
    port = template.resolve(template.resource(listeners[0]).properties["Port"])
    checks = [
        (listeners[0], lb, "LoadBalancerArn", "listener on the load balancer"),
        (listeners[0], target_group, "DefaultActions", "listener forwards to the target group"),
        (service, target_group, "LoadBalancers", "service registers its tasks"),
        ("TaskRole", "DicomBucket", "Policies", "tasks may write the DICOM bucket"),
        ("DicomBucket", queue, "NotificationConfiguration", "manifest events to the queue"),
        (trigger, state_machine, "Environment", "trigger starts the state machine"),
        (state_machine, "Datastore", "DefinitionSubstitutions", "workflow imports"),
        (state_machine, "ResultsBucket", "DefinitionSubstitutions", "job output location"),
        (state_machine, "RecordResultsFunction", "DefinitionSubstitutions", "results step"),
        ("RecordResultsFunction", "DicomImportJobTable", "Environment", "results to the table"),
    ]
    checks += [
        (alarm.logical_id, "AlarmTopic", "AlarmActions", "alarm notifies the topic")
        for alarm in template.resources("AWS::CloudWatch::Alarm")
    ]
    for source, target, key, what in checks:
        if not _refers(template, source, target, key):
            raise GeneratorError(
                f"architecture picture: {what}: {source}.{key} no longer names {target}; "
                "update generator/release/diagram.py to the template"
            )
    return [
        Flow("modality", lb, f"DICOM, TCP or TLS\nport {port} (SCPPort)", "Listener.Port"),
        Flow(lb, service, "to a healthy task", f"{listeners[0]}.DefaultActions"),
        Flow(service, "DicomBucket", "each instance,\nthen ack", "TaskRole.Policies"),
        Flow(
            "DicomBucket", queue, "batch manifest\nevent", "DicomBucket.NotificationConfiguration"
        ),
        Flow(queue, trigger, "", f"{mapping}"),
        Flow(trigger, state_machine, "one execution\nper batch", f"{trigger}.Environment"),
        Flow(state_machine, "Datastore", "StartDICOMImportJob", "DefinitionSubstitutions"),
        Flow("Datastore", "ResultsBucket", "job output", "DefinitionSubstitutions.OutputS3Uri"),
        Flow(state_machine, "RecordResultsFunction", "", "DefinitionSubstitutions"),
        Flow(
            "RecordResultsFunction", "DicomImportJobTable", "one item\nper instance", "Environment"
        ),
    ]


def render_png(spec: Spec, template: TemplateFacts) -> bytes:
    """The data-flow picture as PNG (Graphviz `dot` through `diagrams`, in a temporary folder)."""
    from diagrams import Cluster, Diagram, Edge
    from diagrams.aws.compute import ElasticContainerServiceService, Lambda
    from diagrams.aws.database import DynamodbTable
    from diagrams.aws.general import GenericDatabase, OfficeBuilding
    from diagrams.aws.integration import (
        SimpleNotificationServiceSns,
        SimpleQueueServiceSqs,
        StepFunctions,
    )
    from diagrams.aws.management import CloudwatchAlarm
    from diagrams.aws.network import ElbNetworkLoadBalancer
    from diagrams.aws.security import KeyManagementService
    from diagrams.aws.storage import SimpleStorageServiceS3Bucket

    arrows = flows(template)
    alarms = [r.logical_id for r in template.resources("AWS::CloudWatch::Alarm")]
    low, high = template.default("TaskDesiredCount"), template.default("AutoscaleMaxCapacity")
    tasks_label = f"SCP tasks on\nECS Fargate\n({low} to {high})"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "architecture")
        graph = {"fontsize": "20", "pad": "0.4", "nodesep": "0.7", "ranksep": "0.9"}
        with Diagram(
            f"{spec.name} {spec.version}: data flow",
            filename=str(out),
            outformat="png",
            show=False,
            direction="LR",
            curvestyle="curved",
            graph_attr=graph,
        ):
            nodes: dict[str, Any] = {
                "modality": OfficeBuilding("Hospital\nmodalities and PACS", nodeid="modality")
            }
            with Cluster("Your AWS account and Region"):
                with Cluster("Your VPC"):
                    nodes[arrows[0].target] = ElbNetworkLoadBalancer(
                        "Network Load Balancer", nodeid="nlb"
                    )
                    with Cluster("Private subnets"):
                        nodes[arrows[1].target] = ElasticContainerServiceService(
                            tasks_label, nodeid="tasks"
                        )
                nodes["DicomBucket"] = SimpleStorageServiceS3Bucket(
                    "DICOM bucket\nincoming/, batches/", nodeid="dicom"
                )
                nodes[arrows[3].target] = SimpleQueueServiceSqs("Import queue", nodeid="queue")
                nodes[arrows[4].target] = Lambda("Trigger", nodeid="trigger")
                nodes[arrows[5].target] = StepFunctions("Import workflow", nodeid="workflow")
                # diagrams 0.25.1 has no AWS HealthImaging icon: a generic data store, named.
                nodes["Datastore"] = GenericDatabase(
                    "AWS HealthImaging\ndata store", nodeid="healthimaging"
                )
                nodes["ResultsBucket"] = SimpleStorageServiceS3Bucket(
                    "Results bucket", nodeid="results"
                )
                nodes["RecordResultsFunction"] = Lambda("RecordResults", nodeid="record")
                nodes["DicomImportJobTable"] = DynamodbTable("Job table", nodeid="table")
                with Cluster("Monitoring and keys"):
                    alarm = CloudwatchAlarm(f"{len(alarms)} CloudWatch\nalarms", nodeid="alarms")
                    topic = SimpleNotificationServiceSns(
                        "Alarm topic\n(your e-mail)", nodeid="topic"
                    )
                    KeyManagementService(
                        "KMS key: encrypts buckets,\ntable, queues, logs, data store",
                        nodeid="key",
                    )
            for arrow in arrows:
                nodes[arrow.source] >> Edge(label=arrow.label) >> nodes[arrow.target]
            alarm >> topic
        return out.with_suffix(".png").read_bytes()
