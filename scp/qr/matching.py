"""Attribute matching of PS3.4 C.2.2.2 on the values a search returned: universal (empty key),
single value, list of UIDs, wildcard (* and ?), range (DA, TM, DT). Pure functions."""

from __future__ import annotations

import re
from collections.abc import Sequence

RANGE_VRS = frozenset({"DA", "TM", "DT"})
# C.2.2.2.4: wildcards apply to every VR except DA, TM, DT, SL, SS, UL, US, FL, FD, OB, OW, UN,
# AT, UI and the sequences.
NO_WILDCARD_VRS = RANGE_VRS | {"SL", "SS", "UL", "US", "FL", "FD", "OB", "OW", "UN", "AT", "UI"}


def is_universal(key: str) -> bool:
    return key == "" or key == "*"


def is_uid_list(key: str, vr: str) -> bool:
    return vr == "UI" and "\\" in key


def is_wildcard(key: str, vr: str) -> bool:
    return vr not in NO_WILDCARD_VRS and ("*" in key or "?" in key)


def is_range(key: str, vr: str) -> bool:
    return vr in RANGE_VRS and "-" in key


def _wildcard_re(key: str, fold: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in key)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if fold else 0))


def _in_range(key: str, value: str) -> bool:
    """C.2.2.2.5: `a-b`, `a-` and `-b`, inclusive; values compared as written (YYYYMMDD,
    HHMMSS.FFFFFF and DT strings order as text once padded to the same precision)."""
    low, _, high = key.partition("-")
    low, high, value = low.strip(), high.strip(), value.strip()
    if low and value[: len(low)] < low:
        return False
    return not (high and value[: len(high)] > high)


def matches_value(key: str, vr: str, value: str) -> bool:
    """Whether one stored value matches the key (PN compared case-insensitively, C.2.2.2.1)."""
    fold = vr == "PN"
    if is_uid_list(key, vr):
        return value in key.split("\\")
    if is_wildcard(key, vr):
        return _wildcard_re(key, fold).fullmatch(value) is not None
    if is_range(key, vr):
        return _in_range(key, value)
    if fold:
        return key.casefold() == value.strip().casefold()
    return key == value.strip()


def matches(key: str, vr: str, values: Sequence[str] | None) -> bool:
    """Whether an attribute with `values` matches the key; a multi-valued attribute (Modalities in
    Study) matches when one of its values does. An attribute the search did not return matches
    (the search filtered on it, or it cannot be matched: the return value is empty)."""
    key = key.strip()
    if is_universal(key) or values is None:
        return True
    return any(matches_value(key, vr, v) for v in values if v is not None)
