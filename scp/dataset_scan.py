"""Walk a received Part 10 file without loading its values: prove it parses to the end and read
the few attributes the SCP needs (UIDs, study date, image geometry).

Pixel data and other large values are skipped with seeks, so a 1 GB instance costs a few reads.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from pydicom.datadict import dictionary_VR

from scp import ScpError

DEFLATED = "1.2.840.10008.1.2.1.99"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
# VRs whose explicit encoding has a 2-byte reserved field and a 4-byte length.
LONG_VRS = {
    b"OB",
    b"OD",
    b"OF",
    b"OL",
    b"OV",
    b"OW",
    b"SQ",
    b"SV",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"UV",
}
WANTED = {
    0x00080016: "sop_class_uid",
    0x00080018: "sop_instance_uid",
    0x00080020: "study_date",
    0x0020000D: "study_instance_uid",
    0x0020000E: "series_instance_uid",
    0x00280002: "samples_per_pixel",
    0x00280008: "number_of_frames",
    0x00280010: "rows",
    0x00280011: "columns",
    0x00280100: "bits_allocated",
}
US_TAGS = {0x00280002, 0x00280010, 0x00280011, 0x00280100}
MAX_SMALL_VALUE = 1024  # wanted values are short; a longer one is a lie


class DatasetError(ScpError):
    """The dataset does not parse to its end, or lies about its lengths."""


@dataclass
class InstanceInfo:
    """What the SCP needs to know about a received instance."""

    transfer_syntax_uid: str = ""
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    study_date: str = ""
    rows: int = 0
    columns: int = 0
    bits_allocated: int = 0
    samples_per_pixel: int = 1
    number_of_frames: str = ""
    pixel_data_length: int | None = None  # None: absent; -1: encapsulated


class _FileReader:
    """Sequential reads and forward skips over a seekable file region."""

    def __init__(self, fp: BinaryIO, end: int) -> None:
        self.fp, self.end = fp, end
        self.pos = fp.tell()  # kept here: fp.tell() is a system call

    def tell(self) -> int:
        return self.pos

    def read(self, n: int) -> bytes:
        data = self.fp.read(n)
        if len(data) != n:
            raise DatasetError("dataset is truncated")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if self.pos + n > self.end:
            raise DatasetError("an element's length runs past the end of the dataset")
        self.fp.seek(n, 1)
        self.pos += n

    def at_end(self) -> bool:
        return self.pos >= self.end


class _InflateReader:
    """The same interface over a deflated (RFC 1951) dataset, inflating as it goes."""

    CHUNK = 1 << 20

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp
        self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self.buf = b""
        self.pos = 0
        self.eof = False

    def _fill(self, n: int) -> None:
        while len(self.buf) < n and not self.eof:
            raw = self.fp.read(self.CHUNK)
            try:
                self.buf += self.inflater.decompress(raw) if raw else self.inflater.flush()
            except zlib.error as exc:
                raise DatasetError(f"deflated dataset does not inflate: {exc}") from None
            if not raw:
                self.eof = True

    def tell(self) -> int:
        return self.pos

    def read(self, n: int) -> bytes:
        self._fill(n)
        if len(self.buf) < n:
            raise DatasetError("dataset is truncated")
        data, self.buf = self.buf[:n], self.buf[n:]
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        while n > 0:
            step = min(n, self.CHUNK)
            self.read(step)
            n -= step

    def at_end(self) -> bool:
        self._fill(1)
        return not self.buf


def scan_part10(path: str) -> InstanceInfo:
    """Walk the Part 10 file at path; raise DatasetError unless it parses to its end."""
    with open(path, "rb", buffering=65536) as fp:
        fp.seek(0, 2)
        size = fp.tell()
        fp.seek(0)
        header = fp.read(132)
        if len(header) != 132 or header[128:] != b"DICM":
            raise DatasetError("not a Part 10 file (no DICM prefix)")
        meta = _read_file_meta(fp, size)
        info = InstanceInfo(transfer_syntax_uid=meta)
        if meta == DEFLATED:
            reader: _FileReader | _InflateReader = _InflateReader(fp)
        else:
            reader = _FileReader(fp, size)
        walker = _Walker(reader, implicit=meta == IMPLICIT_LE, little=meta != EXPLICIT_BE)
        walker.walk_dataset(info, top_level=True)
    _check(info)
    return info


def _read_file_meta(fp: BinaryIO, size: int) -> str:
    group = fp.read(12)
    if len(group) != 12 or group[:8] != b"\x02\x00\x00\x00UL\x04\x00":
        raise DatasetError("file meta information has no group length")
    end = 144 + struct.unpack("<I", group[8:])[0]
    if end > size:
        raise DatasetError("file meta information is truncated")
    reader = _FileReader(fp, end)
    walker = _Walker(reader, implicit=False, little=True)
    found: dict[int, bytes] = {}
    while not reader.at_end():
        tag, _vr, length = walker.header()
        if length == UNDEFINED or length > MAX_SMALL_VALUE:
            raise DatasetError("file meta information has an invalid element")
        value = reader.read(length)
        if tag == 0x00020010:
            found[tag] = value
    ts = found.get(0x00020010, b"").rstrip(b"\x00 ").decode("ascii", "replace")
    if not ts:
        raise DatasetError("file meta information has no transfer syntax")
    return ts


class _Walker:
    def __init__(self, reader: _FileReader | _InflateReader, implicit: bool, little: bool):
        self.r, self.implicit = reader, implicit
        self.u16, self.u32 = ("<H", "<I") if little else (">H", ">I")

    def header(self) -> tuple[int, bytes, int]:
        raw = self.r.read(8)
        group, elem = struct.unpack(self.u16 + self.u16[1], raw[:4])
        tag = (group << 16) | elem
        if group == 0xFFFE or self.implicit:
            vr = b""
            length = struct.unpack(self.u32, raw[4:])[0]
            if self.implicit and group != 0xFFFE:
                vr = dictionary_vr(tag)
            return tag, vr, length
        vr = raw[4:6]
        if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
            raise DatasetError(f"element ({group:04X},{elem:04X}) has an invalid VR")
        if vr in LONG_VRS:
            return tag, vr, struct.unpack(self.u32, self.r.read(4))[0]
        return tag, vr, struct.unpack(self.u16, raw[6:])[0]

    def walk_dataset(
        self, info: InstanceInfo | None, top_level: bool = False, end: int | None = None
    ) -> None:
        """Walk elements until the reader ends (top level), end (a defined-length item) or an
        item delimiter (an undefined-length item)."""
        while True:
            if end is not None:
                pos = self.r.tell()
                if pos == end:
                    return
                if pos > end:
                    raise DatasetError("an item's elements run past its length")
            elif top_level and self.r.at_end():
                return
            tag, vr, length = self.header()
            if tag == ITEM_END:
                if top_level or end is not None:
                    raise DatasetError("unexpected item delimiter")
                return
            if tag in (ITEM, SEQ_END):
                raise DatasetError("unexpected item or sequence delimiter in a dataset")
            if tag == PIXEL_DATA and top_level and info is not None:
                info.pixel_data_length = -1 if length == UNDEFINED else length
                if length == UNDEFINED:
                    self.walk_fragments()
                else:
                    self.r.skip(length)
                continue
            if vr == b"SQ" or length == UNDEFINED:
                # UN of undefined length holds an implicit VR little endian sequence.
                was, self.implicit = self.implicit, self.implicit or vr == b"UN"
                self.walk_sequence(length)
                self.implicit = was
                continue
            if top_level and info is not None and tag in WANTED:
                if length > MAX_SMALL_VALUE:
                    raise DatasetError(f"{WANTED[tag]} is {length} bytes long")
                _store(info, tag, self.r.read(length), self.u16)
            else:
                self.r.skip(length)

    def walk_sequence(self, length: int) -> None:
        end = None if length == UNDEFINED else self.r.tell() + length
        while True:
            if end is not None and self.r.tell() >= end:
                if self.r.tell() > end:
                    raise DatasetError("a sequence's items run past its length")
                return
            tag, _vr, item_length = self.header()
            if tag == SEQ_END and end is None:
                return
            if tag != ITEM:
                raise DatasetError("a sequence holds something other than items")
            if item_length == UNDEFINED:
                self.walk_dataset(None)
            else:
                self.walk_dataset(None, end=self.r.tell() + item_length)

    def walk_fragments(self) -> None:
        while True:
            tag, _vr, length = self.header()
            if tag == SEQ_END:
                return
            if tag != ITEM or length == UNDEFINED:
                raise DatasetError("encapsulated pixel data holds something other than fragments")
            self.r.skip(length)


def dictionary_vr(tag: int) -> bytes:
    """VR of a tag by the data dictionary (implicit VR); UN when unknown or ambiguous."""
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return b"UN"
    return vr.encode("ascii") if len(vr) == 2 else b"UN"


def _store(info: InstanceInfo, tag: int, value: bytes, u16: str) -> None:
    name = WANTED[tag]
    if tag in US_TAGS:
        if len(value) == 2:  # a malformed value is not ours to refuse: the geometry stays unknown
            setattr(info, name, struct.unpack(u16, value)[0])
    else:
        setattr(info, name, value.rstrip(b"\x00 ").decode("ascii", "replace").strip())


def _check(info: InstanceInfo) -> None:
    """Native pixel data must hold what its geometry says, when the geometry is well formed (a
    malformed value, such as a Number of Frames of `1A`, is stored as received)."""
    if info.pixel_data_length is not None and info.pixel_data_length >= 0:
        try:
            frames = int(info.number_of_frames or "1")
        except ValueError:
            return
        bits = info.rows * info.columns * info.samples_per_pixel * max(frames, 1)
        bits *= info.bits_allocated
        expected = (bits + 7) // 8
        if info.pixel_data_length < expected:
            raise DatasetError(
                f"pixel data is {info.pixel_data_length} bytes; rows x columns x samples x "
                f"frames x bits allocated needs {expected}"
            )
