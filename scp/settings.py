"""The SCP's settings: one typed object, from defaults < environment < command line."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from scp import ScpError, __version__
from scp.contracts import METRICS_NAMESPACE, S3_MULTIPART_THRESHOLD

UID_RE = re.compile(r"[0-9]+(\.[0-9]+)*")


def is_uid(text: str) -> bool:
    """A DICOM UID: digits and dots, at most 64 characters, nothing else (not even a newline)."""
    return len(text) <= 64 and UID_RE.fullmatch(text) is not None


# AE title characters: printable ASCII without backslash. The template's SCPAETitle and
# RequireCallingAETitle patterns are built from this class (tests/generator/test_ae_title.py).
AE_TITLE_CHARACTERS = r" -\[\]-~"
AE_TITLE_RE = re.compile(f"[{AE_TITLE_CHARACTERS}]{{1,16}}")


class SettingsError(ScpError):
    """A setting has an invalid value; the message names the setting and what to do."""


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _int_range(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text.strip())
        if not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}")
        return value

    return parse


def _ae_title(text: str) -> str:
    value = text.strip()
    if not 1 <= len(value) <= 16:
        raise ValueError("an AE title has 1 to 16 characters")
    if not AE_TITLE_RE.fullmatch(value):
        raise ValueError("an AE title has no backslash and no control or non-ASCII characters")
    return value


def _ae_list(text: str) -> tuple[str, ...]:
    return tuple(_ae_title(part) for part in text.split(",") if part.strip())


def _uid_list(text: str) -> tuple[str, ...]:
    uids = tuple(part.strip() for part in text.split(",") if part.strip())
    for uid in uids:
        if not is_uid(uid):
            raise ValueError(f"{uid!r} is not a UID (digits and dots, at most 64 characters)")
    return uids


def _text(text: str) -> str:
    return text.strip()


def _product_code(text: str) -> str:
    value = text.strip()
    if value and not re.fullmatch(r"[A-Za-z0-9]{1,255}", value):
        raise ValueError("a product code has letters and digits only")
    return value


def _log_level(text: str) -> str:
    value = text.strip().upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return value


def _seconds(text: str) -> float:
    value = float(text.strip())
    if not 0 < value <= 86400:
        raise ValueError("expected a number of seconds above 0 and at most 86400")
    return value


def _days(text: str) -> float:
    value = float(text.strip())
    if not 0 <= value <= 3650:
        raise ValueError("expected a number of days from 0 to 3650")
    return value


def _setting(env: str, parse: Callable[[str], Any], default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": env, "parse": parse, "doc": doc})


@dataclass(frozen=True)
class Settings:
    """Every tunable of the SCP. Field metadata names its environment variable and parser."""

    ae_title: str = _setting("SCP_AE_TITLE", _ae_title, "STORESCP", "AE title of this SCP")
    port: int = _setting("SCP_PORT", _int_range(1, 65535), 11112, "DICOM port")
    require_called_ae_title: bool = _setting(
        "REQUIRE_CALLED_AE_TITLE",
        _bool,
        False,
        "Reject associations whose called AE title is not the SCP's AE title",
    )
    require_calling_ae_title: tuple[str, ...] = _setting(
        "REQUIRE_CALLING_AE_TITLE",
        _ae_list,
        (),
        "Comma-separated calling AE titles allowed to associate (empty: any)",
    )
    maximum_associations: int = _setting(
        "MAXIMUM_ASSOCIATIONS",
        _int_range(1, 10000),
        300,
        "Concurrent associations; the next is rejected (transient, local limit exceeded)",
    )
    dimse_timeout: float = _setting(
        "DIMSE_TIMEOUT", _seconds, 60.0, "Seconds to wait for a DIMSE message"
    )
    network_timeout: float = _setting(
        "NETWORK_TIMEOUT", _seconds, 90.0, "Seconds an association may stay idle on the network"
    )
    acse_timeout: float = _setting(
        "ACSE_TIMEOUT",
        _seconds,
        10.0,
        "Seconds a new connection has to request an association (scanners are dropped after it)",
    )
    supported_sop_class_uids: tuple[str, ...] = _setting(
        "SUPPORTED_SOP_CLASS_UIDS",
        _uid_list,
        (),
        "Comma-separated storage SOP Class UIDs to accept (empty: all storage classes)",
    )
    storage: str = _setting(
        "STORAGE", _text, "./received", "Where instances go: a folder, or s3://bucket/prefix"
    )
    s3_endpoint_url: str = _setting(
        "S3_ENDPOINT_URL", _text, "", "S3 endpoint override (tests, S3-compatible stores)"
    )
    s3_multipart_threshold: int = _setting(
        "S3_MULTIPART_THRESHOLD",
        _int_range(5 * 2**20, 5 * 2**30),
        S3_MULTIPART_THRESHOLD,
        "Objects at least this large (bytes) are uploaded in parts",
    )
    bind: str = _setting("BIND_ADDRESS", _text, "0.0.0.0", "Address to listen on")
    batch_max_files: int = _setting(
        "BATCH_MAX_FILES", _int_range(1, 5000), 5000, "Instances per batch (import job) at most"
    )
    batch_max_bytes: int = _setting(
        "BATCH_MAX_BYTES",
        _int_range(1, 10 * 10**9),
        10 * 10**9,
        "Bytes per batch (import job) at most",
    )
    health_port: int = _setting(
        "HEALTH_PORT", _int_range(0, 65535), 8080, "HTTP health endpoint port (0: off)"
    )
    tls_cert: str = _setting("TLS_CERT_FILE", _text, "", "PEM certificate: enables direct TLS")
    tls_key: str = _setting("TLS_KEY_FILE", _text, "", "PEM private key of the certificate")
    tls_ca: str = _setting(
        "TLS_CA_FILE", _text, "", "PEM CA bundle: clients must present a certificate it signed"
    )
    log_level: str = _setting("LOG_LEVEL", _log_level, "INFO", "DEBUG, INFO, WARNING or ERROR")
    drain_timeout: float = _setting(
        "DRAIN_TIMEOUT",
        _seconds,
        110.0,
        "Seconds SIGTERM waits for in-flight associations before aborting them",
    )
    metrics_namespace: str = _setting(
        "METRICS_NAMESPACE", _text, METRICS_NAMESPACE, "CloudWatch namespace of the EMF metrics"
    )
    max_pdu_size: int = _setting(
        "MAX_PDU_SIZE",
        _int_range(4096, 2**26),
        4 * 2**20,
        "Largest PDU we accept (bytes); large PDUs make the receive path cheaper",
    )
    marketplace_product_code: str = _setting(
        "MARKETPLACE_PRODUCT_CODE",
        _product_code,
        "",
        "AWS Marketplace product code: RegisterUsage at start-up, refuse to run if not entitled",
    )
    workers: int = _setting(
        "WORKERS",
        _int_range(0, 64),
        0,
        "Processes sharing the DICOM port (0: one per CPU available to the container)",
    )
    temp_dir: str = _setting(
        "TEMP_DIR",
        _text,
        "",
        "Folder in which the SCP creates (and empties at start-up) its own .storescp-tmp-{port} "
        "folder for instances being received (default: STORAGE, or the system temp dir for S3)",
    )
    min_free_disk: int = _setting(
        "MIN_FREE_DISK",
        _int_range(0, 2**50),
        256 * 2**20,
        "Free bytes the temporary folder must keep: below it instances are refused (0xA701) "
        "before anything is written",
    )

    edge_forward_to: str = _setting(
        "EDGE_FORWARD_TO",
        _text,
        "",
        "Edge mode: s3://bucket/prefix (the stack's EdgeForwardTo output) to which closed "
        "batches are forwarded from the STORAGE folder, where each instance is acknowledged "
        "after an fsync and kept until S3 acknowledged it (empty: off)",
    )
    edge_uploads: int = _setting(
        "EDGE_UPLOADS", _int_range(1, 64), 8, "Edge mode: parallel uploads to S3"
    )
    edge_keep_days: float = _setting(
        "EDGE_KEEP_DAYS",
        _days,
        0.0,
        "Edge mode: days forwarded instances stay in STORAGE as a local cache (0: removed "
        "once S3 acknowledged them; removed sooner when the disk nears MIN_FREE_DISK)",
    )
    edge_backlog_max_age: float = _setting(
        "EDGE_BACKLOG_MAX_AGE",
        _seconds,
        3600.0,
        "Edge mode: /health answers 503 while the oldest instance not yet forwarded is older "
        "than this many seconds (DICOM keeps being accepted)",
    )

    @property
    def tls_enabled(self) -> bool:
        return bool(self.tls_cert)

    def check(self) -> None:
        """Cross-field rules; raises SettingsError naming the setting."""
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SettingsError("TLS_CERT_FILE and TLS_KEY_FILE: set both or neither")
        if self.tls_ca and not self.tls_cert:
            raise SettingsError("TLS_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE")
        for name in ("tls_cert", "tls_key", "tls_ca"):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                raise SettingsError(f"{env_name(name)}: no file at {path!r}")
        if self.storage.startswith("s3://") and not self.storage[5:].split("/")[0]:
            raise SettingsError("STORAGE: s3:// needs a bucket name, e.g. s3://my-bucket/prefix")
        if not self.storage:
            raise SettingsError("STORAGE: give a folder or s3://bucket/prefix")
        if self.health_port and self.health_port == self.port:
            raise SettingsError("HEALTH_PORT: must differ from SCP_PORT")
        if self.edge_forward_to:
            self._check_edge()

    def _check_edge(self) -> None:
        if not (
            self.edge_forward_to.startswith("s3://") and self.edge_forward_to[5:].split("/")[0]
        ):
            raise SettingsError("EDGE_FORWARD_TO: give s3://bucket/prefix (the stack's output)")
        if self.storage.startswith("s3://"):
            raise SettingsError(
                "STORAGE: edge mode (EDGE_FORWARD_TO) keeps instances in a local folder; give "
                "STORAGE a folder on the host's disk"
            )
        if self.temp_dir:
            raise SettingsError(
                "TEMP_DIR: leave it unset in edge mode, so MIN_FREE_DISK guards the disk that "
                "holds the instances not yet forwarded"
            )

    def describe(self) -> dict[str, Any]:
        """Settings for the start-up log line (the key path is masked)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if out["tls_key"]:
            out["tls_key"] = "***"
        return out


def env_name(name: str) -> str:
    """Environment variable of a settings field."""
    return Settings.__dataclass_fields__[name].metadata["env"]


def flag_name(name: str) -> str:
    """Command-line flag of a settings field."""
    return "--" + name.replace("_", "-")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scp",
        description="DICOM Store SCP for AWS HealthImaging. Every option can also be set by the "
        "environment variable in brackets; the command line wins.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    for f in fields(Settings):
        parser.add_argument(
            flag_name(f.name),
            dest=f.name,
            metavar="VALUE",
            default=None,
            help=f"{f.metadata['doc']} [{f.metadata['env']}] (default: {_show(f.default)})",
        )
    return parser


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value) or '""'
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def load_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build Settings from defaults, then the environment, then the command line."""
    environ = os.environ if environ is None else environ
    args = vars(_parser().parse_args(argv))
    values: dict[str, Any] = {}
    for f in fields(Settings):
        env = f.metadata["env"]
        raw, source = (
            (args[f.name], flag_name(f.name))
            if args[f.name] is not None
            else (environ.get(env), env)
        )
        if raw is None:
            continue
        try:
            values[f.name] = f.metadata["parse"](raw)
        except ValueError as exc:
            raise SettingsError(f"{source}={raw!r} is invalid: {exc}") from None
    settings = Settings(**values)
    settings.check()
    return settings


def settings_table() -> str:
    """Markdown table of every setting (the README embeds it; a test keeps it current)."""
    rows = ["| Environment variable | Flag | Default | Meaning |", "|---|---|---|---|"]
    for f in fields(Settings):
        rows.append(
            f"| `{f.metadata['env']}` | `{flag_name(f.name)}` | `{_show(f.default)}` | "
            f"{f.metadata['doc']} |"
        )
    return "\n".join(rows)


README_BEGIN = (
    "<!-- BEGIN generated from scp/settings.py (scp.settings.settings_table), do not edit -->"
)
README_END = "<!-- END generated from scp/settings.py -->"


def update_readme(path: str = "README.md") -> None:
    """Rewrite the settings and status tables between the README's markers (`make snapshot`)."""
    from scp.statuses import README_BEGIN as STATUS_BEGIN
    from scp.statuses import README_END as STATUS_END
    from scp.statuses import statuses_table

    with open(path) as fp:
        text = fp.read()
    for begin, end, table in [
        (README_BEGIN, README_END, settings_table()),
        (STATUS_BEGIN, STATUS_END, statuses_table()),
    ]:
        head, _, rest = text.partition(begin + "\n")
        _, _, tail = rest.partition(end)
        text = f"{head}{begin}\n{table}\n{end}{tail}"
    with open(path, "w") as fp:
        fp.write(text)


if __name__ == "__main__":
    update_readme()
