"""Every AWS HealthImaging Region: the template refuses any other with a sentence that lists
them, and the README names them all."""

from __future__ import annotations

import pytest

from tests.generator.cfn_eval import Evaluator
from tests.support.scp import REPO

# "AWS HealthImaging endpoints and quotas" (AWS General Reference): the service's Regions.
HEALTHIMAGING_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-west-2", "ap-southeast-2"]


def test_the_spec_supports_every_healthimaging_region(spec):
    assert list(spec.regions) == HEALTHIMAGING_REGIONS


@pytest.mark.parametrize("region", HEALTHIMAGING_REGIONS)
def test_a_healthimaging_region_passes(template, region):
    assert "SupportedRegion" not in Evaluator(template, {}, region=region).failed_rules()


@pytest.mark.parametrize("region", ["eu-central-1", "ap-northeast-1", "us-east-2"])
def test_any_other_region_is_refused_with_the_list(template, region):
    assert "SupportedRegion" in Evaluator(template, {}, region=region).failed_rules()
    (assertion,) = template["Rules"]["SupportedRegion"]["Assertions"]
    assert assertion["AssertDescription"] == (
        "The stack must be created in a Region where AWS HealthImaging runs: "
        "us-east-1, us-west-2, eu-west-1, eu-west-2, ap-southeast-2; switch the console to one "
        "of them."
    )


def test_the_readme_names_every_region(spec):
    readme = (REPO / "README.md").read_text()
    assert all(region in readme for region in spec.regions)
