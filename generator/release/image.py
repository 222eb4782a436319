"""The SCP container image: a Debian base from packages, the build, and its OCI archive.

Daemonless by default: mmdebstrap makes the base root filesystem from the Debian mirror this
machine's apt uses, buildah builds the Dockerfile, podman runs the result. Where only docker is
available, docker does the same (base from the same root filesystem, `docker import`).

Reproducible: the base root filesystem is built with a fixed SOURCE_DATE_EPOCH, the image with
buildah's --timestamp (the commit's time), so the same commit gives the same image digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from generator.errors import GeneratorError
from generator.release.cache import cache_dir

SUITE = "bookworm"
# Python and CA certificates on Debian's essential set; nothing else (no apt, no perl modules).
BASE_PACKAGES = ("python3", "ca-certificates")
# Documentation, translations and charset converters the SCP never reads; copyright files stay.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/lib/x86_64-linux-gnu/gconv/*",
)
BASE_EPOCH = 1_700_000_000  # timestamps of the base root filesystem (2023-11-14)
BASE_REPOSITORY = "localhost/storescp-base"
SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
CONTAINERS_CONF = """\
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
STORAGE_CONF = """\
[storage]
driver = "vfs"
graphroot = "{root}/storage"
runroot = "{root}/run"
"""


def debian_sources(suite: str = SUITE, paths: tuple[Path, ...] = SOURCES) -> list[str]:
    """One-line `deb` entries for suite (and suite-updates, suite-security) from apt's config.

    Reads both formats apt takes (sources.list lines and deb822 .sources stanzas), so the base is
    built from whichever mirror this machine is configured with.
    """
    files = [p for p in paths if p.is_file()]
    for folder in (p for p in paths if p.is_dir()):
        files += sorted(p for p in folder.iterdir() if p.suffix in (".list", ".sources"))
    entries: list[str] = []
    for path in files:
        text = path.read_text()
        if path.suffix == ".sources":
            for stanza in text.split("\n\n"):
                fields = _deb822(stanza)
                if "deb" not in fields.get("Types", "").split():
                    continue
                if fields.get("Enabled", "yes").lower() == "no":
                    continue
                for uri in fields.get("URIs", "").split():
                    for s in fields.get("Suites", "").split():
                        entries.append(f"deb {uri} {s} {fields.get('Components', 'main')}")
        else:
            for line in text.splitlines():
                parts = line.split("#")[0].split()
                if parts and parts[0] == "deb":
                    words = [w for w in parts[1:] if not w.startswith("[")]
                    entries.append(" ".join(["deb", *words]))
    ours = [e for e in entries if e.split()[2].split("-")[0] == suite]
    if not ours:
        raise GeneratorError(
            f"no Debian {suite} entry in {', '.join(map(str, paths))}; the base image is built "
            f"from apt's mirror: add one, or build with BASE_IMAGE set to a registry image"
        )
    return sorted(set(ours), key=ours.index)


def _deb822(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = ""
    for line in stanza.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line[0] in " \t" and key:
            fields[key] += " " + line.strip()
        else:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


def mirror_state(sources: list[str], timeout: float = 30) -> list[str]:
    """The sha256 of each source's InRelease file. It changes whenever the mirror publishes new
    packages (a security update), so a cached base never outlives the packages it was made of."""
    digests = []
    for entry in sources:
        _, uri, suite = entry.split()[:3]
        url = f"{uri.rstrip('/')}/dists/{suite}/InRelease"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as rsp:
                digests.append(hashlib.sha256(rsp.read()).hexdigest())
        except OSError as exc:
            raise GeneratorError(
                f"cannot read {url} ({exc}): the base image is built from this mirror; check "
                "the network and apt's sources, or build with a registry BASE_IMAGE"
            ) from None
    return digests


def base_key(sources: list[str], state: list[str]) -> str:
    """What the base root filesystem depends on, hashed: suite, packages, options, the mirror
    and its state."""
    recipe = [SUITE, list(BASE_PACKAGES), list(DPKG_OPTIONS), BASE_EPOCH, sources, state]
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:16]


def base_rootfs(sources: list[str], key: str) -> Path:
    """The base root filesystem as a tar (mmdebstrap), from the cache when it holds one; a new
    one replaces those of older mirror states."""
    tar = cache_dir("base") / f"{SUITE}-{key}.tar"
    if tar.is_file():
        return tar
    if not shutil.which("mmdebstrap"):
        raise GeneratorError("mmdebstrap not found: `make system-deps` installs it")
    partial = tar.with_suffix(".partial")
    cmd = ["mmdebstrap", "--variant=essential", "--format=tar", "--quiet"]
    cmd += [f"--include={','.join(BASE_PACKAGES)}"]
    cmd += ["--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr"]  # no usrmerge, so no perl
    cmd += [f"--dpkgopt={o}" for o in DPKG_OPTIONS]
    cmd += [SUITE, str(partial), *sources]
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(BASE_EPOCH)}
    _run(cmd, "mmdebstrap (base root filesystem)", env=env, timeout=1800)
    partial.rename(tar)
    for old in tar.parent.glob(f"{SUITE}-*.tar"):
        if old != tar:
            old.unlink(missing_ok=True)
    return tar


@dataclass
class Engine:
    """A container engine: "podman" (with buildah, daemonless) or "docker"."""

    name: str
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)

    @property
    def cli(self) -> list[str]:
        """The command that runs, inspects and stops containers."""
        return [self.name]

    def run(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        proc = subprocess.run(
            [*self.cli, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode:
            raise GeneratorError(
                f"{self.name} {' '.join(args[:2])} failed (exit {proc.returncode}): "
                f"{proc.stderr.strip()[-2000:]}"
            )
        return proc.stdout

    def logs(self, container: str) -> str:
        """What the container printed, stdout then stderr."""
        proc = subprocess.run(
            [*self.cli, "logs", container], env=self.env, capture_output=True, text=True
        )
        return proc.stdout + proc.stderr

    def has_image(self, name: str) -> bool:
        return not subprocess.run(
            [*self.cli, "image", "inspect", name], env=self.env, capture_output=True
        ).returncode

    def import_base(self, rootfs: Path, name: str) -> None:
        """The root filesystem as an image named name (one layer, fixed timestamps)."""
        if self.name == "docker":
            self.run("import", "--change", 'CMD ["python3"]', str(rootfs), name)
            return
        container = _run(["buildah", "from", "scratch"], "buildah from", env=self.env).strip()
        try:
            _run(["buildah", "add", container, str(rootfs), "/"], "buildah add", env=self.env)
            _run(
                ["buildah", "config", "--cmd", "python3", "--env", "LANG=C.UTF-8", container],
                "buildah config",
                env=self.env,
            )
            _run(
                [
                    "buildah",
                    "commit",
                    "--quiet",
                    "--identity-label=false",
                    "--timestamp",
                    str(BASE_EPOCH),
                    container,
                    name,
                ],
                "buildah commit",
                env=self.env,
            )
        finally:
            _run(["buildah", "rm", container], "buildah rm", env=self.env)

    def build(self, context: Path, tag: str, build_args: dict[str, str], epoch: int) -> None:
        """Build context as tag, then drop the image the tag named before (no cache piles up)."""
        args = [a for k, v in sorted(build_args.items()) for a in ("--build-arg", f"{k}={v}")]
        if self.name == "docker":
            cmd = ["docker", "build", "--quiet", "-t", tag, *args, str(context)]
            env = {**self.env, "SOURCE_DATE_EPOCH": str(epoch)}
        else:
            cmd = ["buildah", "bud", "--quiet", "--isolation", "chroot", "--network", "host"]
            cmd += ["--identity-label=false", "--timestamp", str(epoch), "-t", tag]
            cmd += [*args, str(context)]
            env = self.env
        _run(cmd, f"{self.name} build", env=env, timeout=1800)
        self.run("image", "prune", "--force", check=False)

    def save(self, name: str, archive: Path, ref: str) -> None:
        """The image as an OCI archive named ref, layers gzip-compressed as a registry holds
        them (docker: as `docker save` writes it)."""
        if self.name == "docker":
            self.run("save", "-o", str(archive), name)
            return
        _run(
            ["buildah", "push", "--quiet", name, f"oci-archive:{archive}:{ref}"],
            "buildah push",
            env=self.env,
        )


def podman() -> Engine:
    """podman and buildah with their own configuration and storage under the cache (vfs: no
    kernel overlay needed; runc: crun trips on this kind of machine's cgroups and ulimits)."""
    root = cache_dir("containers")
    (root / "containers.conf").write_text(CONTAINERS_CONF)
    (root / "storage.conf").write_text(STORAGE_CONF.format(root=root))
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(root / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
    }
    return Engine("podman", env)


def detect() -> tuple[Engine | None, str]:
    """The first usable engine (CONTAINER_ENGINE=podman|docker forces one), or why there is none."""
    wanted = os.environ.get("CONTAINER_ENGINE", "")
    reasons = []
    for name in [wanted] if wanted else ["podman", "docker"]:
        tools = ["podman", "buildah"] if name == "podman" else ["docker"]
        missing = [t for t in tools if not shutil.which(t)]
        if missing:
            reasons.append(f"{name}: {', '.join(missing)} not installed")
            continue
        engine = podman() if name == "podman" else Engine("docker")
        proc = subprocess.run(
            [*engine.cli, "info"], env=engine.env, capture_output=True, text=True, timeout=60
        )
        if proc.returncode:
            reasons.append(f"{name} info failed: {proc.stderr.strip()[-300:]}")
            continue
        return engine, ""
    return None, "no container engine can run here (" + "; ".join(reasons) + ")"


def require_engine() -> Engine:
    engine, reason = detect()
    if engine is None:
        raise GeneratorError(
            f"{reason}; install buildah and podman (`make system-deps`) or start docker, "
            "or release without the image (`make release IMAGE=0`)"
        )
    return engine


def base_image(engine: Engine) -> str:
    """The default BASE_IMAGE: Debian from packages, imported once per recipe and mirror state,
    and also tagged
    with the Dockerfile's default name so that a plain build of dist/<version>/container/ works."""
    sources = debian_sources()
    key = base_key(sources, mirror_state(sources))
    name = f"{BASE_REPOSITORY}:{SUITE}-{key}"
    if not engine.has_image(name):
        engine.import_base(base_rootfs(sources, key), name)
        listed = engine.run("images", "--format", "{{.Repository}}:{{.Tag}}", BASE_REPOSITORY)
        for old in set(listed.split()) - {name, f"{BASE_REPOSITORY}:{SUITE}"}:
            engine.run("rmi", old, check=False)  # a base of an older mirror state
    engine.run("tag", name, f"{BASE_REPOSITORY}:{SUITE}")
    return name


def source_epoch(root: Path) -> int:
    """SOURCE_DATE_EPOCH, else the time of the commit checked out at root, else BASE_EPOCH."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    proc = subprocess.run(
        ["git", "-C", str(root), "log", "-1", "--format=%ct"], capture_output=True, text=True
    )
    return int(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else BASE_EPOCH


def build(engine: Engine, context: dict[str, bytes], tag: str, epoch: int, base: str = "") -> Path:
    """Build the context (relative path -> bytes) as tag; return its OCI archive (a temp file the
    caller removes). base overrides BASE_IMAGE (default: the Debian base from packages)."""
    archive = Path(tempfile.mkdtemp(prefix="storescp-image-")) / "image.oci.tar"
    with tempfile.TemporaryDirectory(prefix="storescp-context-") as tmp:
        for rel, data in context.items():
            path = Path(tmp, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        # A name of its own until saved: a concurrent build of the same tag cannot swap images.
        own = f"{tag}-build{os.getpid()}"
        engine.build(Path(tmp), own, {"BASE_IMAGE": base or base_image(engine)}, epoch)
    try:
        engine.save(own, archive, tag)
        engine.run("tag", own, tag)
    finally:
        engine.run("rmi", own, check=False)
    return archive


def _run(cmd: list[str], what: str, env: dict[str, str], timeout: float = 600) -> str:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise GeneratorError(f"{what} failed (exit {proc.returncode}): {proc.stderr[-3000:]}")
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smoke(engine: Engine, tag: str, timeout: float = 60) -> list[str]:
    """Run the image as ECS does (read-only root, no settings but ports): it must report healthy,
    answer C-ECHO, and exit 0 on SIGTERM. Returns what went wrong. podman's --read-only adds
    tmpfs folders that Fargate does not; they are left out (tests/image/test_fargate.py runs the
    template's whole task definition)."""
    port, health = free_port(), free_port()
    no_tmpfs = ["--read-only-tmpfs=false"] if engine.name == "podman" else []
    container = engine.run(
        "run",
        "-d",
        "--network",
        "host",
        "--read-only",
        *no_tmpfs,
        "-e",
        f"SCP_PORT={port}",
        "-e",
        f"HEALTH_PORT={health}",
        "-e",
        "BIND_ADDRESS=127.0.0.1",
        tag,
    ).strip()
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(health):
            state = engine.run("inspect", "--format", "{{.State.Status}}", container).strip()
            if time.monotonic() > deadline or state == "exited":
                logs = engine.logs(container)[-1500:]
                return [f"not healthy ({state} after {timeout:.0f} s at most): {logs}"]
            time.sleep(0.2)
        status = _echo(port)
        engine.run("stop", "-t", "30", container)
        code = engine.run("inspect", "--format", "{{.State.ExitCode}}", container).strip()
        findings = [] if status == 0 else [f"C-ECHO answered status {status!r}, not 0x0000"]
        return findings + ([] if code == "0" else [f"exit code {code} after SIGTERM, not 0"])
    finally:
        engine.run("rm", "-f", "-v", container, check=False)


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as rsp:
            return rsp.status == 200
    except OSError:
        return False


def _echo(port: int) -> int | None:
    from pynetdicom import AE  # build tools carry pynetdicom (dev extras); the image needs none

    ae = AE(ae_title="RELEASE")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", port, ae_title="STORESCP")
    if not assoc.is_established:
        return None
    status = assoc.send_c_echo()
    assoc.release()
    return int(status.Status) if status else None
