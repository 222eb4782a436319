"""Pure parts of the image build: apt's mirror as mmdebstrap gets it, the base's cache key, the
SBOM's reading of dpkg's database, the OCI archive's fixed bytes."""

from __future__ import annotations

import functools
import io
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from generator.errors import GeneratorError
from generator.release import image, oci, sbom

# deb822 as Debian bookworm installs it (sources.list(5), "DEB822-STYLE FORMAT")
DEB822 = """\
Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://mirror.example/old
Suites: bullseye
Components: main
"""


def test_debian_sources_from_deb822_and_one_line_files(tmp_path):
    (tmp_path / "debian.sources").write_text(DEB822)
    (tmp_path / "extra.list").write_text(
        "# comment\ndeb [arch=amd64] http://other.example/debian bookworm contrib\n"
    )
    (tmp_path / "disabled.list.disabled-by-farm").write_text("deb http://x bookworm main\n")
    assert image.debian_sources(paths=(tmp_path,)) == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://mirror.example/debian-security bookworm-security main",
        "deb http://other.example/debian bookworm contrib",
    ]


def test_no_mirror_for_the_suite_says_what_to_do(tmp_path):
    (tmp_path / "x.list").write_text("deb http://mirror.example/debian bullseye main\n")
    with pytest.raises(GeneratorError, match=r"no Debian bookworm entry.*BASE_IMAGE"):
        image.debian_sources(paths=(tmp_path,))


def test_base_key_follows_the_mirror_its_state_and_the_recipe():
    one, state = ["deb http://a bookworm main"], ["0" * 64]
    assert image.base_key(one, state) == image.base_key(list(one), list(state))
    assert image.base_key(one, state) != image.base_key(["deb http://b bookworm main"], state)
    assert image.base_key(one, state) != image.base_key(one, ["1" * 64])


@pytest.fixture
def mirror(tmp_path):
    """A Debian mirror's dists/ tree (the InRelease files apt reads) over HTTP on loopback."""
    (tmp_path / "debian" / "dists" / "bookworm").mkdir(parents=True)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tmp_path / "debian" / "dists" / "bookworm", f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_mirror_state_changes_when_the_mirror_publishes(mirror):
    folder, url = mirror
    sources = [f"deb {url}/debian bookworm main"]
    (folder / "InRelease").write_text("Date: Sat, 10 May 2025 09:00:00 UTC\n")
    before = image.mirror_state(sources)
    (folder / "InRelease").write_text("Date: Sat, 17 May 2025 09:00:00 UTC\n")
    assert image.mirror_state(sources) != before
    with pytest.raises(GeneratorError, match=r"cannot read .*/dists/bookworm-updates/InRelease"):
        image.mirror_state([f"deb {url}/debian bookworm-updates main"])


def test_dpkg_status_lists_installed_packages_only():
    status = (
        "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n"
        "Source: glibc\nVersion: 2.36-9+deb12u10\nDescription: GNU C Library\n more text\n\n"
        "Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n\n"
        "Package: tzdata\nStatus: install ok installed\nArchitecture: all\n"
        "Version: 2025b-0+deb12u1\n"
    )
    assert sbom.dpkg_packages(status) == [
        {"name": "libc6", "version": "2.36-9+deb12u10", "arch": "amd64", "source": "glibc"},
        {"name": "tzdata", "version": "2025b-0+deb12u1", "arch": "all", "source": "tzdata"},
    ]


def test_normalized_archive_depends_only_on_its_contents(tmp_path):
    def archive(path, mtime):
        with tarfile.open(path, "w") as tar:
            for name in ("index.json", "oci-layout"):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.uid = 2, mtime, 1000
                tar.addfile(info, io.BytesIO(b"{}"))
        return path

    first = oci.normalized(archive(tmp_path / "a.tar", 1), 7)
    assert first == oci.normalized(archive(tmp_path / "b.tar", 2), 7)
    assert first != oci.normalized(archive(tmp_path / "c.tar", 2), 8)
