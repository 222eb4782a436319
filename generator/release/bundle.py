"""`make release`: validate the spec, build every artifact, pass the gates, write dist/<version>/.

The artifacts include the SCP image, built from the bundle's own container/ context, as an OCI
archive with its SBOM; the image gate runs it. Nothing is written unless every gate passes.
Usage: python -m generator.release.bundle [--out DIR] [--no-image]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from generator.documents import pages as documents
from generator.documents import readme as docs
from generator.errors import GeneratorError
from generator.release import edge, gates, image, marketplace, oci, package, sbom
from generator.spec import ROOT, Spec, load
from generator.template.build import GENERATED, template_for
from generator.template.inline import inline_code

YAML_HEADER = f"# {GENERATED}\n"


def render_template(spec: Spec) -> tuple[str, str]:
    """The template as YAML and JSON text."""
    t = template_for(spec)
    return YAML_HEADER + t.to_yaml(), t.to_json(indent=2) + "\n"


def bundle(spec: Spec, root: Path) -> dict[str, bytes]:
    """Every artifact of dist/<version>/ except the manifest, by relative path."""
    yaml_text, json_text = render_template(spec)
    files = {
        "template.yaml": yaml_text.encode(),
        "template.json": json_text.encode(),
        "parameters.md": docs.parameter_reference(spec).encode(),
        # The template carries each function inline; the sources are shipped for review.
        "lambda/sources.zip": package.lambda_zip(root),
        **{f"lambda/inline/{n}.py": code.encode() for n, code in inline_code(spec, root).items()},
        **{
            f"container/{k}": v
            for k, v in package.container_context(root, spec.marketplace.metering_code).items()
        },
        **documents.bundle(spec),
        **edge.files(spec, root),
        **{f"marketplace/{k}": v for k, v in marketplace.files(spec, json_text).items()},
    }
    files["release-manifest.json"] = release_manifest(spec, files)
    return dict(sorted(files.items()))


def release_manifest(
    spec: Spec, files: dict[str, bytes], container: dict[str, object] | None = None
) -> bytes:
    manifest = {
        "generated": GENERATED,
        "version": spec.version,
        "image": spec.image_uri,
        **({"container": container} if container else {}),
        "artifacts": [
            {"path": path, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for path, data in sorted(files.items())
        ],
    }
    return (json.dumps(manifest, indent=2) + "\n").encode()


SBOM = "image/sbom.cdx.json"
MAX_IMAGE_BYTES = 150 * 10**6


def image_archive(spec: Spec) -> str:
    """Path of the image's OCI archive in dist/<version>/."""
    return f"image/{spec.image.repository.rsplit('/', 1)[-1]}-{spec.image.tag}.oci.tar"


def with_image(
    spec: Spec, root: Path, files: dict[str, bytes], engine: image.Engine, base: str = ""
) -> tuple[dict[str, bytes], list[str]]:
    """The bundle plus the image built from its container/ context (OCI archive, SBOM), and the
    image gate's findings: its size, its user, and a run of it (health, C-ECHO, SIGTERM).
    base: a registry image instead of the Debian base built from packages."""
    context = {
        k.removeprefix("container/"): v for k, v in files.items() if k.startswith("container/")
    }
    name, tag = spec.image.repository, spec.image.tag
    local = f"localhost/{name}:{tag}"
    epoch = image.source_epoch(root)
    archive = image.build(engine, context, local, epoch, base)
    try:
        data = oci.normalized(archive, epoch)
    finally:
        shutil.rmtree(archive.parent, ignore_errors=True)
    built = oci.read(data)
    document = sbom.sbom(built, name, tag, epoch)
    path = image_archive(spec)
    files = {k: v for k, v in files.items() if k != "release-manifest.json"}
    files |= {path: data, SBOM: sbom.render(document)}
    size = built.uncompressed_bytes
    container = {
        "uri": spec.image_uri,
        "archive": path,
        "digest": built.digest,
        "compressedBytes": built.compressed_bytes,
        "uncompressedBytes": size,
        "sbom": SBOM,
        "sbomFormat": "CycloneDX 1.5",
        "sbomComponents": len(document["components"]),
        "user": built.config["config"].get("User", ""),
    }
    files["release-manifest.json"] = release_manifest(spec, files, container)
    findings = image_gate(size, str(container["user"])) + image.smoke(engine, local)
    return dict(sorted(files.items())), findings


def image_gate(size: int, user: str) -> list[str]:
    """What the image's configuration alone fails on: its unpacked size and a root user."""
    findings = []
    if size > MAX_IMAGE_BYTES:
        findings.append(
            f"image is {size / 1e6:.1f} MB unpacked, above {MAX_IMAGE_BYTES / 1e6:.0f} MB"
        )
    if user.split(":")[0] in ("", "0", "root"):
        findings.append(f"image runs as {user or 'root'}; set a non-root USER")
    return findings


def run_gates(spec: Spec, files: dict[str, bytes]) -> dict[str, list[str]]:
    """Findings per gate; the release passes only when every list is empty."""
    template = files["template.yaml"].decode()
    with tempfile.TemporaryDirectory() as tmp:
        dockerfile = Path(tmp, "Dockerfile")
        dockerfile.write_bytes(files["container/Dockerfile"])
        hadolint = gates.hadolint(dockerfile)
    return {
        "cfn-lint": gates.cfn_lint(template, spec),
        "checkov": gates.checkov(template, spec),
        "hadolint": hadolint,
    }


def write(out: Path, files: dict[str, bytes]) -> None:
    """Replace out/ with exactly these files (staged first, so a crash leaves the old one)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".staging-{out.name}"
    shutil.rmtree(staging, ignore_errors=True)
    for rel, data in files.items():
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o644)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def summary(files: dict[str, bytes], findings: dict[str, list[str]], seconds: float) -> str:
    rows = [
        (path, f"{len(data):,}", hashlib.sha256(data).hexdigest()[:16])
        for path, data in files.items()
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'artifact':<{width}}  {'bytes':>10}  sha256"]
    lines += [f"{p:<{width}}  {b:>10}  {h}" for p, b, h in rows]
    lines += [
        f"gate {gate}: {'pass' if not found else f'FAIL ({len(found)})'}"
        for gate, found in findings.items()
    ]
    lines.append(f"{len(files)} files in {seconds:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m generator.release", description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="parent of <version>/")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root to package")
    parser.add_argument(
        "--no-image", dest="image", action="store_false", help="skip building the SCP image"
    )
    parser.add_argument(
        "--base-image", default="", help="BASE_IMAGE (default: Debian from packages, mmdebstrap)"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        spec = load(args.root / "config" / "product.yaml", args.root)
        files = bundle(spec, args.root)
        findings = run_gates(spec, files)
        if args.image:
            engine = image.require_engine()
            files, findings["image"] = with_image(spec, args.root, files, engine, args.base_image)
    except GeneratorError as exc:
        print(f"release failed: {exc}", file=sys.stderr)
        return 2
    failed = {gate: found for gate, found in findings.items() if found}
    for gate, found in failed.items():
        print(f"{gate}:", *found, sep="\n  ", file=sys.stderr)
    if not failed:
        write(args.out / spec.version, files)
    print(summary(files, findings, time.monotonic() - started))
    if failed:
        print(f"release failed: gates {sorted(failed)}; nothing written", file=sys.stderr)
        return 1
    print(f"wrote {args.out / spec.version}")
    return 0
