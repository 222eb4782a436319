"""The services registry (scp/services.py): the AE accepts exactly what the services declare,
each event has one handler, and the permission gate refuses a calling AE the registry of remote
AEs does not allow (0x0124), on a live server in this process."""

from __future__ import annotations

from pathlib import Path

import pytest
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage, StorageCommitmentPushModel, Verification

from scp.server import build_ae, start_dicom_server
from scp.service import StoreService
from scp.services import Service, Services, VerificationService, build_services, service_classes
from scp.settings import Settings, load_settings
from scp.storage import open_store
from scp.telemetry import Metrics
from tests.support.dicom_files import make_dataset, uid, write_part10
from tests.support.net import free_port


def settings_for(tmp_path: Path, remote_aes: str = "", **values: object) -> Settings:
    flags = ["--storage", str(tmp_path / "store"), "--bind", "127.0.0.1"]
    flags += ["--port", str(free_port()), "--min-free-disk", "0", "--remote-aes", remote_aes]
    for name, value in values.items():
        flags += ["--" + name.replace("_", "-"), str(value)]
    return load_settings(flags, {})


def test_the_ae_accepts_exactly_what_the_services_declare(tmp_path) -> None:
    settings = settings_for(tmp_path)
    declared = {cx.abstract_syntax for s in service_classes() for cx in s.contexts(settings)}
    supported = {str(cx.abstract_syntax) for cx in build_ae(settings).supported_contexts}
    assert supported == declared
    assert {Verification, CTImageStorage, StorageCommitmentPushModel} <= supported


def test_storage_commitment_is_offered_with_s3_only_with_the_job_table(tmp_path) -> None:
    names = {
        str(cx.abstract_syntax)
        for cx in build_ae(settings_for(tmp_path, storage="s3://bucket/")).supported_contexts
    }
    assert StorageCommitmentPushModel not in names
    with_table = settings_for(tmp_path, storage="s3://bucket/", job_table="jobs")
    assert StorageCommitmentPushModel in {
        str(cx.abstract_syntax) for cx in build_ae(with_table).supported_contexts
    }


def test_two_services_may_not_handle_one_event(tmp_path) -> None:
    class Echo(Service):
        name = "Another echo"

        def handlers(self):
            return [(evt.EVT_C_ECHO, lambda event: 0)]

    services = Services([VerificationService(), Echo()], settings_for(tmp_path))
    with pytest.raises(ValueError, match="EVT_C_ECHO is already handled"):
        services.handlers()


@pytest.mark.parametrize(
    ("calling", "status"),
    [("CT1", 0x0000), ("REPORTS", 0x0124), ("UNLISTED", 0x0000)],
)
def test_the_registry_decides_who_may_store(tmp_path, calling: str, status: int) -> None:
    """CT1 may store; REPORTS is registered for commitment only; AEs not listed may store."""
    remote = "CT1=127.0.0.1:104:store+commitment,REPORTS=127.0.0.1:105:commitment"
    settings = settings_for(tmp_path, remote)
    store = open_store(settings.storage)
    store.prepare()
    service = StoreService(settings, store, Metrics("Test")).start()
    services = build_services(settings, service.on_store, Metrics("Test"))
    server = start_dicom_server(
        build_ae(settings), settings, service, store.temp_dir, services=services
    )
    ds = make_dataset(study=uid("gate"), series=uid("gate", 1), sop=uid("gate", calling))
    path = write_part10(ds, tmp_path / "gate.dcm")
    try:
        ae = AE(ae_title=calling)
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate("127.0.0.1", settings.port, ae_title="STORESCP")
        assert assoc.send_c_store(str(path)).Status == status
        assoc.release()
    finally:
        server.shutdown()
        service.finish_all(5)
    stored = list((tmp_path / "store" / "incoming").rglob("*.dcm"))
    assert len(stored) == (1 if status == 0 else 0)
