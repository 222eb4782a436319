"""Association policy: who may associate, and whether a slot is free."""

from __future__ import annotations

from dataclasses import dataclass

from scp.settings import Settings

# A-ASSOCIATE-RJ (result, source, diagnostic)
REJECT_CALLED_AE = (0x01, 0x01, 0x07)
REJECT_CALLING_AE = (0x01, 0x01, 0x03)
REJECT_LIMIT = (0x02, 0x03, 0x02)
REJECT_DRAINING = (0x02, 0x03, 0x01)


@dataclass(frozen=True)
class Rejection:
    reason: str
    result: int
    source: int
    diagnostic: int


def _rejection(reason: str, rsd: tuple[int, int, int]) -> Rejection:
    return Rejection(reason, *rsd)


LIMIT_EXCEEDED = _rejection("local limit exceeded", REJECT_LIMIT)


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
            return _rejection("draining", REJECT_DRAINING)
        if s.require_called_ae_title and called != s.ae_title:
            return _rejection("called AE title not recognised", REJECT_CALLED_AE)
        if s.require_calling_ae_title and calling not in s.require_calling_ae_title:
            return _rejection("calling AE title not allowed", REJECT_CALLING_AE)
        return None
