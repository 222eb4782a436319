"""A moto server in server mode on 127.0.0.1, for tests that talk to AWS over real HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
from moto.server import ThreadedMotoServer

from tests.support.net import free_port, wait_for_port

REGION = "us-east-1"

# Fake credentials: every client in the tests (and every subprocess they start) uses these.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


@dataclass
class MotoServer:
    """A running moto server and how to reach it."""

    server: ThreadedMotoServer
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str):
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION)

    def stop(self) -> None:
        self.server.stop()


@contextmanager
def moto_server(port: int | None = None) -> Iterator[MotoServer]:
    """Start a moto server on a free (or given) loopback port; stop it on exit."""
    os.environ.update(FAKE_AWS_ENV)
    port = port or free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    wait_for_port(port)
    try:
        yield MotoServer(server, port)
    finally:
        server.stop()
