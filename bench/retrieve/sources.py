"""What the retrieve benchmark runs: the two Query/Retrieve SCPs serving the same study (ours,
answering from HealthImaging's DICOMweb stand-in, and dcmtk's dcmqrscp, from its own disk
database) and the dcmtk storescp that C-MOVE sends the study to."""

from __future__ import annotations

import shutil
import subprocess
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

from bench.datasets import Generated
from bench.errors import BenchError
from bench.servers import AE_TITLE, Ours, Server, dicomweb_standin, files_under
from tests.support.relay import Relay

DESTINATION = "DEST"  # the Move Destination's AE title (dcmtk storescp)
CALLING = "BENCH"  # movescu's and getscu's own AE title


class Destination(Server):
    """dcmtk storescp as the Move Destination, writing what it receives under `out`."""

    name = "storescp"

    @property
    def out(self) -> Path:
        return self.workdir / "out"

    def command(self) -> list[str]:
        self.out.mkdir(parents=True, exist_ok=True)
        return ["storescp", "-aet", DESTINATION, "-od", str(self.out), str(self.port)]

    def stored(self) -> tuple[int, int]:
        return files_under(self.out)


class OursQR(Ours):
    """Our SCP answering Query/Retrieve from HealthImaging's DICOMweb at `dicomweb` (the
    SigV4-verifying proxy in front of Orthanc), with the Move Destination and the benchmark's
    calling AE in REMOTE_AES. With `rtt_ms`, `dicomweb` is reached through a relay adding that
    round trip (named ours+{rtt_ms}ms)."""

    def __init__(
        self,
        workdir: Path,
        port: int,
        log: Path,
        dicomweb: str,
        destination_port: int,
        rtt_ms: int = 0,
    ) -> None:
        self.dicomweb, self.destination_port, self.rtt_ms = dicomweb, destination_port, rtt_ms
        self.name = f"ours+{rtt_ms}ms" if rtt_ms else "ours"
        super().__init__(workdir, port, log)

    def settings(self) -> dict[str, str]:
        from tests.fakes.dicomweb_proxy import scp_settings

        return {
            **scp_settings(self.dicomweb),
            "remote_aes": f"{CALLING}=127.0.0.1:1:query+retrieve,"
            f"{DESTINATION}=127.0.0.1:{self.destination_port}:store",
        }


class Dcmqrscp(Server):
    """dcmtk's dcmqrscp serving `study` from a database under `workdir` (the files copied there
    and registered with dcmqridx), the Move Destination in its host table. It forks a child per
    association, as deployed (dcmqrscp 3.6.7's --single-process crashes after the first one)."""

    name = "dcmqrscp"

    def __init__(
        self, workdir: Path, port: int, log: Path, study: Generated, destination_port: int
    ) -> None:
        super().__init__(workdir, port, log, ["--disable-host-lookup"])
        self.study, self.destination_port = study, destination_port

    def command(self) -> list[str]:
        database = self.workdir / "db"
        # dcmqrcnf.txt (dcmtk): HostTable entries are `name = (AE title, host, port)`;
        # AETable rows `AE title, storage area, access, (max studies, max bytes per study), peers`.
        config = self.workdir / "dcmqrscp.cfg"
        config.write_text(
            f"NetworkTCPPort = {self.port}\n"
            "MaxPDUSize = 16384\n"
            "MaxAssociations = 16\n"
            "HostTable BEGIN\n"
            f"destination = ({DESTINATION}, 127.0.0.1, {self.destination_port})\n"
            "HostTable END\n"
            "VendorTable BEGIN\n"
            "VendorTable END\n"
            "AETable BEGIN\n"
            f"{AE_TITLE} {database} R (10, 4096mb) ANY\n"
            "AETable END\n"
        )
        return ["dcmqrscp", "-c", str(config), *self.extra_args]

    def start(self) -> None:
        database = self.workdir / "db"
        database.mkdir(parents=True, exist_ok=True)
        copies = []
        for path in self.study.files:
            copies.append(database / path.name)
            shutil.copyfile(path, copies[-1])
        done = subprocess.run(
            ["dcmqridx", str(database), *map(str, copies)], capture_output=True, text=True
        )
        if done.returncode:
            raise BenchError(f"dcmqridx could not index the study: {done.stderr.strip()}")
        super().start()

    def stored(self) -> tuple[int, int]:
        return files_under(self.workdir / "db", "*.dcm")


def delayed(stack: ExitStack, endpoint: str, rtt_ms: int) -> str:
    """`endpoint` behind a userspace relay (tests/support/relay.py) that adds `rtt_ms` to each
    round trip, stopped with `stack`; the relay's endpoint."""
    relay = stack.enter_context(Relay(urlsplit(endpoint).port or 80, rtt=rtt_ms / 1000))
    return f"http://127.0.0.1:{relay.port}"


def load_orthanc(stack: ExitStack, root: Path, study: Generated) -> str:
    """Start HealthImaging's stand-in under `root`, store `study` in it through Orthanc's REST
    API, and return the proxy's endpoint (what DICOMWEB_ENDPOINT_URL is set to)."""
    server, endpoint = dicomweb_standin(stack, root)
    for path in study.files:
        server.store(path.read_bytes())
    if (count := server.instance_count()) != study.count:
        raise BenchError(f"Orthanc holds {count} instances after loading {study.count}")
    return endpoint
