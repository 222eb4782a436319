"""S3 store: PutObject for ordinary instances, multipart (aborted on failure) for large ones."""

from __future__ import annotations

import json
import logging
import tempfile
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from scp.contracts import S3_MULTIPART_THRESHOLD
from scp.storage import OwnedFolder, StorageError

LOG = logging.getLogger("scp.storage")
MAX_PARTS = 10000
PART_SIZE = 8 * 2**20  # memory per upload in flight; S3's minimum is 5 MiB


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
        self.client  # noqa: B018 - made now, not on the first instance

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
