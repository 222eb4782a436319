"""Batches written as the SCP writes them (docs/CONTRACTS.md storage layout), for tests/lambdas."""

from __future__ import annotations

import io
import json
import uuid

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

OPENED_AT = "2026-01-02T03:04:05Z"


def part10(study: str, series: str, sop: str) -> bytes:
    """A small CT instance as a DICOM Part 10 file."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.Modality = "CT"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def batch_id() -> str:
    return f"20260102T030405Z-{uuid.uuid4().hex[:12]}"


def manifest_for(bid: str, study: str, instances: list[dict], prefix: str = "") -> dict:
    """A manifest following config/batch-manifest.schema.json."""
    series = list(dict.fromkeys(i["seriesInstanceUID"] for i in instances))
    return {
        "schemaVersion": 1,
        "batchId": bid,
        "inputPrefix": f"{prefix}incoming/{bid}/",
        "instanceCount": len(instances),
        "totalBytes": sum(i["bytes"] for i in instances),
        "callingAETitle": "MODALITY",
        "calledAETitle": "STORESCP",
        "studyInstanceUID": study,
        "studyDate": "20260102",
        "seriesInstanceUIDs": series,
        "instances": instances,
        "openedAt": OPENED_AT,
        "closedAt": "2026-01-02T03:05:00Z",
        "closeReason": "released",
        "producer": "tests",
    }


def store_instances(s3, bucket: str, bid: str, count: int, series_count: int = 1, prefix: str = ""):
    """Store `count` instances of one new study under incoming/{bid}/; return (study, instances)."""
    study = generate_uid()
    series = [generate_uid() for _ in range(series_count)]
    instances = []
    for n in range(count):
        sop, ser = generate_uid(), series[n % series_count]
        key = f"{prefix}incoming/{bid}/{study}/{ser}/{sop}.dcm"
        body = part10(study, ser, sop)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        instances.append(
            {
                "key": key,
                "sopInstanceUID": sop,
                "seriesInstanceUID": ser,
                "bytes": len(body),
                "sopClassUID": CTImageStorage,
                "transferSyntaxUID": ExplicitVRLittleEndian,
            }
        )
    return study, instances


def write_batch(s3, bucket: str, count: int = 3, series_count: int = 1, prefix: str = "") -> dict:
    """Store a batch's instances, then its manifest (last, as the SCP does); return the manifest."""
    bid = batch_id()
    study, instances = store_instances(s3, bucket, bid, count, series_count, prefix)
    manifest = manifest_for(bid, study, instances, prefix)
    s3.put_object(
        Bucket=bucket, Key=f"{prefix}batches/{bid}.json", Body=json.dumps(manifest).encode()
    )
    return manifest


def write_open_marker(s3, bucket: str, bid: str, study: str, prefix: str = "") -> None:
    marker = {
        "schemaVersion": 1,
        "batchId": bid,
        "inputPrefix": f"{prefix}incoming/{bid}/",
        "callingAETitle": "MODALITY",
        "calledAETitle": "STORESCP",
        "studyInstanceUID": study,
        "studyDate": "20260102",
        "openedAt": OPENED_AT,
    }
    s3.put_object(Bucket=bucket, Key=f"{prefix}open/{bid}.json", Body=json.dumps(marker).encode())
