"""Sentences, not tracebacks: each start-up mistake an admin makes is one line on stderr that
names the setting and what to do, under the program's own name, and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.net import free_port
from tests.support.scp import REPO


def scp(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "scp", "--bind", "127.0.0.1", "--port", str(free_port())]
    argv += ["--health-port", "0", *args]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (
            ["--storage", "s3:/bucket"],
            2,
            "storescp-healthimaging: error: --storage='s3:/bucket' is invalid: this looks like "
            "a URL but only s3://bucket/prefix is one; for S3 write s3://BUCKET/PREFIX, for a "
            "folder whose name has a colon write ./s3:/bucket",
        ),
        (
            ["--min-free-disk", "100 terabytes"],
            2,
            "storescp-healthimaging: error: --min-free-disk='100 terabytes' is invalid: expected "
            "bytes or a size with a unit, e.g. 268435456, 256MiB or 100GB (KB, MB, GB, TB, PB "
            "are powers of 1000; KiB, MiB, GiB, TiB, PiB of 1024)",
        ),
        (
            ["--maximum-associations", "many"],
            2,
            "storescp-healthimaging: error: --maximum-associations='many' is invalid: expected "
            "an integer from 1 to 10000",
        ),
    ],
)
def test_bad_values_are_one_sentence(args, code, line):
    done = scp(*args)
    assert (done.returncode, done.stderr.splitlines()) == (code, [line])


def test_a_tls_file_that_does_not_load_is_one_sentence(tmp_path):
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    done = scp(
        *("--storage", str(tmp_path / "store")),
        *("--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem")),
    )
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        "storescp-healthimaging: error: TLS_CERT_FILE/TLS_KEY_FILE/TLS_CA_FILE cannot be loaded"
    )


def test_a_storage_folder_that_cannot_be_made_is_one_sentence(tmp_path):
    (tmp_path / "file").write_text("a file, not a folder")
    done = scp("--storage", str(tmp_path / "file" / "store"))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"storescp-healthimaging: error: STORAGE: cannot use folder "
        f"'{tmp_path / 'file' / 'store' / '.storescp-tmp'}"
        f"-{done.args[done.args.index('--port') + 1]}': Not a directory"
    ]


def test_sizes_take_units():
    from scp.settings import load_settings

    settings = load_settings(["--min-free-disk", "100TB", "--max-pdu-size", "1MiB"], {})
    assert (settings.min_free_disk, settings.max_pdu_size) == (100 * 10**12, 2**20)


def test_a_data_store_without_credentials_to_sign_for_it_is_one_sentence(tmp_path):
    """Query/Retrieve (and StoreDICOM) sign every DICOMweb request: with a data store named but
    no credentials, the SCP refuses to start, rather than report healthy while every C-FIND
    fails."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_DEFAULT_REGION": "us-east-1"}
    env["HEALTHIMAGING_DATASTORE_ID"] = "0123456789abcdef0123456789abcdef"
    argv = [sys.executable, "-m", "scp", "--bind", "127.0.0.1", "--port", str(free_port())]
    argv += ["--health-port", "0", "--storage", str(tmp_path / "store")]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr.splitlines()) == (
        1,
        [
            "storescp-healthimaging: error: HEALTHIMAGING_DATASTORE_ID: no AWS credentials found "
            "to sign HealthImaging DICOMweb requests (Query/Retrieve, StoreDICOM); give the SCP "
            "its role or credentials, or unset HEALTHIMAGING_DATASTORE_ID"
        ],
    )
