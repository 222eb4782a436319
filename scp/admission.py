"""Association policy: who may associate, and whether a slot is free."""

from __future__ import annotations

from dataclasses import dataclass

from scp.settings import Settings


@dataclass(frozen=True)
class Rejection:
    """An A-ASSOCIATE-RJ: why (for the log), and its result, source and diagnostic."""

    reason: str
    result: int
    source: int
    diagnostic: int


DRAINING = Rejection("draining", 0x02, 0x03, 0x01)
CALLED_AE_UNKNOWN = Rejection("called AE title not recognised", 0x01, 0x01, 0x07)
CALLING_AE_REFUSED = Rejection("calling AE title not allowed", 0x01, 0x01, 0x03)
LIMIT_EXCEEDED = Rejection("local limit exceeded", 0x02, 0x03, 0x02)


class Admission:
    """Decides on an association request from its AE titles and whether the SCP drains."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.draining = False

    def drain(self) -> None:
        """From now on every association is rejected (transient)."""
        self.draining = True

    def check(self, calling: str, called: str) -> Rejection | None:
        s = self.settings
        if self.draining:
            return DRAINING
        if s.require_called_ae_title and called != s.ae_title:
            return CALLED_AE_UNKNOWN
        if s.require_calling_ae_title and calling not in s.require_calling_ae_title:
            return CALLING_AE_REFUSED
        return None
