"""Which C-STOREs go straight to HealthImaging: none (the default), all, or those selected by
calling AE title and/or C-STORE Priority HIGH (settings DIRECT_STORE*)."""

from __future__ import annotations

from dataclasses import dataclass

HIGH_PRIORITY = 0x0001  # C-STORE Priority (0000,0700): LOW 0x0002, MEDIUM 0x0000, HIGH 0x0001


@dataclass(frozen=True)
class DirectRoute:
    mode: str = "none"
    calling_ae_titles: tuple[str, ...] = ()
    high_priority: bool = False

    def wants(self, calling_ae: str, priority: int) -> bool:
        """Whether an instance from `calling_ae` sent with `priority` goes direct."""
        if self.mode != "selected":
            return self.mode == "all"
        return calling_ae in self.calling_ae_titles or (
            self.high_priority and priority == HIGH_PRIORITY
        )
