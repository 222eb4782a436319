"""Orthanc 1.10 (Debian `orthanc`) as a modality that sends to our SCP and asks it for storage
commitment through its REST API (`POST /modalities/{id}/storage-commitment`), then receives the
report on a new association and shows it at `GET /storage-commitment/{id}` (Orthanc Book,
"DICOM storage commitment"). Loopback only, free ports, stopped by `stop()`."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.net import free_port, wait_for_port

ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"


class OrthancModality:
    """An Orthanc with AE title `ae_title` that knows our SCP as modality `scp`."""

    def __init__(self, folder: Path, scp_port: int, ae_title: str = "ORTHANC") -> None:
        self.folder = folder
        self.ae_title = ae_title
        self.http_port, self.dicom_port = free_port(), free_port()
        self.scp_port = scp_port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, scp_ae_title: str = "STORESCP") -> OrthancModality:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "modality",
            "StorageDirectory": str(self.folder / "db"),
            "IndexDirectory": str(self.folder / "db"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.ae_title,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": [],
            "DicomModalities": {"scp": [scp_ae_title, "127.0.0.1", self.scp_port]},
        }
        path = self.folder / "orthanc.json"
        path.write_text(json.dumps(config))
        with (self.folder / "orthanc.log").open("ab") as log:
            self.proc = subprocess.Popen([ORTHANC, str(path)], stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.http_port, timeout=30)
        wait_for_port(self.dicom_port, timeout=30)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def rest(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}", data=data, method=method
        )
        with urllib.request.urlopen(request, timeout=60) as rsp:
            return json.load(rsp)

    def upload(self, path: Path) -> str:
        """Put a file into Orthanc; its Orthanc id."""
        return self.rest("POST", "/instances", raw=path.read_bytes())["ID"]

    def send(self, ids: list[str]) -> None:
        """C-STORE them to our SCP (synchronously)."""
        self.rest("POST", "/modalities/scp/store", {"Resources": ids, "Synchronous": True})

    def ask_commitment(self, instances: list[tuple[str, str]]) -> str:
        """N-ACTION for (SOP Class, SOP Instance) pairs; the transaction's report path."""
        body = {
            "DicomInstances": [
                {"SOPClassUID": sop_class, "SOPInstanceUID": sop_instance}
                for sop_class, sop_instance in instances
            ]
        }
        return self.rest("POST", "/modalities/scp/storage-commitment", body)["Path"]

    def report(self, path: str, timeout: float = 20.0) -> dict[str, Any]:
        """The report once it is no longer pending."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                report = self.rest("GET", path)
            except urllib.error.HTTPError:
                report = {"Status": "Pending"}
            if report.get("Status") != "Pending" or time.monotonic() > deadline:
                return report
            time.sleep(0.2)

    def __enter__(self) -> OrthancModality:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
