"""Storage Commitment Push Model SCP (DICOM PS3.4 Annex J): a modality asks, with N-ACTION, that
we commit to instances it sent; we record the request durably, answer that we received it, and
report later with N-EVENT-REPORT once every instance has a final state (or at a deadline).

Modules: request (N-ACTION validated), outcome (instance states -> the report), transactions
(the durable record and the one-sender lease), locate (where an instance is), deliver (same
association or a new one), reporter (the background loop), service (the N-ACTION handler).
"""

from __future__ import annotations

SOP_CLASS = "1.2.840.10008.1.20.1"  # Storage Commitment Push Model SOP Class
WELL_KNOWN_INSTANCE = "1.2.840.10008.1.20.1.1"
REQUEST_COMMITMENT = 1  # the one Action Type ID (PS3.4 J.3.2)
ALL_COMMITTED, FAILURES_EXIST = 1, 2  # Event Type IDs of the report (PS3.4 J.3.3)

# Failure Reasons (0008,1197) we send (PS3.3 C.14.1.1), and when.
PROCESSING_FAILURE = 0x0110
NO_SUCH_OBJECT_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119
DUPLICATE_TRANSACTION_UID = 0x0131
FAILURE_REASONS = {
    PROCESSING_FAILURE: (
        "Processing failure",
        "HealthImaging failed the instance, or put it in a non-primary image set (conflict), "
        "or it was not imported by COMMITMENT_TIMEOUT",
    ),
    NO_SUCH_OBJECT_INSTANCE: (
        "No such object instance",
        "the instance was never received (by COMMITMENT_TIMEOUT)",
    ),
    CLASS_INSTANCE_CONFLICT: (
        "Class-instance conflict",
        "the instance was stored with another SOP Class UID than the request names",
    ),
    DUPLICATE_TRANSACTION_UID: (
        "Duplicate transaction UID",
        "another request with this Transaction UID, and other instances or another calling "
        "AE, is already recorded; every instance of the second request fails with this reason",
    ),
}
# Per request, as many as one batch holds (BATCH_MAX_FILES); more is refused with 0x0213
# (resource limitation). Keeps a transaction's item far below DynamoDB's 400 KB.
MAX_REFERENCES = 5000

# Every N-ACTION response status the SCP sends (scp/commitment/request.py, service.py and the
# permission gate of scp/services.py), and when.
ACTION_STATUSES = (
    (0x0000, "Success", "the request is valid and recorded durably; the report follows"),
    (0x0112, "No such SOP Instance", "Requested SOP Instance UID is not 1.2.840.10008.1.20.1.1"),
    (
        0x0115,
        "Invalid argument value",
        "Transaction UID missing or not a UID; Referenced SOP "
        "Sequence empty, or an item without valid SOP Class and Instance UIDs",
    ),
    (0x0123, "No such action", "Action Type ID other than 1"),
    (
        0x0124,
        "Refused: not authorised",
        "the calling AE is not in REMOTE_AES with the commitment permission",
    ),
    (0x0213, "Resource limitation", f"more than {MAX_REFERENCES} referenced instances"),
    (
        0x0110,
        "Processing failure",
        "the request could not be recorded (storage error); send it again",
    ),
)
