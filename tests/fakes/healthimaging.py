"""A HealthImaging fake: StartDICOMImportJob and GetDICOMImportJob over HTTP, importing from S3.

It speaks the service's REST-JSON protocol on 127.0.0.1, so the product's own boto3 client reaches
it through AWS_ENDPOINT_URL_MEDICAL_IMAGING. Every request is checked against the botocore service
model (required members, types) and against the model's documented constraints, which botocore
itself does not check (patterns, lengths). A job moves SUBMITTED -> IN_PROGRESS -> COMPLETED (or
FAILED) on successive GetDICOMImportJob calls; on completion it reads the input prefix from S3,
parses each file with pydicom and writes job-output-manifest.json and SUCCESS/FAILURE ndjson under
{outputS3Uri}{datastoreId}-DicomImport-{jobId}/ as the service does.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import botocore.session
import pydicom
from botocore.validate import ParamValidator

from tests.support.net import free_port

DATASTORE_ID = "0123456789abcdef0123456789abcdef"
MODEL = botocore.session.get_session().get_service_model("medical-imaging")
START = re.compile(r"/startDICOMImportJob/datastore/(?P<datastoreId>[^/]+)")
GET = re.compile(r"/getDICOMImportJob/datastore/(?P<datastoreId>[^/]+)/job/(?P<jobId>[^/]+)")


class ServiceError(Exception):
    """An error response: HTTP status, error code, message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


def request_problems(operation: str, params: dict) -> list[str]:
    """What is wrong with a request per the botocore model, including patterns and lengths."""
    shape = MODEL.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    problems = [report.generate_report()] if report.has_errors() else []
    for name, member in shape.members.items():
        value = params.get(name)
        if not isinstance(value, str):
            continue
        meta = member.metadata
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            problems.append(f"{name} does not match {meta['pattern']}")
        if not meta.get("min", 0) <= len(value) <= meta.get("max", len(value)):
            problems.append(
                f"{name} length {len(value)} outside {meta.get('min')}..{meta.get('max')}"
            )
    return problems


def image_set_id(study: str, series: str) -> str:
    """The fake groups instances into one image set per series (ids look like the service's)."""
    return hashlib.md5(f"{study}/{series}".encode()).hexdigest()


@dataclass
class Job:
    """One import job and its request."""

    request: dict
    job_id: str
    status: str = "SUBMITTED"
    submitted_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    message: str = ""


class FakeHealthImaging:
    """The fake service. Tell it to throttle, fail jobs or fail files through its attributes."""

    def __init__(self, s3_endpoint: str, datastore_id: str = DATASTORE_ID):
        self.datastore_id = datastore_id
        self.s3 = boto3.client("s3", endpoint_url=s3_endpoint)
        self.jobs: dict[str, Job] = {}
        self.requests: list[tuple[str, dict]] = []
        self.throttle_starts = 0  # answer the next N StartDICOMImportJob calls with a throttle
        self.fail_jobs = False  # jobs end FAILED, without output files
        self.failing_sops: set[str] = set()  # these SOP instances land in failure.ndjson
        self.lock = threading.Lock()
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeHealthImaging:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def start_job(self, params: dict) -> dict:
        self._check("StartDICOMImportJob", params)
        if self.throttle_starts > 0:
            self.throttle_starts -= 1
            raise ServiceError(429, "ThrottlingException", "Rate exceeded (fake told to throttle)")
        token = params["clientToken"]
        existing = next(
            (job for job in self.jobs.values() if job.request["clientToken"] == token), None
        )
        if existing and existing.request != params:
            raise ServiceError(409, "ConflictException", "clientToken reused with other parameters")
        job = existing or Job(params, uuid.uuid4().hex)
        self.jobs[job.job_id] = job
        return {
            "datastoreId": self.datastore_id,
            "jobId": job.job_id,
            "jobStatus": job.status,
            "submittedAt": job.submitted_at,
        }

    def get_job(self, params: dict) -> dict:
        self._check("GetDICOMImportJob", params)
        job = self.jobs.get(params["jobId"])
        if job is None:
            raise ServiceError(404, "ResourceNotFoundException", f"no import job {params['jobId']}")
        if job.status == "SUBMITTED":
            job.status = "IN_PROGRESS"
        elif job.status == "IN_PROGRESS":
            self._run(job)
        request = job.request
        properties = {
            "jobId": job.job_id,
            "jobName": request.get("jobName", ""),
            "jobStatus": job.status,
            "datastoreId": self.datastore_id,
            "dataAccessRoleArn": request["dataAccessRoleArn"],
            "submittedAt": job.submitted_at,
            "inputS3Uri": request["inputS3Uri"],
            "outputS3Uri": request["outputS3Uri"],
        }
        if job.ended_at:
            properties.update(endedAt=job.ended_at, message=job.message)
        return {"jobProperties": properties}

    def _check(self, operation: str, params: dict) -> None:
        self.requests.append((operation, params))
        problems = request_problems(operation, params)
        if problems:
            raise ServiceError(400, "ValidationException", "; ".join(problems))
        if params["datastoreId"] != self.datastore_id:
            raise ServiceError(404, "ResourceNotFoundException", "no such datastore")

    def _run(self, job: Job) -> None:
        job.ended_at = time.time()
        if self.fail_jobs:
            job.status, job.message = "FAILED", "fake told to fail the job"
            return
        bucket, _, prefix = job.request["inputS3Uri"].removeprefix("s3://").partition("/")
        successes, failures = [], []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                uri = f"s3://{bucket}/{obj['Key']}"
                body = self.s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                try:
                    ds = pydicom.dcmread(io.BytesIO(body))
                    uids = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
                except Exception as exc:  # anything the parser rejects is a failed file
                    failures.append(
                        {
                            "inputFile": uri,
                            "exception": {
                                "exceptionType": "ValidationException",
                                "message": f"not DICOM: {type(exc).__name__}",
                            },
                        }
                    )
                    continue
                if uids[2] in self.failing_sops:
                    failures.append(
                        {
                            "inputFile": uri,
                            "exception": {
                                "exceptionType": "ValidationException",
                                "message": "fake told to fail this file",
                            },
                        }
                    )
                    continue
                successes.append(
                    {"inputFile": uri, "importResponse": {"imageSetId": image_set_id(*uids[:2])}}
                )
        self._write_output(job, successes, failures, len(successes) + len(failures))
        job.status, job.message = "COMPLETED", ""

    def _write_output(self, job: Job, successes: list, failures: list, scanned: int) -> None:
        out_bucket, _, out_prefix = job.request["outputS3Uri"].removeprefix("s3://").partition("/")
        prefix = f"{out_prefix}{self.datastore_id}-DicomImport-{job.job_id}/"
        image_sets: dict[str, int] = {}
        for line in successes:
            sid = line["importResponse"]["imageSetId"]
            image_sets[sid] = image_sets.get(sid, 0) + 1
        summary = {
            "jobSummary": {
                "jobId": job.job_id,
                "datastoreId": self.datastore_id,
                "inputS3Uri": job.request["inputS3Uri"],
                "outputS3Uri": job.request["outputS3Uri"],
                "numberOfScannedFiles": scanned,
                "numberOfImportedFiles": len(successes),
                "numberOfFilesWithCustomerError": len(failures),
                "numberOfFilesWithServerError": 0,
                "numberOfGeneratedImageSets": len(image_sets),
                "imageSetsSummary": [
                    {"imageSetId": k, "numberOfMatchedSOPInstances": v}
                    for k, v in image_sets.items()
                ],
            }
        }
        files = {
            "job-output-manifest.json": json.dumps(summary),
            "SUCCESS/success.ndjson": "".join(json.dumps(line) + "\n" for line in successes),
            "FAILURE/failure.ndjson": "".join(json.dumps(line) + "\n" for line in failures),
        }
        for name, text in files.items():
            self.s3.put_object(Bucket=out_bucket, Key=prefix + name, Body=text.encode())

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self._answer(START, fake.start_job)

            def do_GET(self) -> None:
                self._answer(GET, fake.get_job)

            def _answer(self, route: re.Pattern, operation) -> None:
                match = route.fullmatch(self.path.split("?")[0])
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    if not match:
                        raise ServiceError(
                            404, "ResourceNotFoundException", f"no route {self.path}"
                        )
                    params = {**json.loads(self.rfile.read(length) or b"{}"), **match.groupdict()}
                    with fake.lock:
                        status, body, code = 200, operation(params), None
                except ServiceError as exc:
                    status, body, code = exc.status, {"message": str(exc)}, exc.code
                except Exception as exc:  # a bug in the fake shows as a server error, not a hang
                    status, body, code = 500, {"message": repr(exc)}, "InternalServerException"
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if code:
                    self.send_header("x-amzn-ErrorType", code)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
