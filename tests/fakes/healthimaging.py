"""A HealthImaging fake built from AWS's published examples: StartDICOMImportJob and
GetDICOMImportJob over HTTP (REST-JSON, as botocore's model says), importing from S3.

Sources, each named where it is used:
- [API] API reference, StartDICOMImportJob / GetDICOMImportJob / DICOMImportJobProperties
  (request constraints; botocore's model carries the same patterns and lengths, and the error
  codes with their HTTP statuses).
  https://docs.aws.amazon.com/healthimaging/latest/APIReference/API_StartDICOMImportJob.html
- [CLI] AWS CLI reference examples, start-dicom-import-job and get-dicom-import-job: the
  `outputS3Uri` GetDICOMImportJob returns is the job's folder,
  `{outputS3Uri passed}{datastoreId}-DicomImport-{jobId}/`.
  https://awscli.amazonaws.com/v2/documentation/api/latest/reference/medical-imaging/get-dicom-import-job.html
- [GUIDE] Developer guide, "Understanding import jobs": job-output-manifest.json (jobSummary with
  success/failure/warnings folders, counts, imageSetsSummary), SUCCESS/success.ndjson,
  FAILURE/failure.ndjson, WARNING/warning.ndjson lines; instances whose metadata conflicts with a
  primary image set go to a non-primary image set with `isPrimary: False`; a SOP instance imported
  again overwrites the older one and increments the image set's version.
  https://docs.aws.amazon.com/healthimaging/latest/devguide/understanding-import-jobs.html
- [THROTTLE] Developer guide, "Throttling limits": StartDICOMImportJob 1 TPS, burst 2;
  GetDICOMImportJob 25 TPS, burst 50; ThrottlingException above them.
  https://docs.aws.amazon.com/healthimaging/latest/devguide/throttling-limits.html
- [QUOTAS] Developer guide, "Endpoints and quotas": 100 concurrent import jobs per data store
  (ServiceQuotaExceededException above), 5,000 files and 10 GB per import job.
  https://docs.aws.amazon.com/healthimaging/latest/devguide/endpoints-quotas.html

The fake's clock can run faster than real time (`clock_scale`), so tests of hours of quota
pressure take seconds; every rate and duration above is in the fake's seconds.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import boto3
import botocore.session
import pydicom
from botocore.validate import ParamValidator

from tests.fakes.sfn_sdk import Served

DATASTORE_ID = "0123456789abcdef0123456789abcdef"
MODEL = botocore.session.get_session().get_service_model("medical-imaging")
START = re.compile(r"/startDICOMImportJob/datastore/(?P<datastoreId>[^/]+)")
GET = re.compile(r"/getDICOMImportJob/datastore/(?P<datastoreId>[^/]+)/job/(?P<jobId>[^/]+)")

START_RATE, START_BURST = 1.0, 2  # [THROTTLE]
GET_RATE, GET_BURST = 25.0, 50  # [THROTTLE]
MAX_JOBS_IN_FLIGHT = 100  # [QUOTAS]
MAX_FILES_PER_JOB, MAX_BYTES_PER_JOB = 5000, 10 * 1000**3  # [QUOTAS]
# The attributes whose disagreement with a primary image set sends an instance to a non-primary
# image set ([GUIDE]: "metadata elements" of the patient and study).
CONFLICTING = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "AccessionNumber",
)
# [GUIDE] warning.ndjson example, verbatim.
OFFSET_TABLE_WARNING = {
    "warning_reason_code": 45330,
    "type": "InvalidOffsetTable",
    "message": "The file was imported but contains an invalid offset table, may see issues "
    "when retrieving certain frames.",
}


class ServiceError(Exception):
    """An error response: its code; the HTTP status comes from botocore's model."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.status = MODEL.shape_for(code).metadata["error"]["httpStatusCode"]


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


class Clock:
    """The fake's time: real time multiplied by `scale` from the moment it was made."""

    def __init__(self, scale: float = 1.0):
        self.scale, self.origin = scale, time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self.origin) * self.scale


class TokenBucket:
    """A throttle: `rate` requests a second on average, `burst` at once."""

    def __init__(self, clock: Clock, rate: float, burst: int):
        self.clock, self.rate, self.burst = clock, rate, burst
        self.tokens, self.at = float(burst), clock.now()

    def take(self) -> bool:
        now = self.clock.now()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass
class Job:
    """One import job, its request and when it runs (in the fake's seconds)."""

    request: dict
    job_id: str
    submitted_at: float
    runs_at: float
    ends_at: float
    wall_submitted: float = field(default_factory=time.time)
    status: str = "SUBMITTED"
    message: str = ""


@dataclass
class ImageSet:
    image_set_id: str
    primary: bool
    attributes: dict
    version: int = 1
    instances: set = field(default_factory=set)


class FakeHealthImaging(Served):
    """The fake service. Tell it to fail jobs, fail or warn about files through its attributes."""

    def __init__(
        self,
        s3_endpoint: str,
        datastore_id: str = DATASTORE_ID,
        clock_scale: float = 1.0,
        job_seconds: float = 2.0,
    ):
        self.datastore_id = datastore_id
        self.s3 = boto3.client("s3", endpoint_url=s3_endpoint)
        self.clock = Clock(clock_scale)
        self.job_seconds = job_seconds  # fake seconds from submission to the end of a job
        self.starts = TokenBucket(self.clock, START_RATE, START_BURST)
        self.gets = TokenBucket(self.clock, GET_RATE, GET_BURST)
        self.jobs: dict[str, Job] = {}
        self.image_sets: dict[tuple[str, str], list[ImageSet]] = {}
        self.requests: list[tuple[str, dict]] = []
        self.refused: dict[str, int] = {
            "ThrottlingException": 0,
            "ServiceQuotaExceededException": 0,
        }
        self.max_in_flight = 0
        self.throttle_starts = 0  # answer the next N StartDICOMImportJob calls with a throttle
        self.fail_jobs = False  # jobs end FAILED, with a message and no output files
        self.failing_sops: set[str] = set()  # these SOP instances land in failure.ndjson
        self.warning_sops: set[str] = set()  # these are imported with the [GUIDE] warning
        # Called with each file imported into a primary image set: `make demo` hands it to the
        # DICOMweb stand-in (Orthanc), since HealthImaging's DICOMweb APIs search and retrieve
        # the data store's primary image sets whichever way they arrived ("Using DICOMweb").
        self.on_primary: Callable[[bytes], None] | None = None
        self.lock = threading.Lock()
        self._listen()

    # --- figures for the tests ---------------------------------------------------------------

    def start_times(self) -> list[float]:
        """When each job was started, in the fake's seconds."""
        return sorted(job.submitted_at for job in self.jobs.values())

    def highest_start_rate(self, window: float = 10.0) -> float:
        """Most starts in any `window` fake seconds, per second."""
        times = self.start_times()
        most = max((sum(1 for u in times if t <= u < t + window) for t in times), default=0)
        return most / window

    # --- operations ---------------------------------------------------------------------------

    def start_job(self, params: dict) -> dict:
        self._check("StartDICOMImportJob", params)
        existing = next(
            (
                job
                for job in self.jobs.values()
                if job.request["clientToken"] == params["clientToken"]
            ),
            None,
        )
        if existing and existing.request != params:  # [API] idempotency token reused
            raise ServiceError("ConflictException", "clientToken reused with other parameters")
        if self.throttle_starts > 0:
            self.throttle_starts -= 1
            self._refuse("ThrottlingException", "Rate exceeded")
        if existing is None:
            if not self.starts.take():
                self._refuse("ThrottlingException", "Rate exceeded")
            in_flight = self._in_flight()
            if in_flight >= MAX_JOBS_IN_FLIGHT:
                self._refuse(
                    "ServiceQuotaExceededException",
                    f"Maximum concurrent import jobs per data store ({MAX_JOBS_IN_FLIGHT}) reached",
                )
            now = self.clock.now()
            existing = Job(
                params, uuid.uuid4().hex, now, now + self.job_seconds / 4, now + self.job_seconds
            )
            self.jobs[existing.job_id] = existing
            self.max_in_flight = max(self.max_in_flight, in_flight + 1)
        job = existing
        return {  # [CLI] start-dicom-import-job output
            "datastoreId": self.datastore_id,
            "jobId": job.job_id,
            "jobStatus": job.status,
            "submittedAt": job.wall_submitted,
        }

    def get_job(self, params: dict) -> dict:
        self._check("GetDICOMImportJob", params)
        if not self.gets.take():
            self._refuse("ThrottlingException", "Rate exceeded")
        job = self.jobs.get(params["jobId"])
        if job is None:
            raise ServiceError("ResourceNotFoundException", f"no import job {params['jobId']}")
        self._advance(job)
        request = job.request
        properties = {  # [CLI] get-dicom-import-job output
            "jobId": job.job_id,
            "jobName": request.get("jobName", job.job_id),
            "jobStatus": job.status,
            "datastoreId": self.datastore_id,
            "dataAccessRoleArn": request["dataAccessRoleArn"],
            "submittedAt": job.wall_submitted,
            "inputS3Uri": request["inputS3Uri"],
            "outputS3Uri": self._job_folder(job),
        }
        if job.status in ("COMPLETED", "FAILED"):
            properties["endedAt"] = time.time()
        if job.message:
            properties["message"] = job.message
        return {"jobProperties": properties}

    def _refuse(self, code: str, message: str) -> None:
        self.refused[code] += 1
        raise ServiceError(code, message)

    def _check(self, operation: str, params: dict) -> None:
        self.requests.append((operation, params))
        problems = request_problems(operation, params)
        if problems:
            raise ServiceError("ValidationException", "; ".join(problems))
        if params["datastoreId"] != self.datastore_id:
            raise ServiceError("ResourceNotFoundException", "no such datastore")

    def _in_flight(self) -> int:
        for job in self.jobs.values():
            self._advance(job)
        return sum(1 for job in self.jobs.values() if job.status in ("SUBMITTED", "IN_PROGRESS"))

    def _job_folder(self, job: Job) -> str:
        """[CLI]: the output prefix passed, then {datastoreId}-DicomImport-{jobId}/."""
        return f"{job.request['outputS3Uri']}{self.datastore_id}-DicomImport-{job.job_id}/"

    def _advance(self, job: Job) -> None:
        now = self.clock.now()
        if job.status == "SUBMITTED" and now >= job.runs_at:
            job.status = "IN_PROGRESS"
        if job.status == "IN_PROGRESS" and now >= job.ends_at:
            self._run(job)

    # --- the import itself --------------------------------------------------------------------

    def _run(self, job: Job) -> None:
        if self.fail_jobs:
            job.status, job.message = "FAILED", "fake told to fail the job"
            return
        bucket, _, prefix = job.request["inputS3Uri"].removeprefix("s3://").partition("/")
        objects = [
            obj
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            )
            for obj in page.get("Contents", [])
        ]
        # [QUOTAS] gives the limits, not how a job over them ends: the fake fails it with a reason.
        if len(objects) > MAX_FILES_PER_JOB or sum(o["Size"] for o in objects) > MAX_BYTES_PER_JOB:
            job.status = "FAILED"
            job.message = f"input exceeds {MAX_FILES_PER_JOB} files or {MAX_BYTES_PER_JOB} bytes"
            return
        results: dict[str, list] = {"success": [], "failure": [], "warning": []}
        touched: dict[str, ImageSet] = {}
        overwritten: set[str] = set()
        for obj in objects:
            key = obj["Key"]  # [GUIDE] inputFile is the object's key
            try:
                data = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                ds = pydicom.dcmread(io.BytesIO(data))
                uids = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)
            except Exception:  # anything the parser rejects is a failed file
                results["failure"].append(self._failure(key, "DICOM attributes does not exist"))
                continue
            if uids[2] in self.failing_sops:
                results["failure"].append(
                    self._failure(key, "DICOM attribute TransferSyntaxUID does not exist")
                )
                continue
            image_set, again = self._place(uids, {a: str(ds.get(a, "")) for a in CONFLICTING})
            touched[image_set.image_set_id] = image_set
            overwritten |= {image_set.image_set_id} if again else set()
            response = {"imageSetId": image_set.image_set_id, "isPrimary": image_set.primary}
            if image_set.primary and self.on_primary is not None:
                self.on_primary(data)
            if uids[2] in self.warning_sops:  # [GUIDE] warning.ndjson line
                response = {
                    **response,
                    "imageSetVersion": image_set.version,
                    "warnings": [OFFSET_TABLE_WARNING],
                }
                results["warning"].append({"inputFile": key, "importResponse": response})
            else:
                results["success"].append({"inputFile": key, "importResponse": response})
        for image_set_id in overwritten:
            touched[image_set_id].version += 1
        self._write_output(job, results, len(objects), touched)
        job.status = "COMPLETED"

    def _failure(self, key: str, message: str) -> dict:
        """[GUIDE] failure.ndjson line."""
        return {
            "inputFile": key,
            "exception": {"exceptionType": "ValidationException", "message": message},
        }

    def _place(self, uids: tuple[str, str, str], attributes: dict) -> tuple[ImageSet, bool]:
        """[GUIDE]: one primary image set per series; an instance whose metadata conflicts with
        the primary goes to a non-primary image set; a SOP imported again overwrites (True)."""
        sets = self.image_sets.setdefault(uids[:2], [])
        primary = next((s for s in sets if s.primary), None)
        if primary is None or primary.attributes == attributes:
            target = primary or ImageSet(uuid.uuid4().hex, True, attributes)
        else:
            target = next((s for s in sets if not s.primary and s.attributes == attributes), None)
            target = target or ImageSet(uuid.uuid4().hex, False, attributes)
        if target not in sets:
            sets.append(target)
        again = uids[2] in target.instances
        target.instances.add(uids[2])
        return target, again

    def _write_output(
        self, job: Job, results: dict[str, list], scanned: int, touched: dict
    ) -> None:
        folder = self._job_folder(job)
        out_bucket, _, prefix = folder.removeprefix("s3://").partition("/")
        summary = {  # [GUIDE] job-output-manifest.json
            "jobSummary": {
                "jobId": job.job_id,
                "datastoreId": self.datastore_id,
                "inputS3Uri": job.request["inputS3Uri"],
                "outputS3Uri": folder,
                "successOutputS3Uri": f"{folder}SUCCESS/",
                "failureOutputS3Uri": f"{folder}FAILURE/",
                "warningsOutputS3Uri": f"{folder}WARNING/",
                "numberOfScannedFiles": scanned,
                "numberOfImportedFiles": len(results["success"]) + len(results["warning"]),
                "numberOfFilesWithCustomerError": len(results["failure"]),
                "numberOfFilesWithServerError": 0,
                "numberOfGeneratedImageSets": len(touched),
                "imageSetsSummary": [
                    {
                        "imageSetId": s.image_set_id,
                        "imageSetVersion": s.version,
                        "isPrimary": s.primary,
                        "numberOfMatchedSOPInstances": len(s.instances),
                    }
                    for s in touched.values()
                ],
            }
        }
        files = {
            "job-output-manifest.json": json.dumps(summary),
            # [GUIDE] writes the success example with Python's True/False; so does the fake.
            "SUCCESS/success.ndjson": "".join(
                json.dumps(line).replace("true", "True").replace("false", "False") + "\n"
                for line in results["success"]
            ),
            "FAILURE/failure.ndjson": "".join(
                json.dumps(line) + "\n" for line in results["failure"]
            ),
            "WARNING/warning.ndjson": "".join(
                json.dumps(line) + "\n" for line in results["warning"]
            ),
        }
        for name, text in files.items():
            self.s3.put_object(Bucket=out_bucket, Key=prefix + name, Body=text.encode())

    # --- HTTP ---------------------------------------------------------------------------------

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
                body = self.rfile.read(length) if length else b""
                try:
                    if not match:
                        raise ServiceError("ResourceNotFoundException", f"no route {self.path}")
                    params = {**json.loads(body or b"{}"), **match.groupdict()}
                    with fake.lock:
                        status, answer, code = 200, operation(params), None
                except ServiceError as exc:
                    status, answer, code = exc.status, {"message": str(exc)}, exc.code
                except Exception as exc:  # a bug in the fake shows as a server error, not a hang
                    status, answer, code = 500, {"message": repr(exc)}, "InternalServerException"
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                if code:
                    self.send_header("x-amzn-ErrorType", code)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
