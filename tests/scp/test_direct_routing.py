"""Which instances go direct (DIRECT_STORE*), the settings' cross-field rules, reading a STOW-RS
response, and the C-STORE status of each STOW-RS Failure Reason."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from scp import statuses
from scp.direct_store import refusal_status
from scp.healthimaging.routing import HIGH_PRIORITY, DirectRoute
from scp.healthimaging.stow import parse_stow_response
from scp.settings import SettingsError, load_settings
from tests.support.scp import REPO

DATASTORE = "0123456789abcdef0123456789abcdef"
MEDIUM, LOW = 0x0000, 0x0002


@pytest.mark.parametrize(
    ("route", "calling", "priority", "direct"),
    [
        (DirectRoute(), "ED-CT1", HIGH_PRIORITY, False),
        (DirectRoute("all"), "ANY", LOW, True),
        (DirectRoute("selected", ("ED-CT1",)), "ED-CT1", MEDIUM, True),
        (DirectRoute("selected", ("ED-CT1",)), "WARD-CR", HIGH_PRIORITY, False),
        (DirectRoute("selected", (), True), "WARD-CR", HIGH_PRIORITY, True),
        (DirectRoute("selected", (), True), "WARD-CR", MEDIUM, False),
        (DirectRoute("selected", ("ED-CT1",), True), "ED-CT1", LOW, True),
    ],
)
def test_route(route: DirectRoute, calling: str, priority: int, direct: bool) -> None:
    assert route.wants(calling, priority) is direct


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DIRECT_STORE": "selected"}, "set DIRECT_STORE_CALLING_AE_TITLES"),
        ({"DIRECT_STORE": "all", "DIRECT_STORE_HIGH_PRIORITY": "true"}, "only with"),
        ({"DIRECT_STORE_CALLING_AE_TITLES": "ED-CT1"}, "only with"),
        ({"DIRECT_STORE": "all"}, "needs HEALTHIMAGING_DATASTORE_ID"),
        ({"DIRECT_STORE": "some"}, "DIRECT_STORE='some' is invalid"),
        ({"HEALTHIMAGING_DATASTORE_ID": "ABC"}, "32 lowercase letters and digits"),
    ],
)
def test_direct_store_settings_that_cannot_work_are_refused(env, message) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings([], env)


def test_direct_store_settings() -> None:
    env = {
        "DIRECT_STORE": "Selected",
        "DIRECT_STORE_CALLING_AE_TITLES": "ED-CT1, TRAUMA",
        "HEALTHIMAGING_DATASTORE_ID": DATASTORE,
    }
    s = load_settings(["--direct-store-budget", "4"], env)
    assert (s.direct_store, s.direct_store_calling_ae_titles) == ("selected", ("ED-CT1", "TRAUMA"))
    assert (s.direct_store_budget, s.healthimaging_datastore_id) == (4.0, DATASTORE)


def _item(sop: str, **more: dict) -> dict:
    return {
        "00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},
        "00081155": {"vr": "UI", "Value": [sop]},
        **more,
    }


def test_stow_response_lists_stored_and_failed_instances() -> None:
    doc = {
        "00081190": {"vr": "UR", "Value": ["https://example/studies/1.2"]},
        "00081199": {
            "vr": "SQ",
            "Value": [
                _item("1.2.1", **{"00081190": {"vr": "UR", "Value": ["https://x/1.2.1"]}}),
                _item("1.2.2", **{"00081196": {"vr": "US", "Value": [0xB000]}}),
            ],
        },
        "00081198": {
            "vr": "SQ",
            "Value": [_item("1.2.3", **{"00081197": {"vr": "US", "Value": [0xC000]}})],
        },
    }
    outcome = parse_stow_response(doc)
    assert set(outcome.stored) == {"1.2.1", "1.2.2"}
    assert outcome.stored["1.2.1"].retrieve_url == "https://x/1.2.1"
    assert outcome.stored["1.2.2"].warning_reason == 0xB000
    assert outcome.failed == {"1.2.3": 0xC000}


@pytest.mark.parametrize(
    "doc",
    [[], {"00081199": {"vr": "SQ", "Value": ["x"]}}, {"00081199": {"Value": [{}]}}],
)
def test_what_is_not_a_stow_response_is_refused(doc) -> None:
    with pytest.raises(ValueError):
        parse_stow_response(doc)


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        (0xA700, None),  # HealthImaging out of resources: another path can still store it
        (0xA7FF, None),
        (0xA900, statuses.DATASET_MISMATCH),
        (0xA9FF, statuses.DATASET_MISMATCH),
        (0xC000, statuses.REFUSED_BY_HEALTHIMAGING),
        (0x0110, statuses.REFUSED_BY_HEALTHIMAGING),
        (0x0122, statuses.REFUSED_BY_HEALTHIMAGING),
    ],
)
def test_failure_reason_to_c_store_status(reason, status) -> None:
    assert refusal_status(reason) == status


def test_direct_store_without_a_region_refuses_to_start(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "scp",
            "--storage",
            str(tmp_path),
            "--direct-store",
            "all",
            "--healthimaging-datastore-id",
            DATASTORE,
            "--health-port",
            "0",
            "--port",
            "1",
        ],
        capture_output=True,
        text=True,
        env={**env, "AWS_CONFIG_FILE": "/nonexistent"},
        cwd=REPO,
        timeout=60,
    )
    assert (result.returncode, result.stderr.splitlines()) == (
        1,
        [
            "storescp-healthimaging: error: HEALTHIMAGING_REGION: no Region set, and none from "
            "the AWS SDK (AWS_DEFAULT_REGION)"
        ],
    )
