"""`make publish REGISTRY=... [TAG=...]`: push the released image, prove the registry holds it.

Copies dist/<version>/'s OCI archive to REGISTRY/<repository>:<TAG> with skopeo, keeping the
manifest byte for byte, then asks the registry for the manifest digest and compares it with the
release manifest's. Prints the image URI the template uses. Credentials are skopeo's: for ECR,
`aws ecr get-login-password | skopeo login --username AWS --password-stdin REGISTRY` first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from generator.errors import GeneratorError
from generator.spec import ROOT, load


def publish(dist: Path, registry: str, tag: str, tls_verify: bool = True) -> str:
    """Push and verify; returns the pushed reference with its digest."""
    if not shutil.which("skopeo"):
        raise GeneratorError("skopeo not found: `make system-deps` installs it")
    manifest_path = dist / "release-manifest.json"
    if not manifest_path.is_file():
        raise GeneratorError(f"{manifest_path} not found: run `make release` first")
    container = json.loads(manifest_path.read_text()).get("container")
    if not container:
        raise GeneratorError(f"{manifest_path} lists no image: run `make release` with the image")
    repository = container["uri"].split("/", 1)[1].rsplit(":", 1)[0]
    target = f"{registry.rstrip('/')}/{repository}:{tag}"
    verify = f"--dest-tls-verify={str(tls_verify).lower()}"
    _skopeo(
        "copy", "--quiet", "--preserve-digests", verify,
        f"oci-archive:{dist / container['archive']}", f"docker://{target}",
    )  # fmt: skip
    raw = _skopeo("inspect", "--raw", verify.replace("dest-", ""), f"docker://{target}")
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    if digest != container["digest"]:
        raise GeneratorError(
            f"{target} has digest {digest}, the release manifest says {container['digest']}: "
            "the registry changed the image; do not use this tag"
        )
    return f"{target}@{digest}"


def _skopeo(*args: str) -> bytes:
    proc = subprocess.run(["skopeo", *args], capture_output=True, timeout=1800)
    if proc.returncode:
        raise GeneratorError(f"skopeo {args[0]} failed: {proc.stderr.decode()[-2000:]}")
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m generator.release.publish", description=__doc__
    )
    parser.add_argument("--registry", required=True, help="e.g. 123456789012.dkr.ecr.REGION...")
    parser.add_argument("--tag", help="image tag (default: the spec's image tag)")
    parser.add_argument("--dist", type=Path, help="release folder (default: dist/<version>)")
    parser.add_argument(
        "--no-tls-verify", dest="tls_verify", action="store_false", help="plain-HTTP test registry"
    )
    args = parser.parse_args(argv)
    spec = load()
    try:
        pushed = publish(
            args.dist or ROOT / "dist" / spec.version,
            args.registry,
            args.tag or spec.image.tag,
            args.tls_verify,
        )
    except GeneratorError as exc:
        print(f"publish failed: {exc}", file=sys.stderr)
        return 1
    print(f"pushed {pushed}\nregistry digest equals the release manifest's")
    uri = pushed.split("@")[0]
    print(f"image URI: {uri}")
    if uri != spec.image_uri:
        print(f"note: the template uses {spec.image_uri} (config/product.yaml image:)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
