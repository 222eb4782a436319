"""The image run exactly as the built template's task definition runs it on Fargate.

What Fargate does that podman's defaults do not (ECS developer guide, "Use bind mounts with
Amazon ECS", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html;
containers-roadmap issue 938):
- a task-definition volume with no host path (a bind mount) is an empty folder owned by root
  with mode 0755, unless the image declares that containerPath a VOLUME: then the VOLUME path's
  contents (and its owner and mode, as set in the Dockerfile) are copied into it;
- nothing else is writable under ReadonlyRootFilesystem: no tmpfs at /tmp, /run, /var/tmp
  (`--read-only-tmpfs=false`); an image VOLUME the task definition does not mount stays part of
  the read-only root (`--image-volume ignore`: the page describes a VOLUME only where a
  containerPath matches it, so the test assumes nothing more);
- awsvpc: the task has a network of its own and the container's ports as written.
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from generator.release import oci
from generator.spec import load
from generator.template.build import template_for
from scp.storage import owned_name
from tests.fakes.pipeline import create_job_table
from tests.generator.cfn_eval import Evaluator
from tests.image.container import HOST_LOOPBACK, Container
from tests.image.test_image import a_file, dcmtk, objects
from tests.support.aws import FAKE_AWS_ENV

BUCKET = "fargate-task-test"
STACK = "fargate-test"
JOB_TABLE = "fargate-test-jobs"
DATASTORE_ID = "0123456789abcdef0123456789abcdef"  # [0-9a-z]{32}: a stack's own data store


def task_definition(bucket: str) -> dict[str, Any]:
    """The SCP's task definition from the built template, parameters at their defaults and the
    DICOM bucket named bucket."""
    template = json.loads(template_for(load()).to_json())
    (task,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    # The resources the environment names: the bucket, the job table, the stack's data store.
    names = {
        "DicomBucket": bucket,
        "AWS::StackName": STACK,
        "DicomImportJobTable": JOB_TABLE,
        "Datastore.DatastoreId": DATASTORE_ID,
    }
    properties = Evaluator(template, {}, names=names).value(task["Properties"])
    assert "FARGATE" in properties["RequiresCompatibilities"]
    (container,) = properties["ContainerDefinitions"]
    volumes = {v["Name"] for v in properties.get("Volumes", [])}
    for mount in container.get("MountPoints", []):
        assert mount["SourceVolume"] in volumes, mount
    return properties


def image_folder(image: oci.Image, path: str) -> tarfile.TarInfo | None:
    """The folder at path as the image's layers leave it (the last layer that writes it)."""
    found = None
    for tar in image.layer_tars():
        for member in tar:
            if member.isdir() and "/" + member.name.removeprefix("./").rstrip("/") == path:
                found = member
    return found


def fargate_volumes(image: oci.Image, container: dict[str, Any], root: Path) -> dict[str, Path]:
    """For each MountPoint's path, an empty host folder owned by root with mode 0755, or, where
    the image declares the path a VOLUME, with the owner and mode the image gives it."""
    declared = image.config["config"].get("Volumes") or {}
    hosts = {}
    for n, mount in enumerate(container.get("MountPoints", [])):
        path = mount["ContainerPath"]
        host = hosts[path] = root / f"volume-{n}"
        host.mkdir()
        owner, mode = (0, 0), 0o755
        if path in declared:
            folder = image_folder(image, path)
            assert folder is not None, f"the image declares VOLUME {path} but has no such folder"
            owner, mode = (folder.uid, folder.gid), folder.mode & 0o7777
        os.chown(host, *owner)  # as Fargate's agent does; the image tests run as root here
        host.chmod(mode)
    return hosts


def run_options(task: dict[str, Any], hosts: dict[str, Path]) -> list[str]:
    """podman run's options for what the task definition says, as Fargate applies it."""
    (container,) = task["ContainerDefinitions"]
    options = ["--image-volume", "ignore"]
    options += ["--cpus", str(int(task["Cpu"]) / 1024), "--memory", f"{task['Memory']}m"]
    for mount in container.get("MountPoints", []):
        suffix = ":ro" if mount.get("ReadOnly") else ""
        options += ["-v", f"{hosts[mount['ContainerPath']]}:{mount['ContainerPath']}{suffix}"]
    if container.get("ReadonlyRootFilesystem"):
        options += ["--read-only", "--read-only-tmpfs=false"]
    if "User" in container:
        options += ["--user", container["User"]]
    if "StopTimeout" in container:
        options += ["--stop-timeout", str(container["StopTimeout"])]
    return options


def health_check(container: Container, check: dict[str, Any]) -> int:
    """Exit code of the task definition's HealthCheck command run inside the container."""
    kind, *command = check["Command"]
    if kind == "CMD-SHELL":
        command = ["sh", "-c", *command]
    assert kind in ("CMD", "CMD-SHELL"), check
    return container.exec(*command).returncode


def test_the_task_definition_runs_the_image_with_fargate_mounts(engine, released, moto, tmp_path):
    """GIVEN the task definition of the built template (parameters at their defaults, the
    bucket on a moto server) and the mounts Fargate would give it
    WHEN the image runs as it says
    THEN it becomes healthy by the task definition's own HealthCheck, instances sent by dcmtk's
    storescu reach S3 with their batch manifest, and SIGTERM exits 0."""
    if engine.name != "podman":
        pytest.skip("the task's own network (slirp4netns) is a podman option")
    moto.client("s3").create_bucket(Bucket=BUCKET)
    create_job_table(moto.client("dynamodb"), JOB_TABLE)
    task = task_definition(BUCKET)
    (definition,) = task["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in definition["Environment"]}
    assert all(isinstance(v, str) for v in env.values()), env
    # What Fargate adds: the region, and credentials of the task role (here: moto's).
    moto_url = f"http://{HOST_LOOPBACK}:{moto.port}"
    env |= {**FAKE_AWS_ENV, "S3_ENDPOINT_URL": moto_url, "AWS_ENDPOINT_URL_DYNAMODB": moto_url}
    ports = [m["ContainerPort"] for m in definition["PortMappings"]]
    assert ports == [int(env["SCP_PORT"]), int(env["HEALTH_PORT"])]
    hosts = fargate_volumes(released.image, definition, tmp_path)
    options = run_options(task, hosts)
    scp = Container(engine, released.tag, *options, env=env, published=(ports[0], ports[1]))
    try:
        scp.start(timeout=definition["HealthCheck"]["StartPeriod"] + 30)
        assert health_check(scp, definition["HealthCheck"]) == 0
        # Instances being received go to the mounted volume, in the SCP's own folder.
        assert (hosts[env["TEMP_DIR"]] / owned_name(ports[0])).is_dir()
        first, second = a_file(tmp_path, 11), a_file(tmp_path, 12)
        dcmtk("storescu", scp, first, second)
        s3 = moto.client("s3")
        deadline = time.monotonic() + 15  # the manifest follows the association's release
        while not objects(s3, BUCKET, "batches/") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(objects(s3, BUCKET, "batches/")) == 1
        stored = [k for k in objects(s3, BUCKET, "incoming/") if k.endswith(".dcm")]
        assert len(stored) == 2
        scp.signal("TERM")
        assert scp.wait(timeout=definition["StopTimeout"]) == 0, scp.output()
    finally:
        scp.remove()
