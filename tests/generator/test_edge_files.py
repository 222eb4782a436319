"""The edge host's files in the release (deploy/edge/ -> edge/): they name this release's image,
set only settings the SCP has, mount the image's volume as its user, and stop after the drain."""

from __future__ import annotations

import re

import yaml

from generator.release.edge import PLACEHOLDER, files
from generator.spec import ROOT, load
from scp.settings import Settings

SETTINGS = {f.metadata["env"] for f in Settings.__dataclass_fields__.values()}
SDK_VARIABLES = {"AWS_REGION", "AWS_EC2_METADATA_SERVICE_ENDPOINT"}  # botocore's own
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _edge() -> dict[str, str]:
    return {name: body.decode() for name, body in files(load(), ROOT).items()}


def test_every_file_names_the_release_image_and_no_placeholder_is_left():
    edge, image = _edge(), load().image_uri
    assert not [name for name, text in edge.items() if PLACEHOLDER in text]
    compose = yaml.safe_load(edge["edge/compose.yaml"])
    assert compose["services"]["storescp"]["image"] == image
    assert edge["edge/storescp-edge.service"].rstrip().count(image) == 1


def test_variables_are_settings_of_the_scp_or_the_sdk():
    edge = _edge()
    compose = yaml.safe_load(edge["edge/compose.yaml"])["services"]["storescp"]
    named = set(compose["environment"])
    named |= set(re.findall(r"^([A-Z_]+)=", edge["edge/edge.env.example"], re.M))
    named |= set(re.findall(r"--env ([A-Z_]+)=", edge["edge/storescp-edge.service"]))
    assert named - SETTINGS <= SDK_VARIABLES, named - SETTINGS - SDK_VARIABLES
    assert {"EDGE_FORWARD_TO", "STORAGE", "MIN_FREE_DISK"} <= named


def test_the_instances_volume_user_and_stop_time_match_the_image():
    edge = _edge()
    service = yaml.safe_load(edge["edge/compose.yaml"])["services"]["storescp"]
    # The image's VOLUMEs: the instances (/data) first, then the scratch folder the cloud task
    # mounts for TEMP_DIR; edge mode keeps its temporary files in STORAGE (TEMP_DIR unset).
    (volumes,) = re.findall(r"^VOLUME \[(.+)\]", DOCKERFILE, re.M)
    volume = volumes.split(",")[0].strip().strip('"')
    (user,) = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert service["environment"]["STORAGE"] == volume
    assert [v.split(":")[1] for v in service["volumes"]] == [volume]
    assert service["user"] == user and f"--user {user}" in edge["edge/storescp-edge.service"]
    assert service["restart"] == "unless-stopped" and service["read_only"] is True
    drain = Settings().drain_timeout
    assert int(service["stop_grace_period"].removesuffix("s")) > drain
    assert int(re.search(r"--stop-timeout (\d+)", edge["edge/storescp-edge.service"])[1]) > drain
    assert "Restart=always" in edge["edge/storescp-edge.service"]
