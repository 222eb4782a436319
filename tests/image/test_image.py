"""The SCP image as a hospital runs it: built by the release, run by podman (or docker)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import CTImageStorage
from pynetdicom import AE

from generator.release import bundle as release
from generator.release import image, lock, package, publish
from generator.spec import ROOT, load
from generator.template.service import health_command
from tests.image.container import Container
from tests.support.aws import FAKE_AWS_ENV
from tests.support.dicom_files import make_dataset, uid, write_part10
from tests.support.net import free_port, wait_for_port

CODE = "abcdefghijklmnopqrstuvwxy"


def a_file(folder: Path, n: int = 0) -> Path:
    ds = make_dataset(study=uid("study"), series=uid("series"), sop=uid("sop", n), seed=n)
    return write_part10(ds, folder / f"{n}.dcm")


def dcmtk(tool: str, container: Container, *files: Path) -> None:
    """dcmtk's storescu or echoscu against the container, as a modality would send."""
    proc = subprocess.run(
        [tool, "-aec", "STORESCP", "127.0.0.1", str(container.port), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def objects(s3, bucket: str, prefix: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listing.get("Contents", [])]


def started(container: Container) -> dict:
    lines = [x for x in container.log_lines() if x.get("event") == "started"]
    assert len(lines) == 1, container.output()
    return lines[0]


def test_release_gate_manifest_and_size(released):
    """The image gate passed (size, non-root user, health, C-ECHO, exit 0 on SIGTERM) and the
    release manifest lists the archive's digest and the SBOM, both among the artifacts."""
    assert released.findings == []
    manifest = json.loads(released.files["release-manifest.json"])
    container = manifest["container"]
    assert container["digest"] == released.image.digest
    assert container["uncompressedBytes"] <= release.MAX_IMAGE_BYTES
    assert container["user"] == "10001:10001"
    paths = {a["path"] for a in manifest["artifacts"]}
    assert {container["archive"], container["sbom"]} <= paths


def test_the_image_gate_can_fail(engine):
    """A root image above the size limit, and an image that is not an SCP (the bare base: its
    python3 exits at once), are refused with reasons."""
    assert release.image_gate(release.MAX_IMAGE_BYTES + 1, "0:0") == [
        "image is 150.0 MB unpacked, above 150 MB",
        "image runs as 0:0; set a non-root USER",
    ]
    assert release.image_gate(release.MAX_IMAGE_BYTES, "10001:10001") == []
    (finding,) = image.smoke(engine, image.base_image(engine), timeout=30)
    assert finding.startswith("not healthy (exited")


def test_sbom_lists_the_os_and_exactly_the_locked_python_packages(released):
    document = json.loads(released.files[release.SBOM])
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.5"
    purls = [c["purl"] for c in document["components"]]
    debs = {p.split("/")[2].split("@")[0] for p in purls if p.startswith("pkg:deb/")}
    assert {"python3.11", "libc6", "ca-certificates", "libssl3"} <= debs
    pypi = {p.removeprefix("pkg:pypi/") for p in purls if p.startswith("pkg:pypi/")}
    locked = {f"{p.key}@{p.version}" for p in lock.read(ROOT, lock.RUNTIME_LOCK)}
    assert pypi == locked  # pip itself stays out of the image
    assert document["metadata"]["component"]["hashes"][0]["content"] in released.image.digest


def test_default_run_stores_in_the_data_volume_read_only_and_not_root(engine, released, tmp_path):
    """No settings but the ports: C-ECHO answers, instances land in the /data volume; the root
    filesystem is read-only and the process is not root."""
    with Container(engine, released.tag, "--read-only") as scp:
        dcmtk("echoscu", scp)
        dcmtk("storescu", scp, a_file(tmp_path, 1), a_file(tmp_path, 2))
        stored = scp.exec("find", "/data/incoming", "-name", "*.dcm").stdout.split()
        assert len(stored) == 2
        assert scp.exec("id", "-u").stdout.strip() == "10001"
        denied = scp.exec("touch", "/app/x")
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr
        assert started(scp)["storage"] == "/data"


def test_s3_store_through_moto(engine, released, moto, tmp_path):
    """STORAGE=s3://... as the template sets it: objects and the batch manifest land in S3."""
    s3 = moto.client("s3")
    s3.create_bucket(Bucket="image-test")
    env = {"STORAGE": "s3://image-test/", "S3_ENDPOINT_URL": moto.endpoint, **FAKE_AWS_ENV}
    with Container(engine, released.tag, "--read-only", env=env) as scp:
        dcmtk("storescu", scp, a_file(tmp_path, 3))
        deadline = time.monotonic() + 15  # the manifest follows the association's release
        while not (keys := objects(s3, "image-test", "batches/")) and time.monotonic() < deadline:
            time.sleep(0.2)
        keys += objects(s3, "image-test", "incoming/")
    assert len([k for k in keys if k.startswith("incoming/") and k.endswith(".dcm")]) == 1
    assert len([k for k in keys if k.startswith("batches/")]) == 1


@pytest.mark.parametrize(("cpus", "workers"), [("0.5", 1), ("1.5", 2)])
def test_workers_follow_the_cpu_quota(engine, released, cpus, workers):
    if workers > len(os.sched_getaffinity(0)):
        pytest.skip(f"{workers} CPUs needed")
    with Container(engine, released.tag, "--cpus", cpus) as scp:
        assert started(scp)["workers"] == workers


def test_sigterm_drains_the_association_in_flight_then_exits_0(engine, released, tmp_path):
    """Stored to a host folder mounted at /data: SIGTERM turns health to draining, the open
    association still stores, and the SCP exits 0 once it is released."""
    data = tmp_path / "data"
    data.mkdir(mode=0o777)
    data.chmod(0o777)  # the image's user (10001) writes here
    scp = Container(engine, released.tag, "-v", f"{data}:/data").start()
    try:
        ae = AE(ae_title="DRAIN")
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="STORESCP")
        assert assoc.is_established
        scp.signal("TERM")
        deadline = time.monotonic() + 10
        while scp.health()[0] != 503 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert scp.health()[1]["status"] == "draining"
        assert assoc.send_c_store(dcmread(a_file(tmp_path, 4))).Status == 0x0000
        assoc.release()
        assert scp.wait() == 0
    finally:
        scp.remove()
    assert len(list((data / "incoming").rglob("*.dcm"))) == 1
    assert len(list((data / "batches").glob("*.json"))) == 1


def test_the_template_health_check_command_works_inside_the_image(engine, released):
    """The command the task definition runs (python, no curl) answers 0 when healthy; the same
    command on a port where nothing listens fails, so the check can fail."""
    with Container(engine, released.tag) as scp:
        command = health_command(scp.health_port)
        assert command[0] == "CMD"
        assert scp.exec(*command[1:]).returncode == 0
        assert scp.exec(*health_command(free_port())[1:]).returncode != 0


def test_product_code_built_in_makes_registration_unconditional(engine, released):
    """An image built with the spec's product code registers at start-up with no setting at all,
    and does not serve when RegisterUsage fails (here: an unreachable endpoint)."""
    context = package.container_context(ROOT, CODE)
    tag = "localhost/storescp-healthimaging-test:metered"
    archive = image.build(engine, context, tag, image.BASE_EPOCH)
    shutil.rmtree(archive.parent)
    env = {
        **FAKE_AWS_ENV,
        "AWS_ENDPOINT_URL_MARKETPLACE_METERING": f"http://127.0.0.1:{free_port()}",
        "AWS_MAX_ATTEMPTS": "1",
    }
    scp = Container(engine, tag, env=env).start(healthy=False)
    try:
        assert scp.wait() == 1
        (line,) = [x for x in scp.log_lines() if x.get("event") == "metering-failed"]
        assert "unreachable" in line["error"]
    finally:
        scp.remove()
        engine.run("rmi", tag, check=False)


@pytest.fixture
def registry(tmp_path):
    """Debian's docker-registry on a free loopback port, storing under tmp_path."""
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_publish_pushes_and_checks_the_registry_digest(released, registry, tmp_path):
    dist = tmp_path / "dist"
    release.write(dist, released.files)
    pushed = publish.publish(dist, registry, "candidate", tls_verify=False)
    assert pushed == (f"{registry}/{load().image.repository}:candidate@{released.image.digest}")
