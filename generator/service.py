"""The SCP on ECS Fargate: cluster, roles, task definition, service and CPU autoscaling."""

from __future__ import annotations

from troposphere import GetAtt, Ref, Sub, Template, applicationautoscaling, ecs, logs

from generator.iam import allow, arn, log_writer, role, var
from generator.network import Network
from generator.spec import Spec
from generator.storage import Storage

CONTAINER = "PacsContainer"
LOG_GROUP = "PacsServerTaskDefPacsContainerLogGroup"


def health_command(port: int) -> list[str]:
    """Container health check: GET /health with the image's Python (no curl in slim images)."""
    url = f"http://127.0.0.1:{port}/health"
    probe = f"import urllib.request; urllib.request.urlopen('{url}', timeout=4)"
    return ["CMD", "python", "-c", probe]


def ecr_repository_arn(spec: Spec) -> Sub:
    """ARN of the Marketplace image repository, from the spec's registry host."""
    image = spec.data["image"]
    account, _, _, region = image["registry"].split(".")[:4]
    return Sub(f"arn:${{AWS::Partition}}:ecr:{region}:{account}:repository/{image['repository']}")


def _environment(spec: Spec, storage: Storage) -> list[ecs.Environment]:
    res = spec.resources
    env = {p["env"]: Ref(p["name"]) for p in spec.data["parameters"] if "env" in p}
    env |= {
        "STORAGE": Sub(f"s3://{var(storage.dicom_bucket.title)}/"),
        "BATCH_MAX_FILES": str(res["batchMaxFiles"]),
        "BATCH_MAX_BYTES": str(res["batchMaxBytes"]),
        "HEALTH_PORT": str(res["healthPort"]),
        "DRAIN_TIMEOUT": str(res["drainTimeoutSeconds"]),
        "METRICS_NAMESPACE": Sub("StoreSCP/${AWS::StackName}"),
    }
    if spec.data["marketplace"]["registerUsage"]:
        env["MARKETPLACE_PRODUCT_CODE"] = spec.data["marketplace"]["productCode"]
    return [ecs.Environment(Name=k, Value=v) for k, v in sorted(env.items())]


def add_service(t: Template, spec: Spec, network: Network, storage: Storage) -> ecs.Service:
    res = spec.resources
    cluster = t.add_resource(
        ecs.Cluster(
            "Cluster",
            ClusterSettings=[ecs.ClusterSetting(Name="containerInsights", Value="enabled")],
        )
    )
    log_group = t.add_resource(logs.LogGroup(LOG_GROUP, RetentionInDays=res["logRetentionDays"]))
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
            log_writer(LOG_GROUP),
        ],
    )
    bucket = storage.dicom_bucket.title
    task_statements = [
        allow(
            ["s3:PutObject", "s3:AbortMultipartUpload"],
            [arn(bucket, "/*")],
        ),
        # Open-batch markers are deleted once their manifest is written.
        allow(["s3:DeleteObject"], [arn(bucket, "/open/*")]),
    ]
    if spec.data["marketplace"]["registerUsage"]:
        # aws-marketplace:RegisterUsage has no resource-level permissions: "*" is the only choice.
        task_statements.append(allow(["aws-marketplace:RegisterUsage"], ["*"]))
    task_role = role(t, "TaskRole", "ecs-tasks.amazonaws.com", task_statements)

    health_port = res["healthPort"]
    task_definition = t.add_resource(
        ecs.TaskDefinition(
            "PacsServerTaskDef",
            RequiresCompatibilities=["FARGATE"],
            NetworkMode="awsvpc",
            Cpu=Ref("TaskCPU"),
            Memory=Ref("TaskMemoryLimit"),
            ExecutionRoleArn=GetAtt(execution_role, "Arn"),
            TaskRoleArn=GetAtt(task_role, "Arn"),
            RuntimePlatform=ecs.RuntimePlatform(
                CpuArchitecture="X86_64", OperatingSystemFamily="LINUX"
            ),
            Volumes=[ecs.Volume(Name="tmp")],
            ContainerDefinitions=[
                ecs.ContainerDefinition(
                    Name=CONTAINER,
                    Image=spec.image_uri,
                    Essential=True,
                    ReadonlyRootFilesystem=True,
                    MountPoints=[ecs.MountPoint(ContainerPath="/tmp", SourceVolume="tmp")],
                    PortMappings=[
                        ecs.PortMapping(ContainerPort=Ref("SCPPort"), Protocol="tcp"),
                        ecs.PortMapping(ContainerPort=health_port, Protocol="tcp"),
                    ],
                    Environment=_environment(spec, storage),
                    StopTimeout=res["stopTimeoutSeconds"],
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
                            "awslogs-region": Ref("AWS::Region"),
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
            DependsOn=[network.listener.title],
            Cluster=Ref(cluster),
            LaunchType="FARGATE",
            DesiredCount=Ref("TaskDesiredCount"),
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
                    Subnets=Ref("PrivateSubnetIDs"),
                    SecurityGroups=[Ref(network.task_security_group), Ref("SecurityGroupID")],
                )
            ),
            LoadBalancers=[
                ecs.LoadBalancer(
                    ContainerName=CONTAINER,
                    ContainerPort=Ref("SCPPort"),
                    TargetGroupArn=Ref(network.target_group),
                )
            ],
        )
    )
    target = t.add_resource(
        applicationautoscaling.ScalableTarget(
            "ScalableTarget",
            MinCapacity=Ref("TaskDesiredCount"),
            MaxCapacity=Ref("AutoscaleMaxCapacity"),
            ResourceId=Sub(f"service/{var(cluster.title)}/{var(service.title, 'Name')}"),
            ScalableDimension="ecs:service:DesiredCount",
            ServiceNamespace="ecs",
        )
    )
    t.add_resource(
        applicationautoscaling.ScalingPolicy(
            "CpuTargetTracking",
            PolicyName="cpu-50",
            PolicyType="TargetTrackingScaling",
            ScalingTargetId=Ref(target),
            TargetTrackingScalingPolicyConfiguration=applicationautoscaling.TargetTrackingScalingPolicyConfiguration(
                TargetValue=50.0,
                ScaleInCooldown=60,
                ScaleOutCooldown=60,
                PredefinedMetricSpecification=applicationautoscaling.PredefinedMetricSpecification(
                    PredefinedMetricType="ECSServiceAverageCPUUtilization"
                ),
            ),
        )
    )
    return service
