"""The SCP on ECS Fargate: cluster, roles, task definition, service and CPU autoscaling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from troposphere import GetAtt, Ref, Region, Sub, Template, applicationautoscaling, ecs, logs

from generator.contracts import contracts
from generator.spec import Spec
from generator.template.iam import Statement, allow, arn, log_writer, only_if, role, var
from generator.template.kms import Key
from generator.template.network import Network
from generator.template.parameters import Inputs
from generator.template.storage import OPEN_PREFIX, Storage

CONTAINER = "PacsContainer"
LOG_GROUP = "PacsServerTaskDefPacsContainerLogGroup"
# The task's only writable folder (the root is read-only): the image declares it a VOLUME owned
# by its user, so Fargate's bind mount there takes that owner and mode (Dockerfile; ECS developer
# guide, "Use bind mounts with Amazon ECS"). A path the image does not declare would be root's,
# mode 0755, and the SCP could not start. tests/image/test_fargate.py runs the image this way.
SCRATCH = "/scratch"
SCRATCH_VOLUME = "scratch"
# Autoscaling keeps the service's average CPU near this (generator/documents/sizing.py sizes
# tasks by it).
CPU_TARGET_PERCENT = 50.0


@dataclass(frozen=True)
class Service:
    cluster: ecs.Cluster
    service: ecs.Service


QUERY_RETRIEVE_ACTIONS = [
    "medical-imaging:SearchDICOMStudies",
    "medical-imaging:SearchDICOMSeries",
    "medical-imaging:SearchDICOMInstances",
    "medical-imaging:GetDICOMInstance",
]


def health_command(port: int) -> list[str]:
    """Container health check: GET /health with the image's Python (no curl in slim images)."""
    url = f"http://127.0.0.1:{port}/health"
    probe = f"import urllib.request; urllib.request.urlopen('{url}', timeout=4)"
    return ["CMD", "python", "-c", probe]


def ecr_repository_arn(spec: Spec) -> Sub:
    """ARN of the Marketplace image repository, from the spec's registry host."""
    image = spec.image
    return Sub(
        f"arn:${{AWS::Partition}}:ecr:{image.region}:{image.account}:repository/{image.repository}"
    )


def _leading_keys(prefix: str) -> dict[str, Any]:
    """A condition limiting item actions to the partition keys that start with `prefix`
    (DynamoDB developer guide, "Using IAM policy conditions for fine-grained access control")."""
    return {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [prefix + "*"]}}


def _put_items(storage: Storage, kind: str) -> Statement:
    """PutItem on the job table in the partition keys of one record kind of the contract
    (config/contracts.json jobTable.{kind}.jobIdPrefix) only."""
    prefix = contracts().job_table[kind]["jobIdPrefix"]
    return allow(["dynamodb:PutItem"], [GetAtt(storage.table, "Arn")], _leading_keys(prefix))


def _commitment_statements(storage: Storage, key: Key) -> list[Statement]:
    """Storage commitment (scp/commitment/job_table.py): read instance states through the SOP
    Instance UID index, list pending transactions through their index, and read and write
    transaction items only: dynamodb:LeadingKeys limits items to the COMMITMENT# partition keys
    (DynamoDB developer guide, "Using IAM policy conditions for fine-grained access control")."""
    table = contracts().job_table
    indexes = [contracts().index(name)["name"] for name in ("bySopInstanceUID",
                                                              "pendingCommitments")]  # fmt: skip
    return [
        allow(["dynamodb:Query"], [arn(storage.table, f"/index/{name}") for name in indexes]),
        allow(
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            [GetAtt(storage.table, "Arn")],
            _leading_keys(table["commitmentRecordPrefix"]),
        ),
        key.via("dynamodb", ["kms:Decrypt", "kms:GenerateDataKey"]),
    ]


def _environment(spec: Spec, inputs: Inputs, storage: Storage) -> list[ecs.Environment]:
    res = spec.resources
    env = {p.env: Ref(inputs.parameters.by_name(p.name)) for p in spec.parameters if p.env}
    env |= {
        # The SCP always listens on the container port; the load balancer maps SCPPort to it.
        "SCP_PORT": str(res.container_port),
        "STORAGE": Sub(f"s3://{var(storage.dicom_bucket)}/"),
        "BATCH_MAX_FILES": str(res.batch_max_files),
        "BATCH_MAX_BYTES": str(res.batch_max_bytes),
        "HEALTH_PORT": str(res.health_port),
        "DRAIN_TIMEOUT": str(res.drain_timeout_seconds),
        "METRICS_NAMESPACE": Sub(contracts().stack_metrics_namespace),
        "TEMP_DIR": SCRATCH,
        # Direct stores (DirectStore): StoreDICOM into this stack's data store, recorded in
        # its job table.
        "HEALTHIMAGING_DATASTORE_ID": storage.datastore_id,
        "HEALTHIMAGING_REGION": Region,
        "JOB_TABLE_NAME": Ref(storage.table),
    }
    if spec.marketplace.metering_code:
        env["MARKETPLACE_PRODUCT_CODE"] = spec.marketplace.metering_code
    return [ecs.Environment(Name=k, Value=v) for k, v in sorted(env.items())]


def add_service(
    t: Template, spec: Spec, inputs: Inputs, key: Key, network: Network, storage: Storage
) -> Service:
    p = inputs.parameters
    res = spec.resources
    scp = inputs.conditions.cloud_scp.name  # everything here is the cloud SCP's
    c = inputs.conditions
    cluster = t.add_resource(
        ecs.Cluster(
            "Cluster",
            Condition=scp,
            ClusterSettings=[ecs.ClusterSetting(Name="containerInsights", Value="enabled")],
        )
    )
    log_group = t.add_resource(
        logs.LogGroup(
            LOG_GROUP, Condition=scp, RetentionInDays=Ref(p.LogRetentionDays), KmsKeyId=key.arn
        )
    )
    execution_role = role(
        t,
        "TaskExecutionRole",
        "ecs-tasks.amazonaws.com",
        [
            # ecr:GetAuthorizationToken has no resource-level permissions: "*" is the only choice.
            allow(["ecr:GetAuthorizationToken"], ["*"]),
            allow(
                [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                [ecr_repository_arn(spec)],
            ),
            log_writer(log_group),
        ],
        condition=scp,
    )
    bucket = storage.dicom_bucket
    task_statements = [
        allow(
            ["s3:PutObject", "s3:AbortMultipartUpload"],
            [arn(bucket, "/*")],
        ),
        # Open-batch markers are deleted once their manifest is written.
        allow(["s3:DeleteObject"], [arn(bucket, f"/{OPEN_PREFIX}*")]),
        # SSE-KMS uploads: GenerateDataKey, and Decrypt for multipart uploads
        # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html), through S3 only.
        key.via("s3", ["kms:Decrypt", "kms:GenerateDataKey"]),
        # Hourly metering: the image calls RegisterUsage at start-up when it carries a product
        # code; the action has no resource-level permissions, "*" is the only choice.
        allow(["aws-marketplace:RegisterUsage"], ["*"]),
        # Direct stores (DirectStore not None): StoreDICOM on this data store only (developer
        # guide, "Storing instances with STOW-RS"; the QIDO-RS check that the instance is in a
        # primary image set is Query/Retrieve's SearchDICOMInstances below), and one job-table
        # item per direct store, in the DIRECT# partition keys only.
        only_if(
            c.direct_store.name,
            allow(["medical-imaging:StoreDICOM"], storage.datastore_arns),
        ),
        only_if(c.direct_store.name, _put_items(storage, "direct")),
        # CommitmentCommitOn Stored: one job-table item per instance stored in S3, in the
        # STORED# partition keys only.
        only_if(c.commit_on_stored.name, _put_items(storage, "stored")),
        # Query/Retrieve (scp/qr): C-FIND searches studies, series and instances, C-MOVE and
        # C-GET fetch instances, on this data store only (developer guide, "Searching DICOM
        # data in HealthImaging", "Retrieving DICOM data from HealthImaging").
        allow(QUERY_RETRIEVE_ACTIONS, storage.datastore_arns),
        key.via("medical-imaging", ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]),
        *_commitment_statements(storage, key),
    ]
    task_role = role(t, "TaskRole", "ecs-tasks.amazonaws.com", task_statements, condition=scp)

    health_port = res.health_port
    task_definition = t.add_resource(
        ecs.TaskDefinition(
            "PacsServerTaskDef",
            Condition=scp,
            RequiresCompatibilities=["FARGATE"],
            NetworkMode="awsvpc",
            Cpu=Ref(p.TaskCPU),
            Memory=Ref(p.TaskMemoryLimit),
            ExecutionRoleArn=GetAtt(execution_role, "Arn"),
            TaskRoleArn=GetAtt(task_role, "Arn"),
            RuntimePlatform=ecs.RuntimePlatform(
                CpuArchitecture="X86_64", OperatingSystemFamily="LINUX"
            ),
            Volumes=[ecs.Volume(Name=SCRATCH_VOLUME)],
            ContainerDefinitions=[
                ecs.ContainerDefinition(
                    Name=CONTAINER,
                    Image=spec.image_uri,
                    Essential=True,
                    ReadonlyRootFilesystem=True,
                    MountPoints=[
                        ecs.MountPoint(ContainerPath=SCRATCH, SourceVolume=SCRATCH_VOLUME)
                    ],
                    PortMappings=[
                        ecs.PortMapping(ContainerPort=res.container_port, Protocol="tcp"),
                        ecs.PortMapping(ContainerPort=health_port, Protocol="tcp"),
                    ],
                    Environment=_environment(spec, inputs, storage),
                    StopTimeout=res.stop_timeout_seconds,
                    HealthCheck=ecs.HealthCheck(
                        Command=health_command(health_port),
                        Interval=30,
                        Timeout=5,
                        Retries=3,
                        StartPeriod=30,
                    ),
                    LogConfiguration=ecs.LogConfiguration(
                        LogDriver="awslogs",
                        Options={
                            "awslogs-group": Ref(log_group),
                            "awslogs-region": Region,
                            "awslogs-stream-prefix": "scp",
                        },
                    ),
                )
            ],
        )
    )
    service = t.add_resource(
        ecs.Service(
            "Service",
            Condition=scp,
            DependsOn=[network.listener_ready],
            Cluster=Ref(cluster),
            LaunchType="FARGATE",
            DesiredCount=Ref(p.TaskDesiredCount),
            TaskDefinition=Ref(task_definition),
            HealthCheckGracePeriodSeconds=60,
            PropagateTags="SERVICE",
            EnableECSManagedTags=True,
            DeploymentConfiguration=ecs.DeploymentConfiguration(
                MinimumHealthyPercent=100,
                MaximumPercent=200,
                DeploymentCircuitBreaker=ecs.DeploymentCircuitBreaker(Enable=True, Rollback=True),
            ),
            NetworkConfiguration=ecs.NetworkConfiguration(
                AwsvpcConfiguration=ecs.AwsvpcConfiguration(
                    AssignPublicIp="DISABLED",
                    Subnets=Ref(p.PrivateSubnetIDs),
                    SecurityGroups=[Ref(network.task_security_group), Ref(p.SecurityGroupID)],
                )
            ),
            LoadBalancers=[
                ecs.LoadBalancer(
                    ContainerName=CONTAINER,
                    ContainerPort=res.container_port,
                    TargetGroupArn=Ref(network.target_group),
                )
            ],
        )
    )
    target = t.add_resource(
        applicationautoscaling.ScalableTarget(
            "ScalableTarget",
            Condition=scp,
            MinCapacity=Ref(p.TaskDesiredCount),
            MaxCapacity=Ref(p.AutoscaleMaxCapacity),
            ResourceId=Sub(f"service/{var(cluster)}/{var(service, 'Name')}"),
            ScalableDimension="ecs:service:DesiredCount",
            ServiceNamespace="ecs",
        )
    )
    t.add_resource(
        applicationautoscaling.ScalingPolicy(
            "CpuTargetTracking",
            Condition=scp,
            PolicyName=f"cpu-{CPU_TARGET_PERCENT:g}",
            PolicyType="TargetTrackingScaling",
            ScalingTargetId=Ref(target),
            TargetTrackingScalingPolicyConfiguration=applicationautoscaling.TargetTrackingScalingPolicyConfiguration(
                TargetValue=CPU_TARGET_PERCENT,
                ScaleInCooldown=60,
                ScaleOutCooldown=60,
                PredefinedMetricSpecification=applicationautoscaling.PredefinedMetricSpecification(
                    PredefinedMetricType="ECSServiceAverageCPUUtilization"
                ),
            ),
        )
    )
    return Service(cluster, service)
