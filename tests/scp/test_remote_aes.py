"""The one registry of remote AEs (REMOTE_AES): parsed and validated at start-up with one clear
line, and what each calling AE may do."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scp.remote_aes import RemoteAE
from scp.settings import SettingsError, load_settings
from tests.support.scp import REPO


def test_entries_give_address_tls_and_permissions() -> None:
    value = "CT1=10.0.4.20:104:store+commitment, WS 1=ws.example.org:11112:query+retrieve:tls"
    s = load_settings([], {"REMOTE_AES": value})
    ct, ws = s.remote_aes.get("CT1"), s.remote_aes.get("WS 1")
    assert ct == RemoteAE("CT1", "10.0.4.20", 104, frozenset({"store", "commitment"}))
    assert ws == RemoteAE(
        "WS 1", "ws.example.org", 11112, frozenset({"query", "retrieve"}), tls=True
    )
    assert str(s.remote_aes) == (
        "CT1=10.0.4.20:104:store+commitment,WS 1=ws.example.org:11112:query+retrieve:tls"
    )


def test_what_a_calling_ae_may_do() -> None:
    registry = load_settings([], {"REMOTE_AES": "CT1=h:104:commitment"}).remote_aes
    assert registry.may("CT1", "commitment") and not registry.may("CT1", "store")
    # Not registered: store only (as before the registry), nothing that needs an address.
    assert registry.may("OTHER", "store") and not registry.may("OTHER", "commitment")
    assert registry.may("OTHER", "")  # Verification needs nothing


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("CT1", "expected TITLE=host:port:permission+permission[:tls]"),
        ("CT1=h:104", "expected host:port:permissions[:tls]"),
        ("CT1=h:99999:store", "port '99999' is not from 1 to 65535"),
        ("CT1=h_x:104:store", "'h_x' is not a host name"),
        ("CT1=h:104:print", "use one or more of store+query+retrieve+commitment"),
        ("CT1=h:104:store:ssl", "the optional fourth field is 'tls'"),
        ("CT1=h:104:store,CT1=g:104:store", "CT1: listed twice"),
        ("TOO_LONG_AE_TITLE_X=h:104:store", "an AE title has 1 to 16 characters"),
    ],
)
def test_a_bad_registry_is_one_clear_error(value: str, says: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings([], {"REMOTE_AES": value})
    assert str(err.value).startswith("REMOTE_AES=")
    assert says in str(err.value)


def test_the_scp_refuses_to_start_with_one_line_naming_the_setting() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "scp", "--remote-aes", "CT1=h:104:print"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0
    assert run.stderr.startswith(
        "storescp-healthimaging: error: --remote-aes='CT1=h:104:print' is invalid"
    )
