"""The one exception base class of the import workflow, and its subclasses."""


class WorkflowError(Exception):
    """Base class: something in the import workflow was wrong; the message says what to do."""


class ConfigError(WorkflowError):
    """A Lambda environment variable is missing or malformed."""


class ManifestError(WorkflowError):
    """A batch manifest (or S3 event for one) is not what config/batch-manifest.schema.json says."""
