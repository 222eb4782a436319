"""The transfer-syntax plan of C-MOVE/C-GET sub-operations (scp/qr/syntaxes.py), as pure
functions: what is proposed per SOP class, and what HealthImaging is asked for once the
destination's accepted contexts are known (accepted_syntaxes is read on real associations in
test_qr_pynetdicom_contract.py)."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    MRImageStorage,
    RLELossless,
)

from scp.qr.syntaxes import (
    COMPRESSED,
    EXPLICIT_LE,
    MAX_CONTEXTS,
    STORED,
    proposed_contexts,
    sendable,
    wanted,
)


def record(sop_class: str, stored: str | None = None) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    if stored:
        ds.AvailableTransferSyntaxUID = stored
    return ds


def plan(contexts) -> list[tuple[str, tuple[str, ...]]]:
    return [(str(cx.abstract_syntax), tuple(cx.transfer_syntax)) for cx in contexts]


def test_an_unknown_stored_syntax_proposes_every_compressed_one_after_the_uncompressed():
    got = plan(proposed_contexts([record(MRImageStorage), record(CTImageStorage)]))
    uncompressed = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
    assert got[:2] == [(CTImageStorage, uncompressed), (MRImageStorage, uncompressed)]
    assert got[2:] == [(CTImageStorage, (ts,)) for ts in COMPRESSED] + [
        (MRImageStorage, (ts,)) for ts in COMPRESSED
    ]
    assert RLELossless in COMPRESSED and ExplicitVRLittleEndian not in COMPRESSED


def test_stored_syntaxes_a_search_names_are_the_only_compressed_ones_proposed():
    records = [record(CTImageStorage, RLELossless), record(CTImageStorage, ExplicitVRLittleEndian)]
    got = plan(proposed_contexts(records))
    assert got == [
        (CTImageStorage, (ExplicitVRLittleEndian, ImplicitVRLittleEndian)),
        (CTImageStorage, (RLELossless,)),
    ]


def test_every_class_keeps_an_uncompressed_context_within_the_128():
    classes = [f"1.2.3.{n}" for n in range(20)]
    got = plan(proposed_contexts(record(c) for c in classes))
    assert len(got) == MAX_CONTEXTS
    assert {c for c, syntaxes in got if syntaxes[0] == ExplicitVRLittleEndian} == set(classes)


def test_stored_where_a_compressed_syntax_was_accepted_else_explicit_le():
    both = {CTImageStorage: frozenset({ImplicitVRLittleEndian, RLELossless})}
    plain = {CTImageStorage: frozenset({ImplicitVRLittleEndian})}
    assert wanted(record(CTImageStorage), both) == STORED
    assert wanted(record(CTImageStorage, RLELossless), both) == STORED
    assert wanted(record(CTImageStorage, JPEG2000Lossless), both) == EXPLICIT_LE  # known, refused
    assert wanted(record(CTImageStorage), plain) == EXPLICIT_LE
    assert wanted(record(MRImageStorage), both) is None  # nothing accepted for the class


def test_sendable_follows_pynetdicoms_conversion_rule():
    accepted = {CTImageStorage: frozenset({ImplicitVRLittleEndian, RLELossless})}
    assert sendable(RLELossless, CTImageStorage, accepted)
    assert sendable(ExplicitVRLittleEndian, CTImageStorage, accepted)  # converted to implicit
    assert not sendable(JPEG2000Lossless, CTImageStorage, accepted)
    assert not sendable(ExplicitVRBigEndian, CTImageStorage, accepted)  # byte order differs
    assert not sendable(RLELossless, MRImageStorage, accepted)
