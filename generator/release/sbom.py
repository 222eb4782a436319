"""Software bill of materials (CycloneDX 1.5 JSON) of the SCP image, read from the image itself.

Debian packages come from dpkg's database in the image, Python packages from the .dist-info
folders installed in it; nothing is taken from what we meant to install.
"""

from __future__ import annotations

import json
import time
import uuid
from email.parser import HeaderParser
from typing import Any
from urllib.parse import quote

from generator.errors import GeneratorError
from generator.release.oci import Image

DPKG_STATUS = "var/lib/dpkg/status"
DIST_INFO = "*/site-packages/*.dist-info/METADATA"
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")


def dpkg_packages(status: str) -> list[dict[str, str]]:
    """Installed packages of a dpkg status file: name, version, architecture, source."""
    packages = []
    for stanza in status.split("\n\n"):
        fields = HeaderParser().parsestr(stanza)
        if fields["Package"] and "installed" in (fields["Status"] or "").split():
            packages.append(
                {
                    "name": fields["Package"],
                    "version": fields["Version"],
                    "arch": fields["Architecture"],
                    "source": (fields["Source"] or fields["Package"]).split()[0],
                }
            )
    return sorted(packages, key=lambda p: p["name"])


def _os(files: dict[str, bytes]) -> dict[str, str]:
    text = next((files[p].decode() for p in OS_RELEASE if p in files), "")
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k: v.strip('"') for k, v in pairs}


def _deb(package: dict[str, str], distro: str) -> dict[str, Any]:
    purl = (
        f"pkg:deb/debian/{package['name']}@{quote(package['version'], safe='+~.')}"
        f"?arch={package['arch']}&distro={distro}"
    )
    return {
        "type": "library",
        "bom-ref": purl,
        "name": package["name"],
        "version": package["version"],
        "purl": purl,
        "properties": [{"name": "debian:source", "value": package["source"]}],
    }


def _python(metadata: bytes, path: str) -> dict[str, Any]:
    fields = HeaderParser().parsestr(metadata.decode("utf-8", "replace"))
    name, version = fields["Name"], fields["Version"]
    purl = f"pkg:pypi/{name.lower().replace('_', '-')}@{version}"
    component: dict[str, Any] = {
        "type": "library",
        "bom-ref": purl,
        "name": name,
        "version": version,
        "purl": purl,
        "properties": [{"name": "python:location", "value": "/" + path.rsplit("/", 2)[0]}],
    }
    expression = fields["License-Expression"]
    license_name = fields["License"] or ""
    if expression:
        component["licenses"] = [{"expression": expression}]
    elif license_name and "\n" not in license_name and len(license_name) <= 100:
        component["licenses"] = [{"license": {"name": license_name}}]
    return component


def sbom(image: Image, name: str, version: str, epoch: int) -> dict[str, Any]:
    """The CycloneDX document for image (name:version), timestamped at epoch (reproducible)."""
    files = image.files(DPKG_STATUS, DIST_INFO, *OS_RELEASE)
    if DPKG_STATUS not in files:
        raise GeneratorError(f"image has no /{DPKG_STATUS}: its OS packages cannot be listed")
    os_release = _os(files)
    distro = f"{os_release.get('ID', 'debian')}-{os_release.get('VERSION_ID', '')}"
    components = [_deb(p, distro) for p in dpkg_packages(files[DPKG_STATUS].decode())]
    components += sorted(
        (_python(data, path) for path, data in files.items() if path.endswith("/METADATA")),
        key=lambda c: c["name"].lower(),
    )
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, image.digest)}",
        "version": 1,
        "metadata": {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
            "tools": {"components": [{"type": "application", "name": "generator/release/sbom.py"}]},
            "component": {
                "type": "container",
                "bom-ref": image.digest,
                "name": name,
                "version": version,
                "hashes": [{"alg": "SHA-256", "content": image.digest.split(":", 1)[1]}],
                "properties": [{"name": "os", "value": os_release.get("PRETTY_NAME", "unknown")}],
            },
        },
        "components": components,
    }


def render(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()
