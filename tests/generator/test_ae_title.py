"""One AE-title rule: the template's SCPAETitle and RequireCallingAETitle patterns are built from
the SCP's own character class, and the template accepts only titles the SCP accepts."""

from __future__ import annotations

import itertools
import re

import pytest

from scp.settings import AE_TITLE_CHARACTERS, SettingsError, load_settings

# Every character 0-255 alone, and short mixes of the edge cases (space, backslash, DEL, Latin-1).
EDGES = [" ", "\\", "\x7f", "\x1f", "é", "A", "~", ",", "\t"]
SAMPLES = [chr(c) for c in range(256)] + [
    "".join(p) for n in (2, 3) for p in itertools.product(EDGES, repeat=n)
]
SAMPLES += ["STORESCP", "CT 01", "SIXTEEN_CHARS_16", "SEVENTEEN_CHARS_X", " PAD ", "   "]


def _scp_accepts(title: str) -> bool:
    try:
        load_settings(argv=[], environ={"SCP_AE_TITLE": title})
    except SettingsError:
        return False
    return True


def _template_accepts(template, name: str, value: str) -> bool:
    p = template["Parameters"][name]
    length_ok = p.get("MinLength", 0) <= len(value) <= p.get("MaxLength", 10**6)
    return length_ok and re.fullmatch(p["AllowedPattern"], value) is not None


def test_patterns_are_built_from_the_scps_character_class(template):
    assert AE_TITLE_CHARACTERS == r" -\[\]-~"  # printable ASCII (0x20-0x7E) without backslash
    title = template["Parameters"]["SCPAETitle"]["AllowedPattern"]
    assert title == f"^(?! *$)[{AE_TITLE_CHARACTERS}]{{1,16}}$"
    calling = template["Parameters"]["RequireCallingAETitle"]["AllowedPattern"]
    without_comma = r" -+\--\[\]-~"  # the same class with ',' (0x2C) taken out
    assert calling == f"^([{without_comma}]{{1,16}}(,[{without_comma}]{{1,16}})*)?$"
    assert [c for c in map(chr, range(256)) if re.fullmatch(f"[{without_comma}]", c)] == [
        c for c in map(chr, range(256)) if re.fullmatch(f"[{AE_TITLE_CHARACTERS}]", c) and c != ","
    ]


@pytest.mark.parametrize("value", SAMPLES)
def test_template_accepts_only_what_the_scp_accepts(template, value):
    """Accepted by the template => the SCP starts; and for values without surrounding
    whitespace (the SCP strips it) the two agree exactly."""
    template_ok = _template_accepts(template, "SCPAETitle", value)
    scp_ok = _scp_accepts(value)
    if template_ok:
        assert scp_ok, value
    if value == value.strip():
        assert template_ok == scp_ok, value


def test_printable_ascii_only(template):
    assert not _template_accepts(template, "SCPAETitle", "CTÉ")
    assert not _scp_accepts("CTÉ")
    assert _template_accepts(template, "SCPAETitle", "~!#$%&()*+-./:;<")
