"""The import workflow: queues, Lambda functions, the state machine, the sweeper schedule and
the HealthImaging data access role."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from troposphere import GetAtt, Ref, Sub, Template, awslambda, events, iam, logs, sqs
from troposphere import stepfunctions as sfn

from generator.errors import SpecError
from generator.iam import allow, arn, log_writer, policy_document, role, same_account, var
from generator.kms import Key
from generator.parameters import Inputs
from generator.spec import Spec
from generator.storage import BATCHES_PREFIX, INCOMING_PREFIX, Storage

IMAGING_SERVICE = "medical-imaging.amazonaws.com"
VISIBILITY_FACTOR = 6  # AWS guidance: queue visibility timeout at least 6x the function timeout.


@dataclass(frozen=True)
class Queues:
    queue: sqs.Queue
    dead_letter_queue: sqs.Queue
    policy: sqs.QueuePolicy


@dataclass(frozen=True)
class Workflow:
    functions: dict[str, awslambda.Function]
    state_machine: sfn.StateMachine


def logical_name(function: str) -> str:
    """'start_import' -> 'StartImport'."""
    return "".join(part.capitalize() for part in function.split("_"))


def add_queues(t: Template, spec: Spec, key: Key) -> Queues:
    """Encrypted import queue (S3 events for batch manifests) with its dead-letter queue."""
    res = spec.resources
    dlq = t.add_resource(
        sqs.Queue(
            "ImportDeadLetterQueue", SqsManagedSseEnabled=True, MessageRetentionPeriod=1209600
        )
    )
    queue = t.add_resource(
        sqs.Queue(
            "ImportQueue",
            SqsManagedSseEnabled=True,
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
                    {
                        "Sid": "TlsOnly",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "sqs:*",
                        "Resource": [GetAtt(queue, "Arn")],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
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
    storage: Storage,
    data_access_role: iam.Role,
    queues: Queues,
    key: Key,
    state_machine: sfn.StateMachine | None,
) -> dict[str, list[dict[str, Any]]]:
    """What each function may do beyond writing its own logs (state_machine is None while the
    functions it invokes are built: none of them starts executions)."""
    dicom, results = storage.dicom_bucket, storage.results_bucket
    table = storage.table
    table_access = allow(
        [
            "dynamodb:BatchWriteItem",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
        ],
        [GetAtt(table, "Arn"), arn(table, "/index/*")],
    )
    # The key through each service, for exactly what each function does with it.
    table_key = key.via("dynamodb", ["kms:Decrypt", "kms:GenerateDataKey"])
    s3_read_key = key.via("s3", ["kms:Decrypt"])
    read_manifests = allow(["s3:GetObject"], [arn(dicom, f"/{BATCHES_PREFIX}*")])
    datastore_arns = storage.datastore_arns
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
        "start_import": [
            read_manifests,
            s3_read_key,
            table_access,
            table_key,
            allow(["medical-imaging:StartDICOMImportJob"], datastore_arns),
            # HealthImaging with a customer managed key: DescribeKey for every call,
            # GenerateDataKey for writes, Decrypt for reads (devguide, data-encryption.html).
            key.via("medical-imaging", ["kms:DescribeKey", "kms:GenerateDataKey"]),
            allow(
                ["iam:PassRole"],
                [GetAtt(data_access_role, "Arn")],
                {"StringEquals": {"iam:PassedToService": IMAGING_SERVICE}},
            ),
        ],
        "check_status": [
            table_access,
            table_key,
            allow(["medical-imaging:GetDICOMImportJob"], datastore_arns),
            key.via("medical-imaging", ["kms:Decrypt", "kms:DescribeKey"]),
        ],
        "record_results": [
            read_manifests,
            table_access,
            table_key,
            allow(["s3:GetObject"], [arn(results, "/*")]),
            allow(["s3:ListBucket"], [GetAtt(results, "Arn")]),
            s3_read_key,
        ],
        "record_failure": [read_manifests, s3_read_key, table_access, table_key],
        "sweeper": [
            allow(["s3:ListBucket"], [GetAtt(dicom, "Arn")]),
            allow(["s3:GetObject"], [arn(dicom, "/*")]),
            allow(["s3:PutObject"], [arn(dicom, f"/{BATCHES_PREFIX}*")]),
            allow(["s3:DeleteObject"], [arn(dicom, "/open/*")]),
            key.via("s3", ["kms:Decrypt", "kms:GenerateDataKey"]),
        ],
    }


def _environment(
    spec: Spec,
    function: str,
    storage: Storage,
    data_access_role: iam.Role,
    state_machine: sfn.StateMachine | None,
) -> dict[str, Any]:
    env: dict[str, Any] = {
        "JOB_TABLE_NAME": Ref(storage.table),
        "DATASTORE_ID": storage.datastore_id,
        "DATA_ACCESS_ROLE_ARN": GetAtt(data_access_role, "Arn"),
        "OUTPUT_S3_URI": Sub(f"s3://{var(storage.results_bucket)}/"),
        "DICOM_BUCKET": Ref(storage.dicom_bucket),
        "STORE_PREFIX": "",
        "LOG_LEVEL": "INFO",
    }
    if function == "trigger" and state_machine:
        env["STATE_MACHINE_ARN"] = Ref(state_machine)
    if function == "sweeper":
        env["SWEEP_AFTER_SECONDS"] = str(spec.resources.sweep_after_seconds)
    return dict(sorted(env.items()))


def artifact_key(spec: Spec, function: str) -> str:
    """S3 key of a function's zip in the artifact bucket."""
    return f"{spec.artifacts.key_prefix}{spec.version}/lambda/{function}.zip"


def _placeholder(function: str) -> str:
    return f"{logical_name(function)}FunctionArn"


def invoked_functions(spec: Spec) -> list[str]:
    """Functions the state machine invokes (its ${XFunctionArn} placeholders), in spec order;
    refuse unknown placeholders."""
    placeholders = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", str(spec.definition)))
    known = {_placeholder(name): name for name in spec.workflow.functions}
    unknown = sorted(placeholders - set(known))
    if unknown:
        raise SpecError(
            f"{spec.workflow.definition_file}: placeholders {unknown} match no function "
            f"in $.workflow.functions (known: {sorted(known)}); fix the definition or the spec"
        )
    return [name for name in spec.workflow.functions if _placeholder(name) in placeholders]


def definition_substitutions(functions: dict[str, awslambda.Function]) -> dict[str, GetAtt]:
    """Fill every ${XFunctionArn} placeholder of the ASL with the function's ARN."""
    return {_placeholder(name): GetAtt(fn, "Arn") for name, fn in sorted(functions.items())}


def _add_function(
    t: Template,
    spec: Spec,
    inputs: Inputs,
    name: str,
    statements: list[dict[str, Any]],
    environment: dict[str, Any],
) -> awslambda.Function:
    """One workflow function with its log group and its role."""
    base = logical_name(name)
    log_group = t.add_resource(
        logs.LogGroup(f"{base}LogGroup", RetentionInDays=Ref(inputs.parameters.LogRetentionDays))
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
    return t.add_resource(
        awslambda.Function(
            f"{base}Function",
            Runtime="python3.12",
            Handler=f"lambdas.{name}.handler",
            Code=awslambda.Code(
                S3Bucket=Sub(f"{spec.artifacts.bucket_prefix}-${{AWS::Region}}"),
                S3Key=artifact_key(spec, name),
            ),
            Role=GetAtt(function_role, "Arn"),
            Timeout=spec.resources.lambda_timeout_seconds,
            MemorySize=spec.resources.lambda_memory_mib,
            Architectures=["arm64"],
            TracingConfig=awslambda.TracingConfig(Mode="Active"),
            LoggingConfig=awslambda.LoggingConfig(LogGroup=Ref(log_group)),
            Environment=awslambda.Environment(Variables=environment),
        )
    )


def add_workflow(
    t: Template, spec: Spec, inputs: Inputs, key: Key, storage: Storage, queues: Queues
) -> Workflow:
    """The functions the state machine invokes, the state machine, then the functions that
    start it (trigger) or run beside it (sweeper)."""
    data_access_role = _data_access_role(t, storage, key)
    invoked = invoked_functions(spec)
    functions: dict[str, awslambda.Function] = {}

    def add(names: list[str], state_machine: sfn.StateMachine | None) -> None:
        statements = _function_statements(storage, data_access_role, queues, key, state_machine)
        for name in names:
            env = _environment(spec, name, storage, data_access_role, state_machine)
            functions[name] = _add_function(t, spec, inputs, name, statements.get(name, []), env)

    add(invoked, None)
    state_machine = _add_state_machine(t, spec, inputs, {n: functions[n] for n in invoked})
    add([n for n in spec.workflow.functions if n not in invoked], state_machine)
    functions = {name: functions[name] for name in spec.workflow.functions}

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
    return Workflow(functions, state_machine)


def _add_state_machine(
    t: Template, spec: Spec, inputs: Inputs, invoked: dict[str, awslambda.Function]
) -> sfn.StateMachine:
    substitutions = definition_substitutions(invoked)
    log_group = t.add_resource(
        logs.LogGroup(
            "StateMachineLogGroup", RetentionInDays=Ref(inputs.parameters.LogRetentionDays)
        )
    )
    machine_role = role(
        t,
        "StateMachineRole",
        "states.amazonaws.com",
        [
            allow(["lambda:InvokeFunction"], [substitutions[k] for k in sorted(substitutions)]),
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
