"""The cost estimate: arithmetic checked by hand, sizes chosen from the measurements, inputs
validated, and the template's defaults (not copies of them) driving the bill."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from generator.documents import cost
from generator.documents.template_facts import TemplateFacts
from generator.errors import SpecError
from generator.spec import Spec


@pytest.fixture(scope="module")
def inputs() -> cost.Inputs:
    return cost.load_inputs()


def stack_with(real_spec: Spec, template_dict: dict, **defaults: str) -> cost.Stack:
    """The stack as read from the template with some parameter defaults changed."""
    data = copy.deepcopy(template_dict)
    for name, value in defaults.items():
        data["Parameters"][name]["Default"] = value
    return cost.Stack.read(real_spec, TemplateFacts(data))


def line(lines: list[cost.Line], item: str) -> cost.Line:
    return next(entry for entry in lines if entry.item.startswith(item))


def test_fargate_line_by_hand(real_spec, template_dict, inputs) -> None:
    """0.25 vCPU and 0.5 GB for 730 hours at 0.04048 and 0.004445 USD: 9.01 USD."""
    stack = cost.Stack.read(real_spec, TemplateFacts(template_dict))
    small = inputs.prices["profiles"]["small"]
    lines = cost.estimate(stack, inputs, small, cost.Size(256, 512))
    assert line(lines, "ECS Fargate").usd == pytest.approx(730 * (0.25 * 0.04048 + 0.5 * 0.004445))
    assert line(lines, "Network Load Balancer").usd == pytest.approx(
        730 * 0.0225 + 500 * 0.5 / 1024 * 0.006
    )


def test_defaults_come_from_the_template(real_spec, template_dict, inputs) -> None:
    stack = stack_with(
        real_spec, template_dict, TaskCPU="2048", TaskMemoryLimit="4096", TaskDesiredCount="2"
    )
    assert stack.default_size == cost.Size(2048, 4096) and stack.tasks == 2
    lines = cost.estimate(stack, inputs, inputs.prices["profiles"]["small"], stack.default_size)
    assert line(lines, "ECS Fargate").usd == pytest.approx(2 * 730 * (2 * 0.04048 + 4 * 0.004445))


def test_alarm_metrics_and_retention_are_counted_from_the_template(
    real_spec, template_dict
) -> None:
    stack = cost.Stack.read(real_spec, TemplateFacts(template_dict))
    alarms = [
        r for r in template_dict["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    assert stack.alarm_metrics >= len(alarms)
    data = copy.deepcopy(template_dict)
    rules = data["Resources"]["DicomBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    rules[0]["ExpirationInDays"] = 90
    assert cost.Stack.read(real_spec, TemplateFacts(data)).dicom_retention_days == 90


def test_no_s3_endpoint_sends_every_image_through_the_nat(real_spec, template_dict, inputs) -> None:
    data = copy.deepcopy(template_dict)
    del data["Resources"]["S3GatewayEndpoint"]
    stack = cost.Stack.read(real_spec, TemplateFacts(data))
    large = inputs.prices["profiles"]["large"]
    nat = line(cost.estimate(stack, inputs, large, stack.default_size), "NAT gateway")
    gib = large["imagesPerMonth"] * large["mibPerImage"] / 1024
    assert nat.usd >= gib * 0.045


def test_cheapest_size_is_the_smallest_measured_that_serves(
    real_spec, template_dict, inputs
) -> None:
    stack = cost.Stack.read(real_spec, TemplateFacts(template_dict))
    profile = dict(inputs.prices["profiles"]["small"])
    rows = [
        {"task_cpu": c, "dataset": "ct", "associations": 1, "mb_per_s": r, "instances_per_s": r}
        for c, r in ((256, 5.0), (512, 10.0), (1024, 20.0))
    ]
    sizing = cost.Inputs(inputs.prices, {"rows": rows})
    # 3,000 images of 0.5 MiB in 10 minutes at a 50 % CPU target: 5.24 MB/s at full CPU.
    profile.update(peakHourImages=3000, receiveMinutes=10)
    size, row = cost.cheapest_size(real_spec, stack, sizing, profile)
    assert size == cost.Size(512, 1024) and row["mb_per_s"] == 10.0
    profile.update(peakHourImages=300000)
    assert cost.cheapest_size(real_spec, stack, sizing, profile) is None


def test_small_hospital_compared_with_the_overview(real_spec, template_dict, inputs) -> None:
    """The comparison's lines add up to our total: nothing is left out of the groups."""
    facts = TemplateFacts(template_dict)
    stack = cost.Stack.read(real_spec, facts)
    lines = cost.estimate(stack, inputs, inputs.prices["profiles"]["small"], stack.default_size)
    rows = cost.overview_rows(lines, None)
    assert sum(float(r[2].strip("$").replace(",", "")) for r in rows) == pytest.approx(
        sum(x.usd for x in lines), abs=0.03
    )
    text = cost.render(real_spec, facts)
    assert "The product overview estimates USD 60-90 a month for a small hospital" in text


def test_prices_are_validated(tmp_path: Path) -> None:
    data = yaml.safe_load(cost.PRICES_PATH.read_text())
    data["prices"]["nlbHour"]["source"] = "https://example.com/prices"
    bad = tmp_path / "prices.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match=r"\$\.prices\.nlbHour\.source"):
        cost.load_inputs(bad)


def test_a_missing_price_is_named(inputs) -> None:
    prices = copy.deepcopy(inputs.prices)
    del prices["prices"]["nlbHour"]
    with pytest.raises(SpecError, match="nlbHour is missing"):
        cost.Inputs(prices, inputs.sizing).usd("nlbHour")


def test_every_price_and_assumption_is_used(real_spec, template_dict) -> None:
    """The table holds nothing the estimate ignores; a few apply only to some templates or
    parameter sets (x86 functions, customer managed keys, the public subnets of an
    internet-facing load balancer, which is not the default)."""
    inputs = cost.load_inputs()
    cost.render(real_spec, TemplateFacts(template_dict), inputs)
    table = set(inputs.prices["prices"]) | set(inputs.prices["assumptions"])
    assert inputs.used <= table
    assert table - inputs.used <= {"lambdaX86GbSecond", "kmsKeyMonth", "publicSubnets"}
