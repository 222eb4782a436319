"""IAM building blocks: policy documents and roles scoped to the stack's own resources."""

from __future__ import annotations

from typing import Any

from troposphere import AWSObject, GetAtt, If, NoValue, Sub, Template, iam, logs

Statement = dict[str, Any]


def var(resource: AWSObject, attribute: str = "") -> str:
    """'${X}' or '${X.Attr}' for an Fn::Sub string, X being the resource's logical ID."""
    return "${" + resource.title + (f".{attribute}" if attribute else "") + "}"


def arn(resource: AWSObject, suffix: str = "", attribute: str = "Arn") -> Sub:
    """A resource's ARN plus a suffix, e.g. arn(dicom_bucket, "/incoming/*")."""
    return Sub(var(resource, attribute) + suffix)


def allow(actions: list[str], resources: list[Any], condition: dict | None = None) -> Statement:
    """One Allow statement."""
    statement: Statement = {"Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def only_if(condition: str, statement: Statement) -> If:
    """A statement present only under the template Condition named `condition`."""
    return If(condition, statement, NoValue)


def deny_insecure_transport(action: str, resources: list[Any]) -> Statement:
    """Deny every request to these resources that does not use TLS."""
    return {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": action,
        "Resource": resources,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def policy_document(statements: list[Statement]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


def role(
    t: Template,
    name: str,
    service: str,
    statements: list[Statement],
    trust_condition: dict | None = None,
    condition: str | None = None,
) -> iam.Role:
    """A role the given service principal may assume, with one inline policy; `condition`
    names the template Condition the role exists under."""
    trust: Statement = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if trust_condition:
        trust["Condition"] = trust_condition
    extra = {"Condition": condition} if condition else {}
    return t.add_resource(
        iam.Role(
            name,
            AssumeRolePolicyDocument=policy_document([trust]),
            Policies=[iam.Policy(PolicyName=name, PolicyDocument=policy_document(statements))],
            **extra,
        )
    )


def same_account() -> dict[str, Any]:
    """Condition: the calling service acts for this stack's account (confused-deputy guard)."""
    return {"StringEquals": {"aws:SourceAccount": Sub("${AWS::AccountId}")}}


def log_writer(log_group: logs.LogGroup) -> Statement:
    """Write log streams of one log group."""
    return allow(["logs:CreateLogStream", "logs:PutLogEvents"], [GetAtt(log_group, "Arn")])
