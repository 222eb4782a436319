"""The import workflow: queues, the state machine (HealthImaging calls are AWS SDK integrations),
the functions whose code the template carries inline, their log groups, metric filters and the
sweeper schedule, and the HealthImaging data access role. Nothing is fetched from a seller's
bucket: every function's code is Code.ZipFile, built by generator/template/inline.py from
lambdas/."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from troposphere import GetAtt, Ref, Sub, Template, awslambda, events, iam, logs, sqs
from troposphere import stepfunctions as sfn

from generator.contracts import contracts
from generator.errors import SpecError
from generator.spec import Spec
from generator.template.iam import (
    allow,
    arn,
    deny_insecure_transport,
    log_writer,
    policy_document,
    role,
    same_account,
    var,
)
from generator.template.inline import HANDLER
from generator.template.kms import Key
from generator.template.parameters import Inputs
from generator.template.storage import BATCHES_PREFIX, INCOMING_PREFIX, OPEN_PREFIX, Storage

IMAGING_SERVICE = "medical-imaging.amazonaws.com"
# Values the ASL takes from the stack (DefinitionSubstitutions), besides ${XFunctionArn}.
STACK_VALUES = ("DatastoreId", "DataAccessRoleArn", "OutputS3Uri", "JobTableName")
# Instance counts of the function log line `batch-recorded` (lambdas/results.py), as metrics.
INSTANCE_METRICS = {
    "ImportedInstances": "importedCount",
    "ConflictInstances": "conflictCount",
    "FailedInstances": "failedCount",
}
VISIBILITY_FACTOR = 6  # AWS guidance: queue visibility timeout at least 6x the function timeout.


@dataclass(frozen=True)
class Queues:
    queue: sqs.Queue
    dead_letter_queue: sqs.Queue
    policy: sqs.QueuePolicy


@dataclass(frozen=True)
class Workflow:
    functions: dict[str, awslambda.Function]
    log_groups: dict[str, logs.LogGroup]
    state_machine: sfn.StateMachine
    metric_namespace: Sub  # of INSTANCE_METRICS


def logical_name(function: str) -> str:
    """'record_results' -> 'RecordResults'."""
    return "".join(part.capitalize() for part in function.split("_"))


def add_queues(t: Template, spec: Spec, key: Key) -> Queues:
    """Import queue (S3 events for batch manifests) with its dead-letter queue, both encrypted
    with the stack's key (its policy lets S3 notifications use it)."""
    res = spec.resources
    dlq = t.add_resource(
        sqs.Queue("ImportDeadLetterQueue", KmsMasterKeyId=key.arn, MessageRetentionPeriod=1209600)
    )
    queue = t.add_resource(
        sqs.Queue(
            "ImportQueue",
            KmsMasterKeyId=key.arn,
            MessageRetentionPeriod=1209600,
            VisibilityTimeout=VISIBILITY_FACTOR * res.lambda_timeout_seconds,
            RedrivePolicy=sqs.RedrivePolicy(
                deadLetterTargetArn=GetAtt(dlq, "Arn"),
                maxReceiveCount=res.import_queue_max_receive_count,
            ),
        )
    )
    policy = t.add_resource(
        sqs.QueuePolicy(
            "ImportQueuePolicy",
            Queues=[Ref(queue)],
            PolicyDocument=policy_document(
                [
                    {
                        "Sid": "BatchManifestEvents",
                        "Principal": {"Service": "s3.amazonaws.com"},
                        **allow(["sqs:SendMessage"], [GetAtt(queue, "Arn")], same_account()),
                    },
                    deny_insecure_transport("sqs:*", [GetAtt(queue, "Arn")]),
                ]
            ),
        )
    )
    return Queues(queue, dlq, policy)


def _data_access_role(t: Template, storage: Storage, key: Key) -> iam.Role:
    """HealthImaging reads the received objects and writes job results with this role; the key
    decrypts what it reads and encrypts what it writes, through S3 only."""
    dicom, results = storage.dicom_bucket, storage.results_bucket
    return role(
        t,
        "DataAccessRole",
        IMAGING_SERVICE,
        [
            allow(["s3:ListBucket"], [GetAtt(dicom, "Arn"), GetAtt(results, "Arn")]),
            allow(["s3:GetObject"], [arn(dicom, f"/{INCOMING_PREFIX}*")]),
            allow(["s3:PutObject"], [arn(results, "/*")]),
            key.via("s3", ["kms:Decrypt", "kms:GenerateDataKey"]),
        ],
        trust_condition=same_account(),
    )


def _function_statements(
    storage: Storage, queues: Queues, key: Key, state_machine: sfn.StateMachine | None
) -> dict[str, list[dict[str, Any]]]:
    """What each function may do beyond writing its own logs (state_machine is None while the
    functions it invokes are built: none of them starts executions)."""
    dicom, results = storage.dicom_bucket, storage.results_bucket
    write_table = allow(
        ["dynamodb:BatchWriteItem", "dynamodb:PutItem"], [GetAtt(storage.table, "Arn")]
    )
    # The key through each service, for exactly what each function does with it.
    table_key = key.via("dynamodb", ["kms:Decrypt", "kms:GenerateDataKey"])
    s3_read_key = key.via("s3", ["kms:Decrypt"])
    read_manifests = allow(["s3:GetObject"], [arn(dicom, f"/{BATCHES_PREFIX}*")])
    start_executions = (
        [allow(["states:StartExecution"], [Ref(state_machine)])] if state_machine else []
    )
    return {
        "trigger": [
            read_manifests,
            allow(
                [
                    "sqs:ChangeMessageVisibility",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ReceiveMessage",
                ],
                [GetAtt(queues.queue, "Arn")],
            ),
            s3_read_key,
            key.via("sqs", ["kms:Decrypt"]),
            *start_executions,
        ],
        "record_results": [
            read_manifests,
            allow(["s3:GetObject"], [arn(results, "/*")]),
            # Copy what was imported as primary onto itself, tagged: the bucket's lifecycle
            # expires only that, counting from the copy (lambdas/results.py).
            allow(
                ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"],
                [arn(dicom, f"/{INCOMING_PREFIX}*")],
            ),
            key.via("s3", ["kms:Decrypt", "kms:GenerateDataKey"]),
            write_table,
            table_key,
        ],
        "record_failure": [read_manifests, s3_read_key, write_table, table_key],
        "sweeper": [
            allow(["s3:ListBucket"], [GetAtt(dicom, "Arn")]),
            # It reads open markers only (lambdas/sweep.py); instances are listed, never read.
            allow(["s3:GetObject"], [arn(dicom, "/open/*")]),
            allow(["s3:PutObject"], [arn(dicom, f"/{BATCHES_PREFIX}*")]),
            allow(["s3:DeleteObject"], [arn(dicom, f"/{OPEN_PREFIX}*")]),
            key.via("s3", ["kms:Decrypt", "kms:GenerateDataKey"]),
        ],
    }


def _environment(
    spec: Spec, function: str, storage: Storage, state_machine: sfn.StateMachine | None
) -> dict[str, Any]:
    """The variables a function reads (docs/CONTRACTS.md, "Import workflow")."""
    if function == "trigger":
        return {"STATE_MACHINE_ARN": Ref(state_machine)} if state_machine else {}
    if function == "sweeper":
        return {
            "DICOM_BUCKET": Ref(storage.dicom_bucket),
            "STORE_PREFIX": "",
            "SWEEP_AFTER_SECONDS": str(spec.resources.sweep_after_seconds),
        }
    return {"JOB_TABLE_NAME": Ref(storage.table)}


def _placeholder(function: str) -> str:
    return f"{logical_name(function)}FunctionArn"


def invoked_functions(spec: Spec) -> list[str]:
    """Functions the state machine invokes (its ${XFunctionArn} placeholders), in spec order;
    refuse unknown placeholders."""
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", str(spec.definition)))
    known = {_placeholder(name): name for name in spec.workflow.functions}
    unknown = sorted(placeholders - set(known) - set(STACK_VALUES))
    if unknown:
        raise SpecError(
            f"{spec.workflow.definition_file}: placeholders {unknown} match no function "
            f"in $.workflow.functions nor a stack value {list(STACK_VALUES)} (functions: "
            f"{sorted(known)}); fix the definition or the spec"
        )
    return [name for name in spec.workflow.functions if _placeholder(name) in placeholders]


def definition_substitutions(functions: dict[str, awslambda.Function]) -> dict[str, GetAtt]:
    """Fill every ${XFunctionArn} placeholder of the ASL with the function's ARN."""
    return {_placeholder(name): GetAtt(fn, "Arn") for name, fn in sorted(functions.items())}


def _log_group(t: Template, inputs: Inputs, key: Key, title: str, name: Sub) -> logs.LogGroup:
    """A log group named `name`, kept LogRetentionDays and encrypted with the stack's key."""
    return t.add_resource(
        logs.LogGroup(
            title,
            LogGroupName=name,
            RetentionInDays=Ref(inputs.parameters.LogRetentionDays),
            KmsKeyId=key.arn,
        )
    )


def _add_function(
    t: Template,
    spec: Spec,
    inputs: Inputs,
    key: Key,
    name: str,
    code: str,
    statements: list[dict[str, Any]],
    environment: dict[str, Any],
) -> tuple[awslambda.Function, logs.LogGroup]:
    """One workflow function, its code inline, with its log group
    (/aws/lambda/{stack}-{Function}) and its role."""
    base = logical_name(name)
    log_group = _log_group(
        t, inputs, key, f"{base}LogGroup", Sub(f"/aws/lambda/${{AWS::StackName}}-{base}")
    )
    function_role = role(
        t,
        f"{base}FunctionRole",
        "lambda.amazonaws.com",
        [
            log_writer(log_group),
            # X-Ray has no resource-level permissions: "*" is the only choice.
            allow(["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"]),
            *statements,
        ],
    )
    function = t.add_resource(
        awslambda.Function(
            f"{base}Function",
            Description=f"StoreSCP import workflow: lambdas.{name} (source in the release bundle)",
            Runtime="python3.12",
            Handler=HANDLER,
            Code=awslambda.Code(ZipFile=code),
            Role=GetAtt(function_role, "Arn"),
            Timeout=spec.resources.lambda_timeout_seconds,
            MemorySize=spec.resources.lambda_memory_mib,
            Architectures=["arm64"],
            TracingConfig=awslambda.TracingConfig(Mode="Active"),
            LoggingConfig=awslambda.LoggingConfig(LogGroup=Ref(log_group)),
            **(
                {"Environment": awslambda.Environment(Variables=environment)} if environment else {}
            ),
        )
    )
    return function, log_group


def _instance_metrics(t: Template, log_groups: dict[str, logs.LogGroup], namespace: Sub) -> None:
    """Metrics from RecordResults' `batch-recorded` lines: instances imported, in conflict and
    failed (a CloudWatch Logs metric filter, no code)."""
    if "record_results" not in log_groups:
        return
    for metric, field in INSTANCE_METRICS.items():
        t.add_resource(
            logs.MetricFilter(
                f"{metric}MetricFilter",
                LogGroupName=Ref(log_groups["record_results"]),
                FilterPattern='{ $.event = "batch-recorded" }',
                MetricTransformations=[
                    logs.MetricTransformation(
                        MetricNamespace=namespace,
                        MetricName=metric,
                        MetricValue=f"$.{field}",
                        DefaultValue=0,
                        Unit="Count",
                    )
                ],
            )
        )


def add_workflow(
    t: Template,
    spec: Spec,
    code: Mapping[str, str],
    inputs: Inputs,
    key: Key,
    storage: Storage,
    queues: Queues,
) -> Workflow:
    """The functions the state machine invokes, the state machine, then the functions that
    start it (trigger) or run beside it (sweeper)."""
    data_access_role = _data_access_role(t, storage, key)
    invoked = invoked_functions(spec)
    functions: dict[str, awslambda.Function] = {}
    log_groups: dict[str, logs.LogGroup] = {}

    def add(names: list[str], state_machine: sfn.StateMachine | None) -> None:
        statements = _function_statements(storage, queues, key, state_machine)
        for name in names:
            env = _environment(spec, name, storage, state_machine)
            functions[name], log_groups[name] = _add_function(
                t, spec, inputs, key, name, code[name], statements.get(name, []), env
            )

    add(invoked, None)
    state_machine = _add_state_machine(
        t, spec, inputs, key, storage, data_access_role, {n: functions[n] for n in invoked}
    )
    add([n for n in spec.workflow.functions if n not in invoked], state_machine)
    functions = {name: functions[name] for name in spec.workflow.functions}
    namespace = Sub(contracts().stack_metrics_namespace)
    _instance_metrics(t, log_groups, namespace)

    if "trigger" in functions:
        t.add_resource(
            awslambda.EventSourceMapping(
                "ImportQueueEventSource",
                EventSourceArn=GetAtt(queues.queue, "Arn"),
                FunctionName=Ref(functions["trigger"]),
                BatchSize=10,
                FunctionResponseTypes=["ReportBatchItemFailures"],
            )
        )
    if "sweeper" in functions:
        schedule = t.add_resource(
            events.Rule(
                "SweeperSchedule",
                ScheduleExpression=spec.resources.sweep_schedule,
                State="ENABLED",
                Targets=[events.Target(Id="sweeper", Arn=GetAtt(functions["sweeper"], "Arn"))],
            )
        )
        t.add_resource(
            awslambda.Permission(
                "SweeperSchedulePermission",
                Action="lambda:InvokeFunction",
                FunctionName=Ref(functions["sweeper"]),
                Principal="events.amazonaws.com",
                SourceArn=GetAtt(schedule, "Arn"),
            )
        )
    return Workflow(functions, log_groups, state_machine, namespace)


def _add_state_machine(
    t: Template,
    spec: Spec,
    inputs: Inputs,
    key: Key,
    storage: Storage,
    data_access_role: iam.Role,
    invoked: dict[str, awslambda.Function],
) -> sfn.StateMachine:
    """The state machine: it starts and reads import jobs itself (AWS SDK integrations), so its
    role holds the HealthImaging permissions and passes the data access role."""
    functions = definition_substitutions(invoked)
    substitutions = {
        **functions,
        "DatastoreId": storage.datastore_id,
        "DataAccessRoleArn": GetAtt(data_access_role, "Arn"),
        "OutputS3Uri": Sub(f"s3://{var(storage.results_bucket)}/"),
        "JobTableName": Ref(storage.table),
    }
    log_group = _log_group(
        t,
        inputs,
        key,
        "StateMachineLogGroup",
        Sub("/aws/vendedlogs/states/${AWS::StackName}-ImportStateMachine"),
    )
    machine_role = role(
        t,
        "StateMachineRole",
        "states.amazonaws.com",
        [
            allow(["lambda:InvokeFunction"], [functions[k] for k in sorted(functions)]),
            allow(
                ["medical-imaging:GetDICOMImportJob", "medical-imaging:StartDICOMImportJob"],
                storage.datastore_arns,
            ),
            # RecordSubmitted writes the job item when the job starts (a DynamoDB integration).
            allow(["dynamodb:PutItem"], [GetAtt(storage.table, "Arn")]),
            key.via("dynamodb", ["kms:Decrypt", "kms:GenerateDataKey"]),
            allow(
                ["iam:PassRole"],
                [GetAtt(data_access_role, "Arn")],
                {"StringEquals": {"iam:PassedToService": IMAGING_SERVICE}},
            ),
            # HealthImaging with a customer managed key: DescribeKey for every call,
            # GenerateDataKey for writes, Decrypt for reads (devguide, data-encryption.html).
            key.via("medical-imaging", ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]),
            # CloudWatch Logs delivery and X-Ray actions have no resource-level permissions.
            allow(
                [
                    "logs:CreateLogDelivery",
                    "logs:DeleteLogDelivery",
                    "logs:DescribeLogGroups",
                    "logs:DescribeResourcePolicies",
                    "logs:GetLogDelivery",
                    "logs:ListLogDeliveries",
                    "logs:PutResourcePolicy",
                    "logs:UpdateLogDelivery",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                    "xray:PutTelemetryRecords",
                    "xray:PutTraceSegments",
                ],
                ["*"],
            ),
        ],
        trust_condition=same_account(),
    )
    return t.add_resource(
        sfn.StateMachine(
            "ImportStateMachine",
            StateMachineType="STANDARD",
            Definition=spec.definition,
            DefinitionSubstitutions=substitutions,
            RoleArn=GetAtt(machine_role, "Arn"),
            TracingConfiguration=sfn.TracingConfiguration(Enabled=True),
            LoggingConfiguration=sfn.LoggingConfiguration(
                Level="ERROR",
                IncludeExecutionData=False,
                Destinations=[
                    sfn.LogDestination(
                        CloudWatchLogsLogGroup=sfn.CloudWatchLogsLogGroup(
                            LogGroupArn=GetAtt(log_group, "Arn")
                        )
                    )
                ],
            ),
        )
    )
