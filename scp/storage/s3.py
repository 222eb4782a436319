"""S3 store: PutObject for ordinary instances, multipart (aborted on failure) for large ones."""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

from scp.contracts import S3_MULTIPART_THRESHOLD
from scp.storage import OwnedFolder, StorageError, check_free_space

LOG = logging.getLogger("scp.storage")
MAX_PARTS = 10000
PART_SIZE = 8 * 2**20  # memory per upload in flight; S3's minimum is 5 MiB
CHECK_KEY = ".storage-check/"  # under the prefix; only multipart uploads, aborted at once


def system_temp_dir() -> str:
    """Python's temporary folder (TMPDIR, else /tmp, /var/tmp, /usr/tmp, the working folder)."""
    try:
        return tempfile.gettempdir()
    except FileNotFoundError as exc:  # none of them writable: a read-only root and no volume
        raise StorageError(
            f"no temporary folder this user can write ({exc.strerror}): set TEMP_DIR to a "
            "writable folder, e.g. a volume mounted there"
        ) from None


class S3Store:
    """Instances in s3://bucket/prefix. A successful return means S3 acknowledged the object."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str = "",
        temp_dir: str = "",
        multipart_threshold: int = S3_MULTIPART_THRESHOLD,
        client: Any = None,
        port: int = 0,
    ) -> None:
        self.bucket = bucket
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.multipart_threshold = multipart_threshold
        self._owned = OwnedFolder(temp_dir or system_temp_dir(), port)
        self._endpoint_url = endpoint_url
        self._client = client

    @property
    def client(self) -> Any:
        """The boto3 client, made on first use: a supervisor that only prepares the store
        never loads boto3, and each worker process makes its own after the fork."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            try:
                self._client = boto3.client(
                    "s3",
                    endpoint_url=self._endpoint_url or None,
                    config=Config(
                        retries={"mode": "standard", "max_attempts": 3},
                        connect_timeout=5,
                        read_timeout=60,
                        max_pool_connections=64,
                    ),
                )
            except ValueError as exc:  # botocore's word for a malformed AWS_* setting
                raise StorageError(f"cannot make an S3 client for {self}: {exc}") from None
        return self._client

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def temp_dir(self) -> str:
        return self._owned.path

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self._prefix}"

    def prepare(self) -> None:
        self._owned.claim()

    def connect(self) -> None:
        try:
            self.client  # noqa: B018 - made now, not on the first instance
        except (BotoCoreError, StorageError) as exc:  # no credentials yet: the check says so
            error = explain(exc, str(self)) if isinstance(exc, BotoCoreError) else str(exc)
            LOG.warning("no S3 client yet", extra={"fields": {"error": error}})

    def check(self, min_free_disk: int) -> None:
        """Start a multipart upload and abort it: initiating one needs s3:PutObject (Amazon S3
        User Guide, "Multipart upload API and permissions") and, on an SSE-KMS bucket,
        kms:GenerateDataKey (AWS Knowledge Center, "s3-large-file-encryption-kms-key"), yet no
        object or object version is ever created, so a versioned bucket keeps no trace. An abort
        that fails is cleaned up by the bucket's AbortIncompleteMultipartUpload lifecycle rule."""
        check_free_space(self.temp_dir, min_free_disk)
        key = f"{self._prefix}{CHECK_KEY}{socket.gethostname()}-{os.getpid()}"
        try:
            upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(explain(exc, f"s3://{self.bucket}/{self._prefix}")) from None

    def put_file(self, key: str, path: str, size: int) -> None:
        full = self._prefix + key
        try:
            if size >= self.multipart_threshold:
                self._multipart(full, path, size)
            else:
                with open(path, "rb") as body:
                    self.client.put_object(
                        Bucket=self.bucket,
                        Key=full,
                        Body=body,
                        ContentLength=size,
                        ContentType="application/dicom",
                    )
        except (BotoCoreError, ClientError, OSError) as exc:
            raise StorageError(f"cannot store s3://{self.bucket}/{full}: {exc}") from None

    def put_json(self, key: str, document: dict[str, Any]) -> None:
        full = self._prefix + key
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=full,
                Body=json.dumps(document, indent=1).encode(),
                ContentType="application/json",
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot store s3://{self.bucket}/{full}: {exc}") from None

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._prefix + key)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"cannot delete s3://{self.bucket}/{key}: {exc}") from None

    def _multipart(self, key: str, path: str, size: int) -> None:
        part_size = max(PART_SIZE, -(-size // MAX_PARTS))
        upload_id = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType="application/dicom"
        )["UploadId"]
        try:
            parts = []
            with open(path, "rb") as fp:
                number = 1
                while chunk := fp.read(part_size):
                    etag = self.client.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=chunk,
                    )["ETag"]
                    parts.append({"PartNumber": number, "ETag": etag})
                    number += 1
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except (BotoCoreError, ClientError) as exc:
                LOG.warning(
                    "abort of a failed multipart upload failed; the bucket's lifecycle "
                    "rule removes it",
                    extra={"fields": {"key": key, "error": str(exc)}},
                )
            raise


def explain(exc: BotoCoreError | ClientError, where: str) -> str:
    """What an S3 error means for the operator, in one sentence."""
    if isinstance(exc, NoCredentialsError):
        return (
            f"no AWS credentials to write to {where}: run the task with its role (the template "
            "gives it one), or set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach S3 for {where} ({exc}); check the network route or S3_ENDPOINT_URL"
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            return f"{where}: the bucket does not exist; check STORAGE"
        if code in ("AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "ExpiredToken"):
            return (
                f"{where}: {code}; the credentials in use need s3:PutObject and "
                "s3:AbortMultipartUpload there (and the bucket's KMS key)"
            )
    return f"{where}: {exc}"
