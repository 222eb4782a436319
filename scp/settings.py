"""The SCP's settings: one typed object, from defaults < environment < command line."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from scp import PROG, ScpError, __version__
from scp.contracts import METRICS_NAMESPACE, S3_MULTIPART_THRESHOLD
from scp.remote_aes import FORMAT as REMOTE_AES_FORMAT
from scp.remote_aes import RemoteAEs

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
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError(f"expected an integer from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"expected an integer from {low} to {high}")
        return value

    return parse


SIZE_UNITS = {
    "": 1,
    "b": 1,
    **{f"{p}b": 1000 ** (i + 1) for i, p in enumerate("kmgtp")},
    **{f"{p}ib": 1024 ** (i + 1) for i, p in enumerate("kmgtp")},
}
SIZE_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)")


def parse_size(text: str) -> int:
    """Bytes from `1048576`, `100GB` (1000^n) or `256MiB` (1024^n); ValueError says how."""
    match = SIZE_RE.fullmatch(text.strip().lower())
    if not match or match.group(2) not in SIZE_UNITS:
        raise ValueError(
            "expected bytes or a size with a unit, e.g. 268435456, 256MiB or 100GB "
            "(KB, MB, GB, TB, PB are powers of 1000; KiB, MiB, GiB, TiB, PiB of 1024)"
        )
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2)])


def format_size(value: int) -> str:
    """`256 MiB`, `10 GB`, `4096 B`: the largest unit that shows `value` exactly, else bytes."""
    for unit, factor in sorted(SIZE_UNITS.items(), key=lambda item: -item[1]):
        if unit and factor > 1 and value and value % factor == 0:
            return f"{value // factor} {unit.upper().replace('IB', 'iB')}"
    return f"{value} B"


def _size(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = parse_size(text)
        if not low <= value <= high:
            raise ValueError(f"expected a size from {format_size(low)} to {format_size(high)}")
        return value

    parse.shows = format_size  # type: ignore[attr-defined]  # the default, as a size
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


def _log_uids(text: str) -> str:
    value = text.strip().lower()
    if value not in ("plain", "hashed", "none"):
        raise ValueError("expected plain, hashed or none")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise ValueError("expected a number of seconds above 0 and at most 86400")
    return value


DIRECT_STORE_MODES = ("none", "all", "selected")
DATASTORE_ID_RE = re.compile(r"[0-9a-z]{32}")  # HealthImaging API reference: datastoreId pattern


def _datastore_id(text: str) -> str:
    value = text.strip()
    if value and not DATASTORE_ID_RE.fullmatch(value):
        raise ValueError("a data store ID is 32 lowercase letters and digits")
    return value


# A scheme, as in `s3:/bucket`, `S3://bucket` or `http://host`: only `s3://` is a store.
URL_LIKE_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# Bucket naming rules (Amazon S3 User Guide, "General purpose bucket naming rules"): 3 to 63
# lowercase letters, digits, dots and hyphens, beginning and ending with a letter or digit.
BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _storage(text: str) -> str:
    value = text.strip()
    if not value:
        raise ValueError("give a folder, or s3://bucket/prefix")
    if value.startswith("s3://"):
        bucket = value[5:].split("/")[0]
        if not bucket:
            raise ValueError("s3:// needs a bucket name, e.g. s3://my-bucket/prefix")
        if not BUCKET_RE.fullmatch(bucket):
            raise ValueError(
                f"{bucket!r} is not an S3 bucket name (3 to 63 lowercase letters, digits, dots "
                "and hyphens)"
            )
    elif URL_LIKE_RE.match(value):
        raise ValueError(
            "this looks like a URL but only s3://bucket/prefix is one; for S3 write "
            "s3://BUCKET/PREFIX, for a folder whose name has a colon write ./" + value
        )
    return value


def _remote_aes(text: str) -> RemoteAEs:
    return RemoteAEs.parse(text, _ae_title)


def _choice(*values: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in values:
            raise ValueError(f"expected {' or '.join(values)}")
        return value

    return parse


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
        "STORAGE", _storage, "./received", "Where instances go: a folder, or s3://bucket/prefix"
    )
    s3_endpoint_url: str = _setting(
        "S3_ENDPOINT_URL", _text, "", "S3 endpoint override (tests, S3-compatible stores)"
    )
    s3_multipart_threshold: int = _setting(
        "S3_MULTIPART_THRESHOLD",
        _size(5 * 2**20, 5 * 2**30),
        S3_MULTIPART_THRESHOLD,
        "Objects at least this large are uploaded in parts (bytes, or with a unit: 64MiB)",
    )
    bind: str = _setting("BIND_ADDRESS", _text, "0.0.0.0", "Address to listen on")
    batch_max_files: int = _setting(
        "BATCH_MAX_FILES", _int_range(1, 5000), 5000, "Instances per batch (import job) at most"
    )
    batch_max_bytes: int = _setting(
        "BATCH_MAX_BYTES",
        _size(1, 10 * 10**9),
        10 * 10**9,
        "Bytes per batch (import job) at most (bytes, or with a unit: 10GB)",
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
    log_uids: str = _setting(
        "LOG_UIDS",
        _log_uids,
        "plain",
        "How Study/Series/SOP Instance UIDs appear in the log: plain, hashed (sha256: and 16 "
        "hex digits, the same for the same UID) or none",
    )
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
        _size(4096, 2**26),
        4 * 2**20,
        "Largest PDU we accept (bytes, or with a unit: 4MiB); large PDUs make the receive path "
        "cheaper",
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
        _size(0, 2**50),
        256 * 2**20,
        "Free space the store's folder and the temporary folder must keep (bytes, or with a "
        "unit: 256MiB, 100GB): below it instances are refused (0xA701) before anything is "
        "written, and /health reports unhealthy",
    )
    storage_check_interval: float = _setting(
        "STORAGE_CHECK_INTERVAL",
        _seconds,
        30.0,
        "Seconds between proofs that the store takes an object (folder: a written file and "
        "MIN_FREE_DISK; S3: a multipart upload started and aborted); /health is 503 with the "
        "reason while the last one failed",
    )

    direct_store: str = _setting(
        "DIRECT_STORE",
        _choice(*DIRECT_STORE_MODES),
        "none",
        "Which instances go straight to HealthImaging (StoreDICOM) instead of a batch import: "
        "none, all, or selected (by DIRECT_STORE_CALLING_AE_TITLES and/or "
        "DIRECT_STORE_HIGH_PRIORITY)",
    )
    direct_store_calling_ae_titles: tuple[str, ...] = _setting(
        "DIRECT_STORE_CALLING_AE_TITLES",
        _ae_list,
        (),
        "With DIRECT_STORE=selected: comma-separated calling AE titles whose instances go direct",
    )
    direct_store_high_priority: bool = _setting(
        "DIRECT_STORE_HIGH_PRIORITY",
        _bool,
        False,
        "With DIRECT_STORE=selected: C-STOREs with Priority HIGH go direct",
    )
    direct_store_budget: float = _setting(
        "DIRECT_STORE_BUDGET",
        _seconds,
        10.0,
        "Seconds StoreDICOM may take, retries included, before the instance falls back to the "
        "batch path",
    )
    healthimaging_datastore_id: str = _setting(
        "HEALTHIMAGING_DATASTORE_ID",
        _datastore_id,
        "",
        "HealthImaging data store of direct stores",
    )
    healthimaging_region: str = _setting(
        "HEALTHIMAGING_REGION",
        _text,
        "",
        "Region of the data store (default: the AWS SDK's, e.g. AWS_REGION)",
    )
    dicomweb_endpoint_url: str = _setting(
        "DICOMWEB_ENDPOINT_URL",
        _text,
        "",
        "DICOMweb endpoint override (tests); default "
        "https://dicom-medical-imaging.{region}.amazonaws.com",
    )
    qido_page_size: int = _setting(
        "QIDO_PAGE_SIZE",
        _int_range(1, 1000),
        1000,
        "Records per QIDO-RS page (limit) when C-FIND, C-MOVE and C-GET search HealthImaging",
    )
    job_table: str = _setting(
        "JOB_TABLE_NAME",
        _text,
        "",
        "DynamoDB job table (DicomImportJobTable): direct stores are recorded in it, and with an "
        "S3 store storage commitment reads instance states from it and records its transactions "
        "in it (empty: neither)",
    )
    remote_aes: RemoteAEs = _setting(  # noqa: RUF009 (RemoteAEs is immutable and hashable)
        "REMOTE_AES",
        _remote_aes,
        RemoteAEs(),
        f"Remote AEs: {REMOTE_AES_FORMAT}; permissions store, query, retrieve, commitment "
        "(AEs not listed may store only)",
    )
    commitment_commit_on: str = _setting(
        "COMMITMENT_COMMIT_ON",
        _choice("imported", "stored"),
        "imported",
        "Storage commitment succeeds when an instance is imported into a primary image set, or "
        "(stored) once it is durably stored (with S3, recorded in JOB_TABLE_NAME before the "
        "C-STORE answer); a folder store has no import: stored",
    )
    commitment_timeout: float = _setting(
        "COMMITMENT_TIMEOUT",
        _seconds,
        14400.0,
        "Seconds after the N-ACTION at which a commitment reports what is known (instances "
        "not final yet fail)",
    )
    commitment_delivery_window: float = _setting(
        "COMMITMENT_DELIVERY_WINDOW",
        _seconds,
        86400.0,
        "Seconds a commitment report is retried (with backoff) before it is undeliverable",
    )
    commitment_retention_days: int = _setting(
        "COMMITMENT_RETENTION_DAYS",
        _int_range(1, 36500),
        365,
        "Days a commitment transaction is kept after its report (or after it became "
        "undeliverable: DynamoDB TTL in the job table, a file in a folder store's "
        "commitment/done/) and a commit-on-stored item after its receipt",
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

    @property
    def commits_on_stored_in_table(self) -> bool:
        """Commitment on durable storage with an S3 store: each stored instance gets a job-table
        item before its C-STORE answer (scp/job_records.py)."""
        return self.commitment_commit_on == "stored" and self.storage.startswith("s3://")

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
        if self.commits_on_stored_in_table and not self.job_table:
            raise SettingsError(
                "COMMITMENT_COMMIT_ON=stored with an S3 STORAGE needs JOB_TABLE_NAME: each "
                "stored instance is recorded there before its C-STORE answer"
            )
        if self.health_port and self.health_port == self.port:
            raise SettingsError("HEALTH_PORT: must differ from SCP_PORT")
        self._check_direct_store()
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

    def _check_direct_store(self) -> None:
        selective = self.direct_store_calling_ae_titles or self.direct_store_high_priority
        if self.direct_store == "selected" and not selective:
            raise SettingsError(
                "DIRECT_STORE=selected: set DIRECT_STORE_CALLING_AE_TITLES and/or "
                "DIRECT_STORE_HIGH_PRIORITY=true"
            )
        if self.direct_store != "selected" and selective:
            raise SettingsError(
                "DIRECT_STORE_CALLING_AE_TITLES and DIRECT_STORE_HIGH_PRIORITY apply only with "
                f"DIRECT_STORE=selected (it is {self.direct_store})"
            )
        if self.direct_store != "none" and not self.healthimaging_datastore_id:
            raise SettingsError(
                f"DIRECT_STORE={self.direct_store} needs HEALTHIMAGING_DATASTORE_ID"
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
        prog=PROG,
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
            help=f"{f.metadata['doc']} [{f.metadata['env']}] (default: {_show_field(f)})",
        )
    return parser


def _show_field(f: Any) -> str:
    shows = getattr(f.metadata["parse"], "shows", None)
    return shows(f.default).replace(" ", "") if shows else _show(f.default)


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
            f"| `{f.metadata['env']}` | `{flag_name(f.name)}` | `{_show_field(f)}` | "
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
