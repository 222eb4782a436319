"""Settings: defaults < environment < command line, and one clear error per bad value."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scp.settings import Settings, SettingsError, is_uid, load_settings, settings_table
from tests.support.scp import REPO


def test_defaults_match_the_documented_parameters() -> None:
    s = load_settings([], {})
    assert (s.ae_title, s.port, s.require_called_ae_title, s.require_calling_ae_title) == (
        "STORESCP",
        11112,
        False,
        (),
    )
    assert (s.maximum_associations, s.dimse_timeout, s.network_timeout) == (300, 60, 90)
    assert s.supported_sop_class_uids == ()
    assert (s.batch_max_files, s.batch_max_bytes) == (5000, 10 * 10**9)
    assert s.storage == "./received"


def test_environment_overrides_defaults_and_flags_override_environment() -> None:
    env = {
        "SCP_AE_TITLE": "FROMENV",
        "SCP_PORT": "104",
        "REQUIRE_CALLED_AE_TITLE": "true",
        "REQUIRE_CALLING_AE_TITLE": "CT1, MR2",
        "SUPPORTED_SOP_CLASS_UIDS": "1.2.840.10008.5.1.4.1.1.2,1.2.840.10008.5.1.4.1.1.4",
        "STORAGE": "s3://bucket/p",
    }
    s = load_settings(["--ae-title", "FROMFLAG"], env)
    assert s.ae_title == "FROMFLAG"
    assert s.port == 104
    assert s.require_called_ae_title is True
    assert s.require_calling_ae_title == ("CT1", "MR2")
    assert s.supported_sop_class_uids == ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4")
    assert s.storage == "s3://bucket/p"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SCP_AE_TITLE": "A" * 17}, "SCP_AE_TITLE"),
        ({"SCP_AE_TITLE": "BAD\\AE"}, "SCP_AE_TITLE"),
        ({"REQUIRE_CALLING_AE_TITLE": "OK,TOO_LONG_AE_TITLE_X"}, "REQUIRE_CALLING_AE_TITLE"),
        (
            {"SUPPORTED_SOP_CLASS_UIDS": "1.2.840.10008.5.1.4.1.1.2,1.2.abc"},
            "SUPPORTED_SOP_CLASS_UIDS",
        ),
        ({"SUPPORTED_SOP_CLASS_UIDS": "1.2..3"}, "SUPPORTED_SOP_CLASS_UIDS"),
        ({"SCP_PORT": "70000"}, "SCP_PORT"),
        ({"SCP_PORT": "0"}, "SCP_PORT"),
        ({"MAXIMUM_ASSOCIATIONS": "many"}, "MAXIMUM_ASSOCIATIONS"),
        ({"REQUIRE_CALLED_AE_TITLE": "maybe"}, "REQUIRE_CALLED_AE_TITLE"),
        ({"DIMSE_TIMEOUT": "-1"}, "DIMSE_TIMEOUT"),
        (
            {"TLS_CERT_FILE": "/nonexistent.pem", "TLS_KEY_FILE": "/nonexistent.key"},
            "TLS_CERT_FILE",
        ),
        ({"TLS_KEY_FILE": "/x.key"}, "TLS_KEY_FILE"),
        ({"STORAGE": "s3://"}, "STORAGE"),
        # Commit on storage with S3 records each instance in the job table: it needs one.
        (
            {"STORAGE": "s3://bucket/", "COMMITMENT_COMMIT_ON": "Stored"},
            "COMMITMENT_COMMIT_ON=stored with an S3 STORAGE needs JOB_TABLE_NAME",
        ),
        ({"COMMITMENT_RETENTION_DAYS": "0"}, "COMMITMENT_RETENTION_DAYS"),
    ],
)
def test_invalid_values_name_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings([], env)


def test_bad_setting_stops_startup_with_one_clear_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scp", "--port", "99999"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "storescp-healthimaging: error: --port='99999' is invalid: "
        "expected an integer from 1 to 65535"
    ]


def test_every_setting_has_an_environment_variable_and_the_readme_lists_it() -> None:
    names = [f.metadata["env"] for f in Settings.__dataclass_fields__.values()]
    assert len(names) == len(set(names))
    assert settings_table() in (REPO / "README.md").read_text(), (
        "README settings table is stale: paste scp.settings.settings_table() output"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.840.10008.5.1.4.1.1.2", True),
        ("1" * 64, True),
        ("1" * 65, False),
        ("", False),
        ("1.2.3\n", False),  # re's `$` matches before a final newline; a key must not get one
        ("1.2.3 ", False),
        ("1..2", False),
        (".1.2", False),
        ("1.2a", False),
    ],
)
def test_is_uid_accepts_digits_and_dots_only(text: str, expected: bool) -> None:
    assert is_uid(text) is expected
