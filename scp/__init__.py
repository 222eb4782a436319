"""DICOM Store SCP that stores every received instance durably (S3 or a local folder)."""

__version__ = "0.1.0"
PROG = "storescp-healthimaging"  # how the program names itself (never `storescp`, dcmtk's tool)


class ScpError(Exception):
    """Base class of every error the SCP raises on purpose."""
