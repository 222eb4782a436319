"""The pages a hospital and a reviewer read once: the troubleshooting and deployment guides
follow the code's own lists, the HTML's anchors and links resolve, template internals do not
leak, the commands they print parse, and each fact they state is the code's."""

from __future__ import annotations

import copy
import json
import re
import shlex
from html.parser import HTMLParser
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from generator.documents import compliance, deployment, outbound, troubleshooting
from generator.documents import pages as documents
from generator.documents.template_facts import TemplateFacts
from generator.errors import GeneratorError
from generator.spec import ROOT, Spec
from lambdas import operators
from scp import admission, metering
from scp.statuses import STORE_STATUSES


@pytest.fixture(scope="module")
def rendered(real_spec: Spec) -> dict[str, str]:
    return {**documents.render_all(real_spec), **documents.render_root(real_spec)}


@pytest.fixture(scope="module")
def bundled(real_spec: Spec) -> dict[str, bytes]:
    return documents.bundle(real_spec)


class _Page(HTMLParser):
    """Every id and every href of one HTML page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag == "a" and values.get("href"):
            self.hrefs.append(str(values["href"]))


# -- HTML: anchors, links, index ---------------------------------------------------------------
def test_every_link_in_the_bundled_html_resolves(bundled) -> None:
    pages = {
        name.removeprefix("docs/"): _Page(data.decode())
        for name, data in bundled.items()
        if name.endswith(".html")
    }
    checked = 0
    for name, page in pages.items():
        for href in page.hrefs:
            if re.match(r"[a-z]+:", href):
                continue
            target, _, anchor = href.partition("#")
            target = target or name
            assert target in pages, f"{name}: link to {href}, which the bundle does not have"
            if anchor:
                assert anchor in pages[target].ids, f"{name}: {href} names no heading"
            checked += 1
    runbook = pages["runbook.html"]
    assert "deadletterqueuealarm" in runbook.ids
    assert "#deadletterqueuealarm" in runbook.hrefs
    assert checked > 30


def test_the_index_lists_every_page(bundled) -> None:
    index = _Page(bundled["docs/index.html"].decode())
    pages = {n.removeprefix("docs/") for n in bundled if n.endswith(".html")} - {"index.html"}
    assert set(index.hrefs) == pages
    assert {"troubleshooting.html", "deployment-guide.html", "CHANGELOG.html"} <= pages
    assert ">Changelog: StoreSCP for AWS HealthImaging</a>" in bundled["docs/index.html"].decode()


def test_bundled_markdown_links_stay_in_one_folder(bundled) -> None:
    for name, data in bundled.items():
        if name.endswith(".md"):
            assert not re.search(r"\]\((\.\./|docs/)", data.decode()), name


# -- what a reader must not see ----------------------------------------------------------------
def test_no_template_internals_in_the_pages(rendered, template_dict) -> None:
    conditions = list(template_dict["Conditions"])
    for name, text in rendered.items():
        for condition in conditions:
            assert not re.search(rf"\b{condition}\b", text), (name, condition)
        assert "${AWS::" not in text and "Fn::" not in text, name
        assert "PacsServerTaskDefPacsContainerLogGroup" not in text, name


def test_conditions_read_as_their_parameters(template_dict) -> None:
    facts = TemplateFacts(template_dict)
    assert facts.when("CreateS3Endpoint") == "`CreateS3GatewayEndpoint` is `true`"
    cloud = " and `DeployCloudSCP` is `true`"  # no load balancer without the cloud SCP
    assert facts.when("NoTLSCertificate") == "`TLSCertificateARN` is empty" + cloud
    assert facts.when("HasTLSCertificate") == "`TLSCertificateARN` is set" + cloud
    assert facts.describe({"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}) == (
        "`logs.<region>.amazonaws.com`"
    )


def test_runbook_shows_the_metric_namespace_as_the_stack_names_it(rendered) -> None:
    assert "Sum of `StoreSCP/<stack-name>` ConflictInstances per 300 s" in rendered["runbook.md"]


def _commands(text: str, program: str) -> list[list[str]]:
    return [shlex.split(c) for c in re.findall(rf"`({program} [^`]+)`", text)]


def test_every_operator_command_printed_parses(rendered, monkeypatch) -> None:
    """Each `storescp-redrive` / `storescp-lookup` in the pages runs the real argument parser
    (the AWS calls are replaced: only the command line is under test)."""
    calls: list[str] = []
    monkeypatch.setattr(
        operators,
        "redrive",
        lambda *a: (
            calls.append("redrive")
            or {
                "attempt": 2,
                "executionArn": "arn",
            }
        ),
    )
    monkeypatch.setattr(operators, "lookup", lambda *a: calls.append("lookup") or [])
    monkeypatch.setattr(operators, "in_progress", lambda *a: [])
    monkeypatch.setattr(operators, "transactions", lambda *a: calls.append("lookup") or [])
    monkeypatch.setattr(
        operators,
        "stack_outputs",
        lambda client, stack: {v: f"<{v}>" for v in operators.STACK_OUTPUTS.values()},
    )
    monkeypatch.setattr(operators, "_session", lambda args: (lambda name: None, lambda name: None))
    redrives = lookups = 0
    for text in rendered.values():
        for argv in _commands(text, "storescp-redrive"):
            assert operators.redrive_main(argv[1:]) == 0, argv
            redrives += 1
        for argv in _commands(text, "storescp-lookup"):
            operators.lookup_main(argv[1:])
            lookups += 1
    assert redrives >= 4 and lookups >= 2
    assert calls.count("redrive") == redrives and calls.count("lookup") == lookups


# -- troubleshooting ---------------------------------------------------------------------------
def test_troubleshooting_lists_every_rejection_status_and_rule(rendered, template_dict) -> None:
    text = rendered["troubleshooting.md"]
    rejections = [v for v in vars(admission).values() if isinstance(v, admission.Rejection)]
    assert len(rejections) >= 4
    for r in rejections:
        assert f"| `{r.reason}` | {r.result} (" in text
    for status in STORE_STATUSES[1:]:
        assert f"| 0x{status.code:04X} | {status.name} |" in text
    for rule, body in template_dict["Rules"].items():
        assert f"| `{rule}` |" in text
        assert body["Assertions"][-1]["AssertDescription"] in text


def test_a_rejection_without_a_fix_stops_the_generator(real_spec, template_dict, monkeypatch):
    monkeypatch.setattr(admission, "NEW_ONE", admission.Rejection("new reason", 1, 1, 2), False)
    with pytest.raises(GeneratorError, match=r"\['new reason'\] have no fix"):
        troubleshooting.render(real_spec, TemplateFacts(template_dict))


def test_a_status_without_a_fix_stops_the_generator(real_spec, template_dict, monkeypatch):
    monkeypatch.delitem(troubleshooting.STATUS_FIXES, 0xC213)
    with pytest.raises(GeneratorError, match=r"\['0xC213'\] have no fix"):
        troubleshooting.render(real_spec, TemplateFacts(template_dict))


def _start_import_throttling_retrier() -> dict[str, Any]:
    """Read independently of the generator: the ASL file itself."""
    asl = json.loads((ROOT / "lambdas/statemachine/import_workflow.asl.json").read_text())
    return next(
        r
        for r in asl["States"]["StartImport"]["Retry"]
        if "MedicalImaging.ThrottlingException" in r["ErrorEquals"]
    )


def test_backoff_cap_in_the_pages_and_readme_is_the_state_machines(rendered) -> None:
    retrier = _start_import_throttling_retrier()
    cap = retrier["MaxDelaySeconds"]
    assert f"up to {cap} seconds between tries" in rendered["troubleshooting.md"]
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"at most {cap} s between tries: the retrier's `MaxDelaySeconds`" in readme
    assert "5 minutes between tries" not in readme


# -- deployment guide --------------------------------------------------------------------------
def test_deployment_guide_follows_the_template(real_spec, template_dict) -> None:
    text = deployment.render(real_spec, TemplateFacts(template_dict))
    retained = [n for n, r in template_dict["Resources"].items() if r.get("DeletionPolicy")]
    for name in retained:
        assert f"| `{name}` | {template_dict['Resources'][name]['Type']}" in text
    for name, p in template_dict["Parameters"].items():
        if "Default" not in p:
            assert f"`{name}`" in text.split("## 3.")[0]
    data = copy.deepcopy(template_dict)
    data["Resources"]["DicomBucket"]["DeletionPolicy"] = "Delete"
    assert "| `DicomBucket` |" not in deployment.render(real_spec, TemplateFacts(data))


# -- security pages ----------------------------------------------------------------------------
def test_register_usage_request_is_what_the_scp_sends() -> None:
    """The page's payload comes from running scp/metering.py; a real client's stub agrees."""
    client = boto3.client("meteringmarketplace", region_name="us-east-1")
    request = outbound.register_usage_request("abc123")
    with Stubber(client) as stub:
        stub.add_response("register_usage", {}, expected_params=request)
        metering.register_usage(client, "abc123")
        stub.assert_no_pending_responses()
    assert request == {"ProductCode": "abc123", "PublicKeyVersion": metering.PUBLIC_KEY_VERSION}


def test_shared_responsibility_says_what_leaves_the_account(rendered) -> None:
    text = rendered["shared-responsibility.md"]
    assert "## What leaves your account" in text and "**Nothing goes to the seller**" in text
    assert f"`PublicKeyVersion={metering.PUBLIC_KEY_VERSION}`" in text
    assert "VPC Flow Logs" in text


def test_access_logs_are_said_to_need_a_tls_listener(real_spec, template_dict) -> None:
    text = compliance.data_protection(real_spec, TemplateFacts(template_dict))
    assert (
        "only when it has a TLS listener (here: when `TLSCertificateARN` is set and "
        "`DeployCloudSCP` is `true`)" in text
    )
    data = copy.deepcopy(template_dict)
    lb = data["Resources"]["NetworkLoadBalancer"]["Properties"]
    lb["LoadBalancerAttributes"] = [
        a for a in lb["LoadBalancerAttributes"] if not a["Key"].startswith("access_logs")
    ]
    assert "## Load balancer access logs" not in compliance.data_protection(
        real_spec, TemplateFacts(data)
    )


def test_security_policy_names_the_spec_contact(real_spec, rendered) -> None:
    text = rendered["SECURITY.md"]
    assert f"<{real_spec.seller_contact}>" in text
    assert "this repository" not in text
    assert real_spec.seller_contact in rendered["support-policy.md"]


# -- cost estimate -----------------------------------------------------------------------------
def test_every_price_is_aws_own_or_marked_unknown(rendered) -> None:
    """No third-party page: each URL in the price table is AWS's, and a price not confirmed on
    AWS's page reads as unknown in the estimate."""
    import yaml

    from generator.documents import cost

    data = yaml.safe_load(cost.PRICES_PATH.read_text())
    urls = re.findall(r"https?://[^\s\"']+", cost.PRICES_PATH.read_text())
    assert urls and all(
        re.match(r"https://(aws\.amazon\.com|docs\.aws\.amazon\.com)/", u) for u in urls
    )
    text = rendered["cost-estimate.md"]
    for name, entry in data["prices"].items():
        row = next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
        if "confirmed" in entry:
            assert f"read {entry['confirmed']['read']} on {entry['confirmed']['page']}" in row
        else:
            assert "**unknown**" in row, name
    for profile in data["profiles"].values():
        assert profile["basis"] in text


def test_the_template_names_no_host_but_aws(template_dict) -> None:
    """What the security page says: the stack calls no endpoint of the seller. Every host name
    in the template (URLs, the image's registry) is AWS's."""
    text = json.dumps(template_dict)
    # Host names, not the domain of an example e-mail address in a constraint's description.
    host = r"(?<![@A-Za-z0-9.${}:-])((?:[A-Za-z0-9${}:-]+\.)+(?:com|net|org|io|dev))\b"
    hosts = set(re.findall(host, text))
    assert hosts, "no host found: the pattern no longer matches the template"
    for host in hosts:
        assert host.endswith(("amazonaws.com", "amazon.com", "${AWS::URLSuffix}")), host
