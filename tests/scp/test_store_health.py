"""Healthy means able to store: /health is 503 with the reason until the store takes an object,
and the proof leaves nothing behind."""

from __future__ import annotations

import time

from tests.scp.test_s3_store import make_bucket, objects
from tests.scp.test_transfer import storescu

NO_CREDENTIALS = {  # nothing in the chain: no keys, no files, no instance metadata
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
    "AWS_SESSION_TOKEN": "",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def wait_for_status(scp, status: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, body = scp.health()
        if body.get("status") == status:
            assert code == (200 if status == "ok" else 503)
            return body
        time.sleep(0.1)
    raise AssertionError(f"/health never said {status}: {scp.health()}\n{scp.tail()}")


def test_an_scp_without_credentials_is_unhealthy_and_says_why(start_scp, moto, instances):
    make_bucket(moto, "no-credentials")
    scp = start_scp(
        storage="s3://no-credentials/site",
        s3_endpoint_url=moto.endpoint,
        env=NO_CREDENTIALS,
        healthy=False,
    )
    body = wait_for_status(scp, "unhealthy")
    assert body["reason"] == (
        "cannot store: no AWS credentials to write to s3://no-credentials/site/: run the task "
        "with its role (the template gives it one), or set AWS_PROFILE or "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    )
    # It still answers C-STOREs, with a failure status (the load balancer routes elsewhere).
    assert storescu(scp.port, str(instances["explicit"])).returncode != 0
    events = [x["event"] for x in scp.log_lines() if x.get("event", "").startswith("storage-")]
    assert events == ["storage-unavailable"]  # logged once, not every check


def test_health_turns_ok_once_the_bucket_answers_and_the_proof_leaves_nothing(start_scp, moto):
    scp = start_scp(
        storage="s3://late-bucket/p/",
        s3_endpoint_url=moto.endpoint,
        storage_check_interval=0.3,
        healthy=False,
    )
    body = wait_for_status(scp, "unhealthy")
    assert body["reason"] == (
        "cannot store: s3://late-bucket/p/: the bucket does not exist; check STORAGE"
    )
    s3 = make_bucket(moto, "late-bucket")
    s3.put_bucket_versioning(Bucket="late-bucket", VersioningConfiguration={"Status": "Enabled"})
    wait_for_status(scp, "ok")
    time.sleep(1)  # a few more proofs
    assert objects(s3, "late-bucket") == {}
    assert "Versions" not in s3.list_object_versions(Bucket="late-bucket")
    assert "Uploads" not in s3.list_multipart_uploads(Bucket="late-bucket")
    events = [x["event"] for x in scp.log_lines() if x.get("event", "").startswith("storage-")]
    assert events == ["storage-unavailable", "storage-available"]


def test_a_folder_below_the_free_space_floor_is_unhealthy(start_scp, tmp_path):
    scp = start_scp(min_free_disk="1PiB", workers=2, healthy=False)
    body = wait_for_status(scp, "unhealthy")
    store = tmp_path / "store"
    assert body["reason"].startswith(f"cannot store: '{store}' has ")
    assert body["reason"].endswith(
        "free, below MIN_FREE_DISK (1 PiB); free space there or lower MIN_FREE_DISK"
    )
    assert [p.name for p in store.rglob("*") if "storage-check" in p.name] == []
