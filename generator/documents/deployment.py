"""docs/deployment-guide.md: prerequisites, subscribe, launch, what to expect, a first test,
where to look, update and delete; the parameters, outputs, endpoints, deployment settings and
retained resources are read from the built template."""

from __future__ import annotations

from generator.documents.markdown import header, table
from generator.documents.template_facts import TemplateFacts
from generator.spec import Spec
from scp.settings import Settings

HEADER = header("generator/documents/deployment.py", "config/product.yaml and the template")


def _endpoints(template: TemplateFacts) -> list[str]:
    """The VPC endpoints the template can add, with the parameter that decides each."""
    return [
        f"{template.describe(e.properties.get('ServiceName'))} "
        f"({e.properties.get('VpcEndpointType', 'Gateway')} endpoint"
        + (f", when {template.when(e.condition)})" if e.condition else ")")
        for e in template.resources("AWS::EC2::VPCEndpoint")
    ]


def render(spec: Spec, template: TemplateFacts) -> str:
    """docs/deployment-guide.md."""
    required = [n for n, p in template.parameters.items() if "Default" not in p]
    (service,) = template.resources("AWS::ECS::Service")
    deployment = service.properties.get("DeploymentConfiguration", {})
    breaker = deployment.get("DeploymentCircuitBreaker", {})
    (target,) = template.resources("AWS::ElasticLoadBalancingV2::TargetGroup")
    deregistration = next(
        (
            a["Value"]
            for a in target.properties.get("TargetGroupAttributes", [])
            if a["Key"] == "deregistration_delay.timeout_seconds"
        ),
        "300",
    )
    retained = [
        (
            f"`{r.logical_id}`",
            r.type + (f" (exists when {template.when(r.condition)})" if r.condition else ""),
        )
        for r in template.resources()
        if r.deletion_policy == "Retain"
    ]
    endpoints = _endpoints(template)
    ae, port = template.default("SCPAETitle"), template.default("SCPPort")
    out = [
        HEADER,
        f"# Deployment guide: {spec.name} {spec.version}",
        "",
        "From an empty AWS account to the first image in AWS HealthImaging. Parameters are "
        "named as the CloudFormation console shows them; their full descriptions are in the "
        "release's `parameters.md`.",
        "",
        "## 1. Prerequisites",
        "",
        "- An AWS account, in a Region the [support policy](support-policy.md) lists, and a "
        "principal allowed to create the stack: attach the release's "
        "`marketplace/deployer-policy-*.json` policies to it.",
        "- A VPC (`VpcID`, and its range `VpcCIDR`) with **two or more private subnets in "
        "different Availability Zones** (`PrivateSubnetIDs`) for the SCP tasks. The tasks "
        "pull the SCP image and call AWS APIs (S3, DynamoDB, CloudWatch Logs"
        + (", AWS Marketplace metering" if spec.marketplace.register_usage else "")
        + "), so the private subnets need a route to them: a NAT gateway"
        + ("; the template can add " + "; ".join(endpoints) if endpoints else "")
        + ".",
        "- For an internet-facing load balancer (`LoadBalancerScheme`), **public subnets in the "
        "same Availability Zones** (`PublicSubnetIDs`); with `internal`, give the private "
        "subnets again. List the zones in `AvailabilityZones`.",
        "- A security group of the VPC for your own rules on the tasks (`SecurityGroupID`).",
        "- The address ranges of your modalities or PACS (`PeerCIDR1`-`PeerCIDR3`): your "
        "sites' public ranges, never `0.0.0.0/0`.",
        "- Recommended: an ACM certificate for DICOM over TLS (`TLSCertificateARN`). Optional: "
        "your own KMS key (`KmsKeyArn`; its policy must allow what the release's "
        "`marketplace/key-policy.json` allows), an existing data store (`DatastoreId`), an "
        "address for alarms (`AlarmEmail`).",
        "",
        "The template's Rules check the subnets' VPC and Availability Zones before anything is "
        "created ([troubleshooting.md](troubleshooting.md#the-stack-fails-to-create) lists "
        "them); they do not count the subnets or check their routes: that part is yours.",
        "",
        "## 2. Subscribe and launch",
        "",
        "1. In AWS Marketplace, open the product, choose **Continue to Subscribe**, accept the "
        "terms, then **Continue to Configuration**: the CloudFormation fulfillment option and "
        f"release {spec.version}; **Continue to Launch**.",
        "2. The CloudFormation console opens with the template (the release's "
        "`marketplace/quick-create-url.txt` is the same link with the defaults filled in). Fill "
        f"the required parameters: {', '.join(f'`{n}`' for n in required)}.",
        "3. Review the others (the defaults are shown), acknowledge that the stack creates "
        "IAM roles, and choose **Create stack**.",
        "",
        "## 3. What to expect",
        "",
        f"With the default parameters the stack creates {len(template.deployed())} resources. "
        "The ECS service is complete only when its tasks pass the load balancer's health "
        "checks"
        + (
            "; if they never do, the ECS deployment circuit breaker stops the deployment and "
            "the stack rolls back"
            if breaker.get("Enable")
            else ""
        )
        + ". Follow it in the console's **Events** tab. We have not measured the duration in a "
        "real account; the load balancer and the service take the longest.",
        "",
        "When the status is `CREATE_COMPLETE`, the **Outputs** tab has what you need next:",
        "",
        *table(
            ("Output", "What it is"),
            [(f"`{n}`", o["Description"]) for n, o in template.data["Outputs"].items()],
        ),
        "With `AlarmEmail` set, confirm the subscription e-mail from SNS, or the alarms reach "
        "nobody.",
        "",
        "## 4. A first test",
        "",
        "From a machine inside one of the allowed ranges, with dcmtk (`echoscu`, `storescu`):",
        "",
        "```bash",
        f"echoscu -v -aec <DICOMAETitle> <NetworkLoadBalancerDNS> <DICOMPort>     # C-ECHO "
        f"(defaults: {ae}, port {port})",
        "storescu -v -aec <DICOMAETitle> -aet MYTEST <NetworkLoadBalancerDNS> <DICOMPort> test.dcm",
        "# With TLSCertificateARN set, add: +tla +cd /etc/ssl/certs  (TLS, verify the server)",
        "```",
        "",
        "`echoscu` prints `Received Echo Response (Success)`; `storescu` prints "
        "`Received Store Response (Success)` once the instance is durably in the DICOM "
        "bucket. A test image without patient data is best (dcmtk's `img2dcm` makes one). "
        "A few minutes later (one import job per association and study):",
        "",
        "```bash",
        "storescp-lookup --table <JobTableName> --sop <SOPInstanceUID of test.dcm>",
        "```",
        "",
        "shows `IMPORTED` with its image set. Modalities are configured the same way: host "
        "`NetworkLoadBalancerDNS`, port `DICOMPort`, called AE title `DICOMAETitle`.",
        "",
        "## 5. Where to look",
        "",
        "- The SCP's log group (output `SCPLogGroupName`): one JSON line per association and per "
        "failure; the workflow's logs are `/aws/lambda/<stack-name>-<Function>` and "
        "`/aws/vendedlogs/states/<stack-name>-ImportStateMachine`.",
        "- The dashboard (output `DashboardURL`) and the alarms ([runbook.md](runbook.md)).",
        "- The state machine's executions (output `StateMachineArn`; one per batch, named "
        "after it) and the job table (`storescp-lookup`).",
        "- Something wrong: [troubleshooting.md](troubleshooting.md).",
        "",
        "## 6. Update",
        "",
        "Apply a new release with **Update stack**, **Replace existing template** (its URL from "
        "the listing), keeping your parameter values. ECS replaces the tasks as a rolling "
        f"deployment (at least {deployment.get('MinimumHealthyPercent', 100)} % of the desired "
        f"tasks stay in service, at most {deployment.get('MaximumPercent', 200)} % run): the "
        f"load balancer stops sending new connections to an old task and waits up to "
        f"{deregistration} s for its associations, and the task finishes its in-flight "
        f"associations for up to {Settings().drain_timeout:g} s (`DRAIN_TIMEOUT`) before it "
        "stops. A modality whose association is cut resends what was not acknowledged.",
        "",
        "## 7. Delete",
        "",
        "**Delete stack** removes the tasks, the load balancer, the functions, the state "
        "machine, the queues, the alarms and the log groups. It keeps these, with their data "
        "(`DeletionPolicy: Retain`), so that deleting a stack never deletes images:",
        "",
        *table(("Resource", "Type"), retained),
        "Delete them yourself when your retention duties allow: empty each bucket (every "
        "object version) and delete it, delete the table and the data store, and schedule the "
        "key's deletion last (nothing encrypted with it can be read afterwards).",
        "",
    ]
    return "\n".join(out)
