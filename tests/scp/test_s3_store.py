"""The S3 store against moto in server mode: layout, multipart, and S3 outages."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import jsonschema
import pytest
from botocore.exceptions import ClientError
from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage

from scp.app import run
from scp.listener import StartupError
from scp.settings import load_settings
from scp.storage import StorageError
from scp.storage import s3 as s3_store
from scp.storage.s3 import S3Store
from tests.scp.conftest import MANIFEST_SCHEMA
from tests.scp.test_transfer import storescu
from tests.support.aws import moto_server
from tests.support.dicom_files import dataset_bytes, make_dataset, uid, write_part10


def make_bucket(moto, name: str):
    s3 = moto.client("s3")
    s3.create_bucket(Bucket=name)
    return s3


def objects(s3, bucket: str, prefix: str = "") -> dict[str, int]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}


def test_instances_and_manifest_land_where_the_contract_says(start_scp, moto, instances):
    s3 = make_bucket(moto, "layout")
    scp = start_scp(storage="s3://layout/site-a/", s3_endpoint_url=moto.endpoint)
    names = ["explicit", "jpeg-lossless", "sc"]
    assert storescu(scp.port, *(str(instances[n]) for n in names), flags=("-xs",)).returncode == 0
    scp.terminate()
    keys = objects(s3, "layout")
    (manifest_key,) = [k for k in keys if k.startswith("site-a/batches/")]
    doc = json.loads(s3.get_object(Bucket="layout", Key=manifest_key)["Body"].read())
    jsonschema.validate(doc, MANIFEST_SCHEMA)
    assert doc["inputPrefix"] == f"site-a/incoming/{doc['batchId']}/"
    assert manifest_key == f"site-a/batches/{doc['batchId']}.json"
    instance_keys = {k for k in keys if k.startswith(doc["inputPrefix"])}
    assert instance_keys == {i["key"] for i in doc["instances"]}
    assert len(instance_keys) == doc["instanceCount"] == len(names)
    assert not [k for k in keys if k.startswith("site-a/open/")], "open marker left behind"
    for entry in doc["instances"]:
        body = s3.get_object(Bucket="layout", Key=entry["key"])["Body"].read()
        assert body[128:132] == b"DICM" and len(body) == entry["bytes"]


def test_large_instance_is_uploaded_in_parts(start_scp, moto, tmp_path):
    s3 = make_bucket(moto, "large")
    ds = make_dataset(
        study=uid("big"), series=uid("big", 1), sop=uid("big", 2), rows=2048, columns=3072
    )  # 12 MiB of pixels
    path = write_part10(ds, tmp_path / "large.dcm")
    scp = start_scp(
        storage="s3://large", s3_endpoint_url=moto.endpoint, s3_multipart_threshold=5 * 2**20
    )
    assert storescu(scp.port, str(path)).returncode == 0
    scp.terminate()
    (key,) = [k for k in objects(s3, "large") if k.endswith(".dcm")]
    head = s3.head_object(Bucket="large", Key=key)
    assert head["ETag"].strip('"').endswith("-2"), "not a multipart upload"
    body = s3.get_object(Bucket="large", Key=key)["Body"].read()
    stored = tmp_path / "stored.dcm"
    stored.write_bytes(body)
    assert dataset_bytes(stored) == dataset_bytes(path)


def test_failed_multipart_upload_is_aborted(moto, tmp_path):
    s3 = make_bucket(moto, "abort")
    store = S3Store("abort", endpoint_url=moto.endpoint, multipart_threshold=5 * 2**20)
    calls = {"n": 0}

    def fail_second_part(**_: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ClientError(
                {"Error": {"Code": "InternalError", "Message": "injected"}}, "UploadPart"
            )

    store.client.meta.events.register("before-call.s3.UploadPart", fail_second_part)
    src = tmp_path / "blob"
    src.write_bytes(b"\0" * (20 * 2**20))
    with pytest.raises(StorageError, match="injected"):
        store.put_file("incoming/x/a.dcm", str(src), src.stat().st_size)
    assert s3.list_multipart_uploads(Bucket="abort").get("Uploads", []) == []
    assert objects(s3, "abort") == {}


def test_the_store_writes_instances_and_documents_under_its_prefix(moto, tmp_path):
    s3 = make_bucket(moto, "prefixed")
    store = S3Store(
        "prefixed", "/site/", endpoint_url=moto.endpoint, temp_dir=str(tmp_path), port=7
    )
    assert (store.prefix, str(store)) == ("site/", "s3://prefixed/site/")
    assert store.temp_dir == str(tmp_path / ".storescp-tmp-7")
    assert S3Store("prefixed", "//").prefix == S3Store("prefixed").prefix == ""
    src = tmp_path / "a"
    src.write_bytes(b"instance")

    store.put_file("incoming/x/a.dcm", str(src), 8)
    store.put_json("batches/b.json", {"batchId": "b"})

    dicom = s3.get_object(Bucket="prefixed", Key="site/incoming/x/a.dcm")
    assert (dicom["Body"].read(), dicom["ContentType"]) == (b"instance", "application/dicom")
    manifest = s3.get_object(Bucket="prefixed", Key="site/batches/b.json")
    assert json.loads(manifest["Body"].read()) == {"batchId": "b"}
    assert manifest["ContentType"] == "application/json"
    store.delete("batches/b.json")
    assert objects(s3, "prefixed") == {"site/incoming/x/a.dcm": 8}


def uploaded_parts(store: S3Store) -> list[tuple[int, int]]:
    """(part number, size) of each UploadPart the store's client sends, in order."""
    sent: list[tuple[int, int]] = []
    store.client.meta.events.register(
        "provide-client-params.s3.UploadPart",
        lambda params, **_: sent.append((params["PartNumber"], len(params["Body"]))),
    )
    return sent


def test_an_instance_at_the_threshold_goes_in_parts_of_part_size(moto, tmp_path):
    s3 = make_bucket(moto, "parts")
    store = S3Store("parts", endpoint_url=moto.endpoint, multipart_threshold=9 * 2**20)
    sizes = uploaded_parts(store)
    src = tmp_path / "blob"
    src.write_bytes(bytes(range(256)) * (9 * 2**12))  # 9 MiB: the threshold itself

    store.put_file("incoming/x/a.dcm", str(src), src.stat().st_size)

    assert sizes == [(1, 8 * 2**20), (2, 2**20)]  # S3 numbers parts from 1
    assert s3.get_object(Bucket="parts", Key="incoming/x/a.dcm")["Body"].read() == (
        src.read_bytes()
    )


def test_parts_grow_so_that_an_instance_fits_in_s3s_part_count(moto, tmp_path, monkeypatch):
    """S3 takes at most 10,000 parts of 5 MiB to 5 GiB each ("Amazon S3 multipart upload
    limits", S3 user guide): past 80 GB the parts grow; here the count is made 2 to see it."""
    assert (s3_store.MAX_PARTS, s3_store.PART_SIZE) == (10_000, 8 * 2**20)
    monkeypatch.setattr(s3_store, "MAX_PARTS", 2)
    make_bucket(moto, "grow")
    store = S3Store("grow", endpoint_url=moto.endpoint, multipart_threshold=5 * 2**20)
    sizes = uploaded_parts(store)
    src = tmp_path / "blob"
    src.write_bytes(bytes(20 * 2**20 + 1))

    store.put_file("incoming/x/a.dcm", str(src), src.stat().st_size)

    assert sizes == [(1, 10 * 2**20 + 1), (2, 10 * 2**20)]


def test_storage_errors_name_the_object_and_a_failed_abort_is_logged(moto, tmp_path, caplog):
    store = S3Store("no-such-bucket", endpoint_url=moto.endpoint, multipart_threshold=5 * 2**20)
    with pytest.raises(StorageError, match=r"cannot store s3://no-such-bucket/batches/b\.json"):
        store.put_json("batches/b.json", {})
    with pytest.raises(StorageError, match=r"cannot delete s3://no-such-bucket/open/b\.json"):
        store.delete("open/b.json")
    with pytest.raises(StorageError, match=r"cannot store s3://no-such-bucket/incoming/gone"):
        store.put_file("incoming/gone", str(tmp_path / "gone"), 1)

    make_bucket(moto, "abort-fails")
    store = S3Store("abort-fails", endpoint_url=moto.endpoint, multipart_threshold=5 * 2**20)

    def fail(**_: object) -> None:
        raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "S3")

    store.client.meta.events.register("before-call.s3.UploadPart", fail)
    store.client.meta.events.register("before-call.s3.AbortMultipartUpload", fail)
    src = tmp_path / "blob"
    src.write_bytes(bytes(6 * 2**20))
    with (
        caplog.at_level("WARNING", logger="scp.storage"),
        pytest.raises(StorageError, match="injected"),
    ):
        store.put_file("incoming/x/a.dcm", str(src), src.stat().st_size)
    assert "abort of a failed multipart upload failed" in caplog.text


def test_s3_outage_gives_failure_status_and_every_acknowledged_instance_is_stored(
    start_scp, tmp_path, monkeypatch
):
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    files = [
        write_part10(
            make_dataset(study=uid("out"), series=uid("out", 1), sop=uid("out", i), seed=i),
            tmp_path / f"{i}.dcm",
        )
        for i in range(6)
    ]
    with moto_server() as moto:
        s3 = make_bucket(moto, "outage")
        scp = start_scp(storage="s3://outage", s3_endpoint_url=moto.endpoint)
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="STORESCP")
        statuses = [assoc.send_c_store(str(f)).Status for f in files[:3]]
        moto.stop()  # S3 unreachable
        statuses += [assoc.send_c_store(str(f)).Status for f in files[3:]]
        assoc.release()
        assert statuses[:3] == [0x0000] * 3
        assert all(0xA700 <= s <= 0xA7FF or 0xC000 <= s <= 0xCFFF for s in statuses[3:]), [
            hex(s) for s in statuses
        ]
        moto.server.start()  # S3 back; the in-process backend kept its objects
        stored = {Path(k).stem for k in objects(s3, "outage", "incoming/")}
        acked = {uid("out", i) for i, s in enumerate(statuses) if s == 0}
        assert acked <= stored, "an acknowledged instance is missing"
        refused = [line for line in scp.log_lines() if line.get("event") == "store-failed"]
        assert len(refused) == 3 and all(r["status"] == "0xA700" for r in refused)


def test_no_writable_temporary_folder_is_refused_with_what_to_set(monkeypatch, tmp_path):
    """GIVEN no TEMP_DIR and none of Python's temporary folders usable (a read-only root with no
    volume there, as on Fargate) THEN the SCP does not start and says what to set."""
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.setattr(tempfile, "_candidate_tempdir_list", lambda: [str(tmp_path / "none")])
    with pytest.raises(StorageError, match=r"no temporary folder this user can write.*TEMP_DIR"):
        S3Store("bucket")
    with pytest.raises(StartupError, match=r"^STORAGE: no temporary folder .*set TEMP_DIR"):
        run(load_settings(["--storage", "s3://bucket/"], environ={}))
