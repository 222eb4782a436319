"""Fixtures for tests that need HealthImaging's DICOMweb (tests/conftest.py offers them to every
package): Orthanc with DICOMweb behind the SigV4-verifying HealthImaging proxy
(tests/fakes/dicomweb_proxy.py), one per test module, and a client signed with the test
credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scp.healthimaging.client import DicomWebClient, RetryPolicy
from tests.fakes.dicomweb_proxy import DATASTORE_ID, KNOWN, DicomWebProxy
from tests.support.aws import REGION
from tests.support.orthanc import Orthanc, orthanc, orthanc_available

needs_orthanc = pytest.mark.skipif(
    not orthanc_available(), reason="Orthanc and orthanc-dicomweb (make system-deps)"
)


@pytest.fixture(scope="module")
def orthanc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    with orthanc(Path(tmp_path_factory.mktemp("orthanc"))) as server:
        yield server


@pytest.fixture(scope="module")
def running_proxy(orthanc_server: Orthanc) -> Iterator[DicomWebProxy]:
    with DicomWebProxy(orthanc_server.dicomweb) as running:
        yield running


@pytest.fixture
def proxy(running_proxy: DicomWebProxy) -> DicomWebProxy:
    """The module's proxy with no faults and no requests seen yet."""
    running_proxy.reset()
    return running_proxy


def client_for(proxy: DicomWebProxy, budget: float = 5.0) -> DicomWebClient:
    return DicomWebClient(
        REGION,
        DATASTORE_ID,
        lambda: KNOWN,
        endpoint_url=proxy.endpoint,
        policy=RetryPolicy(budget=budget, first_delay=0.2, max_delay=1.0),
    )
