"""The transfer syntaxes of C-MOVE/C-GET sub-operations: what we propose to a Move Destination,
and in which syntax each instance is asked of HealthImaging once we know what was accepted.

HealthImaging returns an instance "in either its stored transfer syntax or as uncompressed (ELE)
format" (developer guide, "Getting a DICOM instance from HealthImaging",
https://docs.aws.amazon.com/healthimaging/latest/devguide/dicomweb-retrieve-instance.html), and
Explicit VR Little Endian when no transfer syntax is asked for (same guide,
get-dicom-instance.html).
Its QIDO-RS instance search documents no transfer syntax attribute ("Searching for DICOM
instances", dicomweb-search-instances.html; Orthanc's returns none either), so a class whose
stored syntax is unknown is proposed with every compressed syntax HealthImaging imports (the
Storage service's list), one presentation context each so that the destination accepts each on
its own, and with the uncompressed ones in a context of their own.

Rule: an instance is asked for in its stored syntax (`transfer-syntax=*`, PS3.18 8.7.3.5) when
the destination accepted a compressed syntax for its SOP class; if what comes back is not
accepted either, or HealthImaging refuses the request, it is asked for again in Explicit VR
Little Endian, which pynetdicom sends as Implicit VR Little Endian where only that was accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import build_context
from pynetdicom.presentation import PresentationContext

from scp.services import TRANSFER_SYNTAXES

EXPLICIT_LE, IMPLICIT_LE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
UNCOMPRESSED = (EXPLICIT_LE, IMPLICIT_LE)
STORED = "*"  # PS3.18 8.7.3.5.2: the origin server's stored transfer syntax
COMPRESSED = tuple(ts for ts in TRANSFER_SYNTAXES if UID(ts).is_compressed)
MAX_CONTEXTS = 128  # PS3.8 9.3.2.2: presentation context IDs are odd numbers 1-255
# Where a search record may name its stored syntax: Available Transfer Syntax UID (PS3.18
# 10.6.3.3.3 "may optionally include") or Transfer Syntax UID; neither is documented for
# HealthImaging, so both are read when present and never asked for.
SYNTAX_KEYWORDS = ("AvailableTransferSyntaxUID", "TransferSyntaxUID")

Accepted = Mapping[str, frozenset[str]]  # SOP Class UID -> transfer syntaxes accepted for it


def stored_syntax(record: Dataset) -> str | None:
    """The record's stored transfer syntax, if the search returned it."""
    for keyword in SYNTAX_KEYWORDS:
        value = record.get(keyword)
        if value:
            return str(value[0] if isinstance(value, list | tuple) else value)
    return None


def proposed_contexts(records: Iterable[Dataset]) -> list[PresentationContext]:
    """Per SOP class: one context of Explicit and Implicit VR Little Endian (every class first,
    so that each can be sent), then one context per compressed syntax it may be stored in (the
    ones the records name, else COMPRESSED), while PS3.8's 128 contexts last."""
    classes: dict[str, set[str] | None] = {}
    for record in records:
        sop_class = str(record.get("SOPClassUID", ""))
        if not sop_class:
            continue
        stored = stored_syntax(record)
        known = classes.setdefault(sop_class, set())
        if known is None or stored is None:
            classes[sop_class] = None  # at least one instance of unknown syntax
        elif UID(stored).is_compressed:
            known.add(stored)
    ordered = sorted(classes)
    contexts = [build_context(uid, list(UNCOMPRESSED)) for uid in ordered]
    for uid in ordered:
        known = classes[uid]
        for syntax in COMPRESSED if known is None else sorted(known):
            contexts.append(build_context(uid, [syntax]))
    return contexts[:MAX_CONTEXTS]


def accepted_syntaxes(contexts: Iterable[PresentationContext]) -> dict[str, frozenset[str]]:
    """What an association accepted for us to send (our SCU role), per SOP class."""
    found: dict[str, set[str]] = {}
    for cx in contexts:
        if cx.as_scu:
            found.setdefault(str(cx.abstract_syntax), set()).add(str(cx.transfer_syntax[0]))
    return {uid: frozenset(syntaxes) for uid, syntaxes in found.items()}


def wanted(record: Dataset, accepted: Accepted) -> str | None:
    """The transfer syntax to ask HealthImaging for: STORED when a compressed syntax was
    accepted for the record's class (and its stored one, when known, is among them), else
    Explicit VR Little Endian; None when nothing at all was accepted for the class."""
    syntaxes = accepted.get(str(record.get("SOPClassUID", "")))
    if not syntaxes:
        return None
    stored = stored_syntax(record)
    if any(UID(ts).is_compressed for ts in syntaxes) and (stored is None or stored in syntaxes):
        return STORED
    return EXPLICIT_LE


def sendable(syntax: str, sop_class: str, accepted: Accepted) -> bool:
    """pynetdicom can send a data set of `syntax` on what was accepted for `sop_class`: the
    same syntax, or an uncompressed one of the same byte order (association.py
    _get_valid_context with allow_conversion, as send_c_store calls it)."""
    have = UID(syntax)
    return any(
        ts == have
        or (
            not ts.is_compressed
            and not have.is_compressed
            and ts.is_little_endian == have.is_little_endian
        )
        for ts in map(UID, accepted.get(sop_class, ()))
    )
