"""The template's resources against DESIGN section 6, issue 4's wiring and docs/CONTRACTS.md."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from generator.template.inline import HANDLER, ZIP_FILE_LIMIT, inline_source, zipped_size
from generator.template.service import ecr_repository_arn
from generator.template.workflow import logical_name
from tests.generator.contract import CONTRACTS, FUNCTIONS, scp_environment


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def statements(resources: dict[str, Any], role: str, raw: bool = False) -> list[dict[str, Any]]:
    """The role's policy statements; a statement present only under a template Condition (an
    Fn::If with AWS::NoValue) as the statement itself unless `raw`."""
    found = [
        s
        for p in resources[role]["Properties"]["Policies"]
        for s in p["PolicyDocument"]["Statement"]
    ]
    return found if raw else [s["Fn::If"][1] if "Fn::If" in s else s for s in found]


def actions_of(resources: dict[str, Any], role: str) -> set[str]:
    return {a for s in statements(resources, role) for a in s["Action"]}


# --- SCP service -------------------------------------------------------------------------------


def container(resources: dict[str, Any]) -> dict[str, Any]:
    (definition,) = resources["PacsServerTaskDef"]["Properties"]["ContainerDefinitions"]
    return definition


def test_container_environment_follows_the_contract(resources):
    env = {e["Name"]: e["Value"] for e in container(resources)["Environment"]}
    mapping = scp_environment()
    assert len(mapping) >= 7
    for name, parameter in mapping.items():
        assert env[name] == {"Ref": parameter}, name
    assert env["STORAGE"] == {"Fn::Sub": "s3://${DicomBucket}/"}
    assert env["SCP_PORT"] == "11112"  # always, inside the container; the NLB maps SCPPort
    assert env["HEALTH_PORT"] == "8080"
    assert env["DRAIN_TIMEOUT"] == "110"
    assert env["METRICS_NAMESPACE"] == {"Fn::Sub": "StoreSCP/${AWS::StackName}"}
    assert env["BATCH_MAX_FILES"] == "5000" and env["BATCH_MAX_BYTES"] == "10000000000"


def test_container_stops_after_drain_and_checks_health(resources, spec):
    c = container(resources)
    assert c["StopTimeout"] == 120
    assert c["Image"] == spec.image_uri
    assert c["ReadonlyRootFilesystem"] is True
    assert "http://127.0.0.1:8080/health" in " ".join(c["HealthCheck"]["Command"])
    group = resources["TargetGroup"]["Properties"]
    assert (
        group["Protocol"],
        group["HealthCheckProtocol"],
        group["HealthCheckPort"],
        group["HealthCheckPath"],
    ) == ("TCP", "HTTP", "8080", "/health")


def test_service_in_private_subnets_behind_the_load_balancer(resources):
    service = resources["Service"]["Properties"]
    vpc = service["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert vpc["Subnets"] == {"Ref": "PrivateSubnetIDs"}
    assert vpc["AssignPublicIp"] == "DISABLED"
    assert {"Ref": "SecurityGroupID"} in vpc["SecurityGroups"]
    assert resources["NetworkLoadBalancer"]["Properties"]["Subnets"] == {
        "Fn::If": ["InternalLoadBalancer", {"Ref": "PrivateSubnetIDs"}, {"Ref": "PublicSubnetIDs"}]
    }
    task_sg = resources["TaskSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert all(r["SourceSecurityGroupId"] == {"Ref": "LoadBalancerSecurityGroup"} for r in task_sg)


def test_cpu_target_tracking_50_percent_60s_cooldowns(resources):
    target = resources["ScalableTarget"]["Properties"]
    assert target["MaxCapacity"] == {"Ref": "AutoscaleMaxCapacity"}
    policy = resources["CpuTargetTracking"]["Properties"][
        "TargetTrackingScalingPolicyConfiguration"
    ]
    assert (policy["TargetValue"], policy["ScaleInCooldown"], policy["ScaleOutCooldown"]) == (
        50.0,
        60,
        60,
    )
    assert (
        policy["PredefinedMetricSpecification"]["PredefinedMetricType"]
        == "ECSServiceAverageCPUUtilization"
    )


def test_guides_log_group_name(resources):
    """The guide tells operators to look for StackName-PacsServerTaskDefPacsContainerLogGroup*."""
    assert resources["PacsServerTaskDefPacsContainerLogGroup"]["Type"] == "AWS::Logs::LogGroup"
    assert "LogGroupName" not in resources["PacsServerTaskDefPacsContainerLogGroup"]["Properties"]


def test_marketplace_metering_switch(spec):
    from generator.template.build import template_for

    def build(register: bool) -> dict:
        marketplace = {"registerUsage": register, "productCode": "abcdefghijklmnopqrstuvwxy"}
        data = {**spec.data, "marketplace": marketplace}
        changed = type(spec)(data, spec.definition)
        return template_for(changed).to_dict()["Resources"]

    def task_env(resources: dict) -> dict[str, object]:
        (container,) = resources["PacsServerTaskDef"]["Properties"]["ContainerDefinitions"]
        return {e["Name"]: e["Value"] for e in container["Environment"]}

    on, off = build(True), build(False)
    # The image decides whether to meter (issue 8); the role always allows it.
    assert "aws-marketplace:RegisterUsage" in actions_of(on, "TaskRole")
    assert "aws-marketplace:RegisterUsage" in actions_of(off, "TaskRole")
    assert task_env(on)["MARKETPLACE_PRODUCT_CODE"] == "abcdefghijklmnopqrstuvwxy"
    assert "MARKETPLACE_PRODUCT_CODE" not in task_env(off)


# --- storage -----------------------------------------------------------------------------------


KEY = {
    "Fn::If": [
        "CreateEncryptionKey",
        {"Fn::GetAtt": ["EncryptionKey", "Arn"]},
        {"Ref": "KmsKeyArn"},
    ]
}


@pytest.mark.parametrize("bucket", ["DicomBucket", "ResultsBucket", "AccessLogsBucket"])
def test_buckets_encrypted_private_tls_only(resources, bucket):
    props = resources[bucket]["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    if bucket == "AccessLogsBucket":  # load balancer log delivery: SSE-S3 (no DICOM data)
        assert rule == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    else:
        assert rule == {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {"KMSMasterKeyID": KEY, "SSEAlgorithm": "aws:kms"},
        }
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert resources[bucket]["DeletionPolicy"] == "Retain"
    deny = resources[f"{bucket}Policy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_notification_for_batch_manifests_only(resources):
    (config,) = resources["DicomBucket"]["Properties"]["NotificationConfiguration"][
        "QueueConfigurations"
    ]
    rules = {r["Name"]: r["Value"] for r in config["Filter"]["S3Key"]["Rules"]}
    assert rules == {"prefix": "batches/", "suffix": ".json"}
    assert config["Queue"] == {"Fn::GetAtt": ["ImportQueue", "Arn"]}
    assert "ImportQueuePolicy" in resources["DicomBucket"]["DependsOn"]


def test_job_table_as_the_contract_says(resources):
    table = resources["DicomImportJobTable"]["Properties"]
    assert table["KeySchema"] == [
        {"AttributeName": "jobId", "KeyType": "HASH"},
        {"AttributeName": "recordId", "KeyType": "RANGE"},
    ]
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert indexes["sopInstanceUID-index"]["KeySchema"] == [
        {"AttributeName": "sopInstanceUID", "KeyType": "HASH"}
    ]
    assert indexes["studyInstanceUID-index"]["KeySchema"] == [
        {"AttributeName": "studyInstanceUID", "KeyType": "HASH"},
        {"AttributeName": "recordId", "KeyType": "RANGE"},
    ]
    assert all(i["Projection"] == {"ProjectionType": "ALL"} for i in indexes.values())
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {
        "KMSMasterKeyId": KEY,
        "SSEEnabled": True,
        "SSEType": "KMS",
    }
    for name in ("sopInstanceUID-index", "studyInstanceUID-index", "`jobId`", "`recordId`"):
        assert name in CONTRACTS


# --- workflow ----------------------------------------------------------------------------------


def test_queue_encrypted_with_dlq_and_long_visibility(resources, spec):
    queue = resources["ImportQueue"]["Properties"]
    key = resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"]  # the stack's key
    assert queue["KmsMasterKeyId"] == key
    assert resources["ImportDeadLetterQueue"]["Properties"]["KmsMasterKeyId"] == key
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["ImportDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    timeouts = {
        f["Properties"]["Timeout"] for f in of_type(resources, "AWS::Lambda::Function").values()
    }
    assert queue["VisibilityTimeout"] > max(timeouts)


def test_event_source_mapping_reports_partial_failures(resources):
    (mapping,) = of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["ImportQueue", "Arn"]}
    assert props["FunctionName"] == {"Ref": "TriggerFunction"}


def workflow_functions(resources: dict[str, Any]) -> dict[str, Any]:
    """The Lambda functions of the import workflow (not the custom resource's)."""
    names = {f"{logical_name(n)}Function" for n in FUNCTIONS}
    return {n: f for n, f in of_type(resources, "AWS::Lambda::Function").items() if n in names}


def test_functions_carry_their_code_inline(resources, spec):
    functions = workflow_functions(resources)
    assert set(of_type(resources, "AWS::Lambda::Function")) - set(functions) == {
        "RouteTablesFunction"
    }
    assert sorted(functions) == sorted(f"{logical_name(n)}Function" for n in FUNCTIONS)
    for name in FUNCTIONS:
        assert f"`lambdas.{name}.handler`" in CONTRACTS
        props = functions[f"{logical_name(name)}Function"]["Properties"]
        assert props["Runtime"] == "python3.12" and props["Handler"] == HANDLER
        assert set(props["Code"]) == {"ZipFile"}  # never S3Bucket: nothing from a seller's bucket
        assert props["Code"]["ZipFile"] == inline_source(name)
        assert zipped_size(props["Code"]["ZipFile"]) <= ZIP_FILE_LIMIT
        log_group = resources[props["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
        assert log_group["LogGroupName"] == {
            "Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{logical_name(name)}"
        }
        assert log_group["KmsKeyId"] == resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"]
    trigger_env = functions["TriggerFunction"]["Properties"]["Environment"]["Variables"]
    assert trigger_env == {"STATE_MACHINE_ARN": {"Ref": "ImportStateMachine"}}
    sweeper_env = functions["SweeperFunction"]["Properties"]["Environment"]["Variables"]
    assert sweeper_env["SWEEP_AFTER_SECONDS"] == "900"
    record_env = functions["RecordResultsFunction"]["Properties"]["Environment"]["Variables"]
    assert record_env == {"JOB_TABLE_NAME": {"Ref": "DicomImportJobTable"}}


def test_state_machine_fills_every_placeholder(resources, spec):
    machine = resources["ImportStateMachine"]["Properties"]
    placeholders = set(re.findall(r"\$\{(\w+)\}", str(spec.definition)))
    substitutions = machine["DefinitionSubstitutions"]
    assert set(substitutions) == placeholders
    functions = {k: v for k, v in substitutions.items() if k.endswith("FunctionArn")}
    for key, value in functions.items():
        assert value == {"Fn::GetAtt": [key.removesuffix("Arn"), "Arn"]}
    assert substitutions["DataAccessRoleArn"] == {"Fn::GetAtt": ["DataAccessRole", "Arn"]}
    assert substitutions["OutputS3Uri"] == {"Fn::Sub": "s3://${ResultsBucket}/"}
    assert substitutions["JobTableName"] == {"Ref": "DicomImportJobTable"}
    machine_statements = statements(resources, "StateMachineRole")
    put = [s for s in machine_statements if "dynamodb:PutItem" in s["Action"]]
    assert [s["Resource"] for s in put] == [[{"Fn::GetAtt": ["DicomImportJobTable", "Arn"]}]]
    assert machine["Definition"] == spec.definition
    invoke = [
        s
        for s in statements(resources, "StateMachineRole")
        if s["Action"] == ["lambda:InvokeFunction"]
    ]
    assert sorted(map(str, invoke[0]["Resource"])) == sorted(map(str, functions.values()))
    imaging = [s for s in statements(resources, "StateMachineRole") if "medical-imaging" in str(s)]
    actions = {a for s in imaging for a in s["Action"]}
    assert {"medical-imaging:StartDICOMImportJob", "medical-imaging:GetDICOMImportJob"} <= actions
    log_group = resources["StateMachineLogGroup"]["Properties"]
    assert log_group["LogGroupName"] == {
        "Fn::Sub": "/aws/vendedlogs/states/${AWS::StackName}-ImportStateMachine"
    }


def test_real_state_machine_definition_builds():
    """The lambdas' ASL file has only placeholders the template fills."""
    from generator.spec import load
    from generator.template.build import template_for

    machine = template_for(load()).to_dict()["Resources"]["ImportStateMachine"]["Properties"]
    assert set(machine["DefinitionSubstitutions"]) == {
        "DatastoreId",
        "DataAccessRoleArn",
        "OutputS3Uri",
        "JobTableName",
        "RecordResultsFunctionArn",
        "RecordFailureFunctionArn",
    }


def test_sweeper_schedule(resources):
    (rule,) = of_type(resources, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["SweeperFunction", "Arn"]}
    permission = resources["SweeperSchedulePermission"]["Properties"]
    assert permission["Principal"] == "events.amazonaws.com"


# --- IAM ---------------------------------------------------------------------------------------


def test_data_access_role_trusts_healthimaging_and_reads_incoming_only(resources):
    role = resources["DataAccessRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "medical-imaging.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    by_action = {a: s for s in statements(resources, "DataAccessRole") for a in s["Action"]}
    assert by_action["s3:GetObject"]["Resource"] == [{"Fn::Sub": "${DicomBucket.Arn}/incoming/*"}]
    assert by_action["s3:PutObject"]["Resource"] == [{"Fn::Sub": "${ResultsBucket.Arn}/*"}]


def test_pass_role_only_for_the_data_access_role_to_healthimaging(resources):
    passing = [
        (name, s)
        for name, r in of_type(resources, "AWS::IAM::Role").items()
        for s in statements(resources, name)
        if any(a.startswith("iam:") for a in s["Action"])
    ]
    assert [name for name, _ in passing] == ["StateMachineRole"]
    ((_, statement),) = passing
    assert statement["Action"] == ["iam:PassRole"]
    assert statement["Resource"] == [{"Fn::GetAtt": ["DataAccessRole", "Arn"]}]
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "medical-imaging.amazonaws.com"}
    }


# Actions AWS offers no resource-level permission for: "*" is the only possible Resource.
WILDCARD_ONLY = {
    "ecr:GetAuthorizationToken",
    "aws-marketplace:RegisterUsage",
    "xray:PutTelemetryRecords",
    "xray:PutTraceSegments",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
    "ec2:DescribePrefixLists",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcEndpoints",
}


def test_wildcard_resources_only_where_aws_allows_nothing_else(resources):
    for name in of_type(resources, "AWS::IAM::Role"):
        for s in statements(resources, name):
            if "*" in s["Resource"]:
                assert set(s["Action"]) <= WILDCARD_ONLY, (name, s["Action"])
            assert all(not a.endswith(":*") for a in s["Action"]), (name, s["Action"])


# Least privilege, grant by grant: role -> "action resource [if condition]". X is X's ARN, X/path
# is "${X.Arn}/path", A | B is Fn::If's two branches. A grant added, widened (open/* -> /*) or
# left without its condition fails here; change the table only with the reason in review.
STACK_KEY_VIA = "EncryptionKey | KmsKeyArn if kms:ViaService="
XRAY = {"xray:PutTelemetryRecords *", "xray:PutTraceSegments *"}
DATASTORE = (
    "Datastore.DatastoreArn{0} | "
    "arn:${{AWS::Partition}}:medical-imaging:${{AWS::Region}}:${{AWS::AccountId}}:datastore/${{Id}}{0}"
)


def function_role(log_group: str, *grants: str) -> set[str]:
    """A function role: its own log group, X-Ray, and `grants`."""
    return {f"logs:CreateLogStream {log_group}", f"logs:PutLogEvents {log_group}", *grants}


def via(service: str, *actions: str) -> set[str]:
    """The stack's key, used through one service only."""
    condition = f"{STACK_KEY_VIA}{service}.${{AWS::Region}}.amazonaws.com"
    return {f"{action} {condition}" for action in actions}


LEAST_PRIVILEGE: dict[str, set[str]] = {
    "TriggerFunctionRole": function_role(
        "TriggerLogGroup",
        *XRAY,
        "s3:GetObject DicomBucket/batches/*",
        "sqs:ChangeMessageVisibility ImportQueue",
        "sqs:DeleteMessage ImportQueue",
        "sqs:GetQueueAttributes ImportQueue",
        "sqs:ReceiveMessage ImportQueue",
        "states:StartExecution ImportStateMachine",
        *via("s3", "kms:Decrypt"),
        *via("sqs", "kms:Decrypt"),
    ),
    "RecordResultsFunctionRole": function_role(
        "RecordResultsLogGroup",
        *XRAY,
        "s3:GetObject DicomBucket/batches/*",
        "s3:GetObject ResultsBucket/*",
        # Imported objects are copied onto themselves, so retention counts from the import.
        "s3:GetObject DicomBucket/incoming/*",
        "s3:PutObject DicomBucket/incoming/*",
        "s3:PutObjectTagging DicomBucket/incoming/*",
        "dynamodb:BatchWriteItem DicomImportJobTable",
        "dynamodb:PutItem DicomImportJobTable",
        *via("s3", "kms:Decrypt", "kms:GenerateDataKey"),
        *via("dynamodb", "kms:Decrypt", "kms:GenerateDataKey"),
    ),
    "RecordFailureFunctionRole": function_role(
        "RecordFailureLogGroup",
        *XRAY,
        "s3:GetObject DicomBucket/batches/*",
        "dynamodb:BatchWriteItem DicomImportJobTable",
        "dynamodb:PutItem DicomImportJobTable",
        *via("s3", "kms:Decrypt"),
        *via("dynamodb", "kms:Decrypt", "kms:GenerateDataKey"),
    ),
    "SweeperFunctionRole": function_role(
        "SweeperLogGroup",
        *XRAY,
        "s3:ListBucket DicomBucket",
        "s3:GetObject DicomBucket/open/*",
        "s3:PutObject DicomBucket/batches/*",
        "s3:DeleteObject DicomBucket/open/*",
        *via("s3", "kms:Decrypt", "kms:GenerateDataKey"),
    ),
    "RouteTablesFunctionRole": function_role(
        "RouteTablesLogGroup",
        "ec2:DescribePrefixLists *",
        "ec2:DescribeRouteTables *",
        "ec2:DescribeSubnets *",
        "ec2:DescribeVpcEndpoints *",
    ),
    "StateMachineRole": {
        "lambda:InvokeFunction RecordFailureFunction",
        "lambda:InvokeFunction RecordResultsFunction",
        *(
            f"medical-imaging:{action} {DATASTORE.format(suffix)}"
            for action in ("GetDICOMImportJob", "StartDICOMImportJob")
            for suffix in ("", "/*")
        ),
        "iam:PassRole DataAccessRole if iam:PassedToService=medical-imaging.amazonaws.com",
        *via("medical-imaging", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"),
        # RecordSubmitted: the job item written as the import starts.
        "dynamodb:PutItem DicomImportJobTable",
        *via("dynamodb", "kms:Decrypt", "kms:GenerateDataKey"),
        *(f"{action} *" for action in WILDCARD_ONLY if action.startswith(("logs:", "xray:"))),
    },
    "DataAccessRole": {
        "s3:ListBucket DicomBucket",
        "s3:ListBucket ResultsBucket",
        "s3:GetObject DicomBucket/incoming/*",
        "s3:PutObject ResultsBucket/*",
        *via("s3", "kms:Decrypt", "kms:GenerateDataKey"),
    },
    "TaskRole": {
        "s3:PutObject DicomBucket/*",
        "s3:AbortMultipartUpload DicomBucket/*",
        "s3:DeleteObject DicomBucket/open/*",
        "aws-marketplace:RegisterUsage *",
        *via("s3", "kms:Decrypt", "kms:GenerateDataKey"),
        # Direct stores (StoreDICOM, the primary check) and their job-table items; the items of
        # instances stored in S3 when storage commitment commits on storage.
        *(
            f"medical-imaging:StoreDICOM {DATASTORE.format(suffix)} when DirectStoreOn"
            for suffix in ("", "/*")
        ),
        *via("medical-imaging", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"),
        "dynamodb:PutItem DicomImportJobTable if dynamodb:LeadingKeys=DIRECT#* when DirectStoreOn",
        "dynamodb:PutItem DicomImportJobTable if dynamodb:LeadingKeys=STORED#* when CommitOnStored",
        # Query/Retrieve: QIDO-RS searches and WADO-RS retrieves, on this data store only (the
        # direct stores' primary check is SearchDICOMInstances too).
        *(
            f"medical-imaging:{action} {DATASTORE.format(suffix)}"
            for action in (
                "SearchDICOMStudies",
                "SearchDICOMSeries",
                "SearchDICOMInstances",
                "GetDICOMInstance",
            )
            for suffix in ("", "/*")
        ),
        # Storage commitment: instance states by SOP Instance UID, its own transactions.
        "dynamodb:Query DicomImportJobTable/index/sopInstanceUID-index",
        "dynamodb:Query DicomImportJobTable/index/pendingCommitment-index",
        *(
            f"dynamodb:{action} DicomImportJobTable if dynamodb:LeadingKeys=COMMITMENT#*"
            for action in ("GetItem", "PutItem", "UpdateItem")
        ),
        *via("dynamodb", "kms:Decrypt", "kms:GenerateDataKey"),
    },
    # An edge host (IAM Roles Anywhere): put instances and manifests, nothing else.
    "EdgeSiteRole": {
        "s3:PutObject DicomBucket/incoming/*",
        "s3:PutObject DicomBucket/batches/*",
        "s3:AbortMultipartUpload DicomBucket/incoming/*",
        *via("s3", "kms:Decrypt", "kms:GenerateDataKey"),
    },
    "TaskExecutionRole": {
        "ecr:GetAuthorizationToken *",
        "ecr:BatchCheckLayerAvailability MarketplaceRepository",
        "ecr:BatchGetImage MarketplaceRepository",
        "ecr:GetDownloadUrlForLayer MarketplaceRepository",
        "logs:CreateLogStream PacsServerTaskDefPacsContainerLogGroup",
        "logs:PutLogEvents PacsServerTaskDefPacsContainerLogGroup",
    },
}


def short(value: Any, names: dict[str, str]) -> str:
    """A policy value as LEAST_PRIVILEGE writes it; `names` shortens literal ARNs."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return " | ".join(short(v, names) for v in value)
    ((function, argument),) = value.items()
    if function == "Fn::GetAtt":
        return argument[0] if argument[1] == "Arn" else ".".join(argument)
    if function == "Ref":
        return argument
    if function == "Fn::If":
        return " | ".join(short(branch, names) for branch in argument[1:])
    assert function == "Fn::Sub", value
    text = argument if isinstance(argument, str) else argument[0]
    match = re.fullmatch(r"\$\{(\w+)\.(\w+)\}(.*)", text)  # ${X.Attribute}/path
    if not match:
        return short(text, names)
    return (match[1] if match[2] == "Arn" else f"{match[1]}.{match[2]}") + match[3]


def grants(statements: list[dict[str, Any]], names: dict[str, str]) -> set[str]:
    """Each (action, resource) an Allow statement grants, with its condition, and "when X"
    for a statement present only under the template Condition X (Fn::If with AWS::NoValue)."""
    granted = set()
    for s in statements:
        if "Fn::If" in s:
            when, statement, otherwise = s["Fn::If"]
            assert otherwise == {"Ref": "AWS::NoValue"}, s
            granted |= {f"{g} when {when}" for g in grants([statement], names)}
            continue
        assert s["Effect"] == "Allow", s
        condition = ", ".join(
            f"{key}={short(value, names)}"
            for test in s.get("Condition", {}).values()
            for key, value in test.items()
        )
        for action in s["Action"]:
            for resource in s["Resource"]:
                granted.add(
                    f"{action} {short(resource, names)}" + (f" if {condition}" * bool(condition))
                )
    return granted


# Roles that exist only under a template Condition.
ROLE_CONDITIONS = {
    "RouteTablesFunctionRole": "CreateS3Endpoint",
    "EdgeSiteRole": "HasEdgeSites",
    "TaskRole": "CloudSCP",
    "TaskExecutionRole": "CloudSCP",
}


def test_every_role_grants_exactly_its_least_privilege_table(resources, spec):
    names = {ecr_repository_arn(spec).to_dict()["Fn::Sub"]: "MarketplaceRepository"}
    roles = of_type(resources, "AWS::IAM::Role")
    assert set(roles) == set(LEAST_PRIVILEGE), "a role without a table row, or a row without a role"
    for name in roles:
        assert resources[name].get("Condition") == ROLE_CONDITIONS.get(name), name
        assert "ManagedPolicyArns" not in resources[name]["Properties"], name
        granted = grants(statements(resources, name, raw=True), names)
        assert granted - LEAST_PRIVILEGE[name] == set(), f"{name} grants more than its table"
        assert LEAST_PRIVILEGE[name] - granted == set(), f"{name} lost a grant it needs"


def test_the_import_queue_accepts_only_tls(resources):
    (deny,) = [
        s
        for s in resources["ImportQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Deny"
    ]
    assert deny["Principal"] == "*" and deny["Action"] in ("sqs:*", ["sqs:*"])
    assert deny["Resource"] == [{"Fn::GetAtt": ["ImportQueue", "Arn"]}]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert resources["ImportQueuePolicy"]["Properties"]["Queues"] == [{"Ref": "ImportQueue"}]


# --- monitoring and outputs --------------------------------------------------------------------


def test_alarms(resources):
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    assert {
        "DeadLetterQueueAlarm",
        "FailedImportsAlarm",
        "ServiceCPUUtilizationAlarm",
        "ServiceMemoryUtilizationAlarm",
        "ImportConflictAlarm",
    } <= set(alarms)
    assert {
        f"{''.join(p.capitalize() for p in n.split('_'))}ErrorRateAlarm" for n in FUNCTIONS
    } <= set(alarms)
    dlq = alarms["DeadLetterQueueAlarm"]["Properties"]
    assert dlq["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["ImportDeadLetterQueue", "QueueName"]}
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms.values())
    assert "Dashboard" in resources


def test_outputs(template):
    required = {
        "NetworkLoadBalancerDNS",
        "DICOMPort",
        "DICOMAETitle",
        "DatastoreId",
        "DicomBucketName",
        "ResultsBucketName",
        "JobTableName",
        "StateMachineArn",
        "SCPLogGroupName",
        "DashboardURL",
    }
    assert required <= set(template["Outputs"])
    assert template["Outputs"]["DICOMPort"]["Value"] == {"Ref": "SCPPort"}
    assert template["Outputs"]["NetworkLoadBalancerDNS"]["Value"] == {
        "Fn::GetAtt": ["NetworkLoadBalancer", "DNSName"]
    }


def test_yaml_and_json_are_the_same_template(rendered):
    from cfn_flip import to_json

    from generator.release.bundle import YAML_HEADER

    assert rendered[0].startswith(YAML_HEADER)
    assert json.loads(to_json(rendered[0])) == json.loads(rendered[1])


def test_template_format_version(template, rendered):
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"
    assert "AWSTemplateFormatVersion: '2010-09-09'" in rendered[0]


def test_outputs_computed_from_conditions(template):
    assert template["Outputs"]["EncryptionKeyArn"]["Value"] == {
        "Fn::If": [
            "CreateEncryptionKey",
            {"Fn::GetAtt": ["EncryptionKey", "Arn"]},
            {"Ref": "KmsKeyArn"},
        ]
    }
    assert template["Outputs"]["DatastoreId"]["Value"] == {
        "Fn::If": [
            "CreateDatastore",
            {"Fn::GetAtt": ["Datastore", "DatastoreId"]},
            {"Ref": "DatastoreId"},
        ]
    }


def test_every_log_group_keeps_logs_for_log_retention_days(resources):
    groups = of_type(resources, "AWS::Logs::LogGroup")
    assert len(groups) >= 3
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


# --- edge sites --------------------------------------------------------------------------------


def test_edge_site_role_trusts_the_customers_trust_anchor_and_may_only_put(resources):
    """The role edge SCPs assume through IAM Roles Anywhere: only with the stack's trust
    anchor, and it may put objects under incoming/ and batches/ and nothing else (no read,
    list or delete; its KMS use only through S3)."""
    role = resources["EdgeSiteRole"]
    assert role["Condition"] == resources["EdgeSiteProfile"]["Condition"] == "HasEdgeSites"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "rolesanywhere.amazonaws.com"}
    assert sorted(trust["Action"]) == ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
    assert trust["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "EdgeTrustAnchorArn"}}}
    assert actions_of(resources, "EdgeSiteRole") == {
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "kms:Decrypt",
        "kms:GenerateDataKey",
    }
    by_action = {a: s for s in statements(resources, "EdgeSiteRole") for a in s["Action"]}
    assert by_action["s3:PutObject"]["Resource"] == [
        {"Fn::Sub": "${DicomBucket.Arn}/incoming/*"},
        {"Fn::Sub": "${DicomBucket.Arn}/batches/*"},
    ]
    assert "kms:ViaService" in by_action["kms:Decrypt"]["Condition"]["StringEquals"]
    profile = resources["EdgeSiteProfile"]["Properties"]
    assert profile["RoleArns"] == [{"Fn::GetAtt": ["EdgeSiteRole", "Arn"]}]


def test_edge_outputs_give_the_edge_host_what_it_needs(template):
    outputs = template["Outputs"]
    assert outputs["EdgeForwardTo"]["Value"] == {"Fn::Sub": "s3://${DicomBucket}/"}
    role = outputs["EdgeRoleArn"]["Value"]["Fn::If"]
    assert role[:2] == ["HasEdgeSites", {"Fn::GetAtt": ["EdgeSiteRole", "Arn"]}]
    profile = outputs["EdgeProfileArn"]["Value"]["Fn::If"]
    assert profile[:2] == ["HasEdgeSites", {"Fn::GetAtt": ["EdgeSiteProfile", "ProfileArn"]}]
