"""The WAN benchmark's parts: the delaying relay adds the round trip it is given (and refuses on
demand), and the report turns runs into the table and the 2,000-slice study."""

from __future__ import annotations

import socket
import threading
import time

from bench.wan import WanRun, render
from tests.support.relay import Relay


def _echo_server() -> socket.socket:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    return server


def _round_trip(port: int) -> float:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        times = []
        for _ in range(3):
            started = time.monotonic()
            sock.sendall(b"x" * 64)
            got = b""
            while len(got) < 64:
                got += sock.recv(64)
            times.append(time.monotonic() - started)
        return min(times)


def test_the_relay_adds_the_round_trip_and_the_response_wait_then_refuses():
    with _echo_server() as server:
        target = server.getsockname()[1]
        with Relay(target, rtt=0.04) as relay:
            assert 0.04 <= _round_trip(relay.port) < 0.04 + 0.03
        with Relay(target, rtt=0.02, response_wait=0.03) as relay:
            assert 0.05 <= _round_trip(relay.port) < 0.05 + 0.03
            relay.refuse()
            with socket.create_connection(("127.0.0.1", relay.port)) as sock:
                sock.settimeout(5)
                assert sock.recv(1) == b""  # cut at once


def test_the_report_compares_cloud_and_edge_and_translates_a_study():
    runs = [
        WanRun("cloud", "ct", 1, 30, 100, 52_000_000, 10.0),
        WanRun("edge", "ct", 1, 30, 100, 52_000_000, 2.0, drain_seconds=4.0),
    ]
    report = render(runs, 0.03)
    assert "| ct | 1 | 30 | 10.0 | 5.2 | 50.0 | 26.0 | 25.0 | 13.0 |" in report
    assert "- 30 ms: the modality is busy 3.3 min (cloud SCP)" in report
    assert "0.7 min with the edge SCP; the forwarder then needs 1.3 min" in report
