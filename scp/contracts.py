"""What the SCP shares with the import workflow and the template, as config/contracts.json holds
it (scp/ may not import lambdas/ or generator/; tests/generator/test_contracts.py keeps these
equal to it)."""

from __future__ import annotations

# Storage layout below the store prefix (S3 bucket or local folder).
INCOMING_PREFIX = "incoming/"  # incoming/{batchId}/{Study}/{Series}/{SOP}.dcm
OPEN_PREFIX = "open/"  # open/{batchId}.json, the open-batch marker
BATCHES_PREFIX = "batches/"  # batches/{batchId}.json, the manifest, written last
DIRECT_PREFIX = "direct/"  # direct/{Study}/{Series}/{SOP}.dcm: stored by StoreDICOM, in no batch

METRICS_NAMESPACE = "StoreSCP"
S3_MULTIPART_THRESHOLD = 64 * 2**20

# DicomImportJobTable: the truth of where an instance is (DESIGN section 9).
JOB_RECORD, INSTANCE_RECORD_PREFIX = "JOB", "INSTANCE#"
IMPORTED, CONFLICT, FAILED = "IMPORTED", "CONFLICT", "FAILED"
SUBMITTED, COMPLETED = "SUBMITTED", "COMPLETED"  # jobStatus of the job item: started, then final
SOP_INSTANCE_INDEX = "sopInstanceUID-index"
STUDY_INSTANCE_INDEX = "studyInstanceUID-index"
LATEST_WINS = ("attempt", "recordedAt")  # of an instance's items, the greatest of these wins
DIRECT_JOB_PREFIX, DIRECT_ARRIVAL = "DIRECT#", "StoreDICOM"  # a direct store's jobId, arrivedBy
# COMMITMENT_COMMIT_ON=stored with S3: an item per durably stored instance, before Success;
# its attempt 0 loses to any import attempt's item.
STORED_JOB_PREFIX, STORED, STORED_ATTEMPT = "STORED#", "STORED", 0
EXPIRES_AT = "expiresAt"  # the table's TTL attribute (epoch seconds), commitment items only
# Storage-commitment transactions: jobId COMMITMENT#{TransactionUID}, recordId TRANSACTION (or
# DUPLICATE#{digest}); pendingCommitment (= PENDING, indexed) only while pending.
COMMITMENT_RECORD_PREFIX = "COMMITMENT#"
PENDING, REPORTED, UNDELIVERABLE = "PENDING", "REPORTED", "UNDELIVERABLE"
PENDING_COMMITMENT_INDEX = "pendingCommitment-index"
