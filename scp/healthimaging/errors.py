"""Errors of the DICOMweb client; each names the request that failed."""

from __future__ import annotations

from scp import ScpError


class DicomWebError(ScpError):
    """A DICOMweb request failed; the message names the action, method and path."""

    def __init__(self, action: str, method: str, path: str, reason: str, status: int = 0) -> None:
        super().__init__(f"{action} ({method} {path}): {reason}")
        self.action, self.method, self.path, self.status = action, method, path, status
        self.reason = reason


class DicomWebUnavailable(DicomWebError):
    """Throttled (429), unavailable (5xx), timed out or unreachable until the budget ran out:
    nothing says the request was refused, so the caller may use another path."""
