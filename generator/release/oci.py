"""Read an image archive in OCI layout: its digest, sizes, configuration and the files it holds.

Pure Python over the archive a release ships, so what the release manifest and the SBOM say is
read from the very bytes a registry receives, whichever engine built them.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.errors import GeneratorError


@dataclass(frozen=True)
class Image:
    """An image in an OCI archive: manifest digest, config, and layer blobs in order."""

    digest: str
    manifest: dict[str, Any]
    config: dict[str, Any]
    layers: list[bytes]

    @property
    def compressed_bytes(self) -> int:
        """What a registry stores: config and layer blobs as the manifest lists them."""
        return self.manifest["config"]["size"] + sum(la["size"] for la in self.manifest["layers"])

    def layer_tars(self) -> list[tarfile.TarFile]:
        return [tarfile.open(fileobj=io.BytesIO(_unzip(blob))) for blob in self.layers]

    @property
    def uncompressed_bytes(self) -> int:
        """The layers' tar streams unpacked: what the image takes on a host's disk."""
        return sum(len(_unzip(blob)) for blob in self.layers)

    def files(self, *patterns: str) -> dict[str, bytes]:
        """Regular files whose paths (no leading /) match a glob, after every layer is applied
        (later layers win, OCI whiteouts delete)."""
        found: dict[str, bytes] = {}
        for tar in self.layer_tars():
            for member in tar:
                path = member.name.removeprefix("./")
                folder, _, name = path.rpartition("/")
                if name == ".wh..wh..opq":
                    found = {p: d for p, d in found.items() if not p.startswith(folder + "/")}
                elif name.startswith(".wh."):
                    gone = f"{folder}/{name[4:]}".lstrip("/")
                    found = {
                        p: d for p, d in found.items() if p != gone and not p.startswith(gone + "/")
                    }
                elif member.isfile() and any(fnmatch.fnmatch(path, p) for p in patterns):
                    found[path] = tar.extractfile(member).read()  # type: ignore[union-attr]
        return found


def _unzip(blob: bytes) -> bytes:
    return gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob


def read(archive: Path | bytes) -> Image:
    """The single image of an OCI archive (index.json -> manifest -> config and layers)."""
    data = archive if isinstance(archive, bytes) else archive.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        blobs = {
            m.name.removeprefix("./"): tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar
            if m.isfile()
        }
    if "index.json" not in blobs:
        raise GeneratorError(
            "image archive has no index.json: not in OCI layout (docker before 25 saves another "
            "format; build with podman and buildah, or a newer docker)"
        )

    def blob(digest: str) -> bytes:
        return blobs["blobs/" + digest.replace(":", "/")]

    descriptor = json.loads(blobs["index.json"])["manifests"][0]
    while descriptor["mediaType"].endswith("index.v1+json"):  # docker save nests an index
        descriptor = json.loads(blob(descriptor["digest"]))["manifests"][0]
    manifest = json.loads(blob(descriptor["digest"]))
    return Image(
        digest=descriptor["digest"],
        manifest=manifest,
        config=json.loads(blob(manifest["config"]["digest"])),
        layers=[blob(layer["digest"]) for layer in manifest["layers"]],
    )


def normalized(archive: Path, epoch: int) -> bytes:
    """The archive's bytes with its own tar headers fixed (sorted, timestamp epoch, root owner),
    so that the same image always gives the same archive file, not only the same digest."""
    out = io.BytesIO()
    with (
        tarfile.open(archive) as src,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst,
    ):
        for member in sorted(src.getmembers(), key=lambda m: m.name):
            data = src.extractfile(member) if member.isfile() else None
            member.mtime, member.uid, member.gid, member.uname, member.gname = epoch, 0, 0, "", ""
            member.pax_headers = {}
            dst.addfile(member, data)
    return out.getvalue()
