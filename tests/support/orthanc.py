"""A real DICOMweb server for tests: Orthanc (Debian `orthanc`) with its DICOMweb plugin (Debian
`orthanc-dicomweb`) on free loopback ports, with its own temporary storage, stopped on exit."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.net import free_port

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
DICOMWEB_ROOT = "/dicom-web"


def orthanc_available() -> bool:
    """Orthanc and its DICOMweb plugin are installed (Makefile APT_PACKAGES)."""
    return shutil.which("Orthanc") is not None and DICOMWEB_PLUGIN.exists()


@dataclass
class Orthanc:
    """A running Orthanc: its REST root and its DICOMweb root."""

    http_port: int
    dicom_port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return self.url + DICOMWEB_ROOT

    def get_json(self, path: str) -> object:
        with urllib.request.urlopen(self.url + path, timeout=10) as rsp:
            return json.load(rsp)

    def store(self, data: bytes) -> None:
        """Store one DICOM P10 file through Orthanc's REST API (POST /instances)."""
        request = urllib.request.Request(self.url + "/instances", data=data, method="POST")
        with urllib.request.urlopen(request, timeout=30):
            pass

    def instance_count(self) -> int:
        return int(self.get_json("/statistics")["CountInstances"])  # type: ignore[index]


@contextmanager
def orthanc(workdir: Path, timeout: float = 30.0) -> Iterator[Orthanc]:
    """Start Orthanc with DICOMweb in `workdir`; yield it once its REST API answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "dicomweb-test",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpBindAddress": "127.0.0.1",  # ignored by versions that predate it; loopback anyway
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": DICOMWEB_ROOT + "/", "StudiesMetadata": "Full"},
    }
    path = workdir / "orthanc.json"
    path.write_text(json.dumps(config, indent=2))
    log = (workdir / "orthanc.log").open("ab")
    process = subprocess.Popen(["Orthanc", str(path)], stdout=log, stderr=subprocess.STDOUT)
    server = Orthanc(http_port, dicom_port, process)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {process.returncode}; see {log.name}")
            try:
                server.get_json("/system")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"Orthanc not ready after {timeout}s") from None
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
