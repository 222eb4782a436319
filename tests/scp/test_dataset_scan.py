"""The dataset walker: what parses is accepted with its identifiers; what lies is refused."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian

from scp.dataset_scan import DatasetError, scan_part10
from tests.scp.conftest import SERIES, STUDY
from tests.support.dicom_files import (
    make_dataset,
    raw_element,
    real_world_files,
    uid,
    write_part10,
)


@pytest.mark.parametrize(
    "name",
    [
        "explicit",
        "implicit",
        "big",
        "deflated",
        "j2k",
        "htj2k",
        "jpeg-lossless",
        "jpeg-baseline",
        "jpeg-ls",
        "rle",
        "sc",
    ],
)
def test_every_transfer_syntax_parses_with_its_identifiers(instances, name) -> None:
    info = scan_part10(str(instances[name]))
    sent = dcmread(instances[name], stop_before_pixels=True)
    assert (info.study_instance_uid, info.series_instance_uid) == (STUDY, SERIES)
    assert info.sop_instance_uid == sent.SOPInstanceUID
    assert info.sop_class_uid == sent.SOPClassUID
    assert info.transfer_syntax_uid == sent.file_meta.TransferSyntaxUID
    assert info.study_date == "20260101"


def _file(tmp_path: Path, ds: Dataset | None = None, ts: str = "1.2.840.10008.1.2.1") -> Path:
    ds = ds or make_dataset(study=uid("a"), series=uid("b"), sop=uid("c"))
    return write_part10(ds, tmp_path / "x.dcm", ts)


def test_nested_sequences_parse_in_explicit_and_implicit_vr(tmp_path: Path) -> None:
    ds = make_dataset(study=uid("a"), series=uid("b"), sop=uid("c"))
    inner = Dataset()
    inner.CodeValue = "123"
    item = Dataset()
    item.ConceptNameCodeSequence = Sequence([inner, inner])
    ds.ContentSequence = Sequence([item, Dataset()])
    for ts in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2"):
        assert scan_part10(str(_file(tmp_path, ds, ts))).sop_instance_uid == uid("c")


@pytest.mark.parametrize("cut", [1, 100, 4000])
def test_truncated_dataset_is_refused(tmp_path: Path, cut: int) -> None:
    path = _file(tmp_path)
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(DatasetError):
        scan_part10(str(path))


def test_element_length_that_lies_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path)
    data = bytearray(path.read_bytes())
    at = data.index(b"\x08\x00\x18\x00UI")  # SOP Instance UID element header
    data[at + 6 : at + 8] = struct.pack("<H", 60000)
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError):
        scan_part10(str(path))


def test_pixel_data_shorter_than_rows_times_columns_is_refused(tmp_path: Path) -> None:
    ds = make_dataset(study=uid("a"), series=uid("b"), sop=uid("c"), rows=64, columns=64)
    ds.Rows = 65
    with pytest.raises(DatasetError, match="pixel data"):
        scan_part10(str(_file(tmp_path, ds)))


@pytest.mark.parametrize(
    ("frames", "sent", "accepted"), [(3, 3, True), (3, 2, False), (2, 1, False)]
)
def test_multi_frame_pixel_data_must_hold_every_frame(tmp_path, frames, sent, accepted) -> None:
    """Number of Frames multiplies what Rows x Columns x Bits Allocated needs."""
    ds = make_dataset(study=uid("a"), series=uid("b"), sop=uid("c"), rows=16, columns=16)
    ds.NumberOfFrames = frames
    ds.PixelData = bytes(16 * 16 * 2 * sent)
    if accepted:
        assert scan_part10(str(_file(tmp_path, ds))).number_of_frames == str(frames)
    else:
        with pytest.raises(DatasetError, match=f"needs {16 * 16 * 2 * frames}$"):
            scan_part10(str(_file(tmp_path, ds)))


def test_one_bit_pixel_data_rounds_up_to_whole_bytes(tmp_path) -> None:
    """1 x 17 pixels of 1 bit need 3 bytes; 2 are short, 4 (3 padded to even) are enough."""
    ds = make_dataset(study=uid("a"), series=uid("b"), sop=uid("c"), rows=1, columns=17, bits=1)
    ds.PixelData = bytes(2)
    with pytest.raises(DatasetError, match=r"needs 3$"):
        scan_part10(str(_file(tmp_path, ds)))
    ds.PixelData = bytes(4)
    assert scan_part10(str(_file(tmp_path, ds))).pixel_data_length == 4


def _inserted_before_sop_uid(path: Path, raw: bytes) -> Path:
    data = path.read_bytes()
    meta_end = 144 + struct.unpack("<I", data[140:144])[0]
    at = data.index(b"\x08\x00\x18\x00", meta_end)  # the dataset's SOP Instance UID
    path.write_bytes(data[:at] + raw + data[at:])
    return path


def test_an_item_delimiter_in_the_dataset_itself_is_refused(tmp_path) -> None:
    path = _inserted_before_sop_uid(_file(tmp_path), b"\xfe\xff\x0d\xe0\x00\x00\x00\x00")
    with pytest.raises(DatasetError, match="unexpected item delimiter"):
        scan_part10(str(path))


def test_a_vr_of_two_capitals_the_standard_lacks_parses_with_a_short_length(tmp_path) -> None:
    unknown = b"\x09\x00\x10\x10ZZ\x02\x00ab" + b"\x09\x00\x11\x10AA\x02\x00cd"
    path = _inserted_before_sop_uid(_file(tmp_path), unknown)
    assert scan_part10(str(path)).sop_instance_uid == uid("c")


# (0040,A730) of 10 bytes holding (0008,0050) "ab" instead of an item.
CONTENT_SEQUENCE = b"\x40\x00\x30\xa7"
ELEMENT_EXPLICIT, ELEMENT_IMPLICIT = (
    b"\x08\x00\x50\x00SH\x02\x00ab",
    b"\x08\x00\x50\x00\x02\x00\x00\x00ab",
)


@pytest.mark.parametrize(
    ("ts", "sequence"),
    [
        (
            "1.2.840.10008.1.2.1",
            CONTENT_SEQUENCE + b"SQ\x00\x00\x0a\x00\x00\x00" + ELEMENT_EXPLICIT,
        ),
        ("1.2.840.10008.1.2", CONTENT_SEQUENCE + b"\x0a\x00\x00\x00" + ELEMENT_IMPLICIT),
    ],
    ids=["explicit", "implicit"],
)
def test_a_defined_length_sequence_holding_no_items_is_refused(tmp_path, ts, sequence) -> None:
    """Content Sequence (SQ by the dictionary in implicit VR) of 10 bytes holding an element,
    not an item: a sequence is walked, not skipped, whatever its length."""
    path = _inserted_before_sop_uid(_file(tmp_path, None, ts), sequence)
    with pytest.raises(DatasetError, match="other than items"):
        scan_part10(str(path))


def test_a_file_meta_group_without_a_dataset_parses_to_no_identifiers(tmp_path) -> None:
    """The SCP then refuses it: its SOP Instance UID is not the request's."""
    path = _file(tmp_path)
    data = path.read_bytes()
    end = 144 + struct.unpack("<I", data[140:144])[0]
    path.write_bytes(data[:end])
    info = scan_part10(str(path))
    assert (info.sop_instance_uid, info.pixel_data_length) == ("", None)


def test_a_deflated_dataset_longer_than_one_read_inflates_to_its_end(tmp_path) -> None:
    """Random pixels do not compress: the deflated stream spans several 1 MiB reads."""
    ds = make_dataset(study=uid("a"), series=uid("b"), sop=uid("c"), rows=1024, columns=1024)
    path = _file(tmp_path, ds, DeflatedExplicitVRLittleEndian)
    assert path.stat().st_size > 2 * 2**20 * 0.9
    assert scan_part10(str(path)).pixel_data_length == 2 * 2**20


@pytest.mark.parametrize(("sent", "accepted"), [(3, True), (1, False), (0, False)])
def test_colour_pixel_data_must_hold_every_sample(tmp_path, sent, accepted) -> None:
    """Samples per Pixel multiplies the length too; empty pixel data holds nothing."""
    ds = make_dataset(study=uid("a"), series=uid("b"), sop=uid("c"), rows=8, columns=8, bits=8)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.PixelData = bytes(8 * 8 * sent)
    if accepted:
        assert scan_part10(str(_file(tmp_path, ds))).samples_per_pixel == 3
    else:
        with pytest.raises(DatasetError, match=r"needs 192$"):
            scan_part10(str(_file(tmp_path, ds)))


def test_an_implicit_vr_element_the_dictionary_lacks_parses(tmp_path) -> None:
    private = b"\x09\x00\x10\x10\x02\x00\x00\x00ab"  # (0009,1010), 2 bytes, implicit VR
    path = _inserted_before_sop_uid(_file(tmp_path, None, "1.2.840.10008.1.2"), private)
    assert scan_part10(str(path)).sop_instance_uid == uid("c")


def test_a_broken_file_meta_group_is_refused_for_what_it_is(tmp_path) -> None:
    good = _file(tmp_path).read_bytes()
    meta_end = 144 + struct.unpack("<I", good[140:144])[0]
    cases = {
        "has no group length": (132, b"\x02\x00\x01\x00"),  # another element comes first
        "has an invalid element": (good.index(b"\x02\x00\x02\x00UI") + 6, b"\xd0\x07"),
    }
    for message, (at, raw) in cases.items():
        path = tmp_path / "x.dcm"
        path.write_bytes(good[:at] + raw + good[at + len(raw) :])
        with pytest.raises(DatasetError, match=f"file meta information {message}"):
            scan_part10(str(path))
    (tmp_path / "x.dcm").write_bytes(good[: meta_end - 1])
    with pytest.raises(DatasetError, match="file meta information is truncated"):
        scan_part10(str(tmp_path / "x.dcm"))


def test_a_missing_geometry_value_leaves_the_pixel_data_unchecked_but_samples_default_to_1(
    tmp_path,
) -> None:
    ds = make_dataset(study=uid("a"), series=uid("b"), sop=uid("c"), rows=8, columns=8, bits=8)
    del ds.BitsAllocated
    ds[0x7FE00010] = raw_element(0x7FE00010, "OB", bytes(2))  # short, but against what?
    assert scan_part10(str(_file(tmp_path, ds))).pixel_data_length == 2
    ds = make_dataset(study=uid("a"), series=uid("b"), sop=uid("c"), rows=8, columns=8, bits=8)
    del ds.SamplesPerPixel
    assert scan_part10(str(_file(tmp_path, ds))).samples_per_pixel == 1
    ds.PixelData = bytes(32)
    with pytest.raises(DatasetError, match=r"needs 64$"):
        scan_part10(str(_file(tmp_path, ds)))


@pytest.mark.parametrize(("length", "accepted"), [(1024, True), (1025, False)])
def test_a_wanted_value_may_be_1024_bytes_long_and_no_longer(tmp_path, length, accepted) -> None:
    ds = make_dataset(study=uid("a"), series=uid("b"), sop=uid("c"))
    del ds.StudyDate
    date = b"\x08\x00\x20\x00DA" + struct.pack("<H", length) + b"2" * length  # odd: as sent
    path = _inserted_before_sop_uid(_file(tmp_path, ds), date)
    if accepted:
        assert scan_part10(str(path)).study_date == "2" * length
    else:
        with pytest.raises(DatasetError, match=f"study_date is {length} bytes long"):
            scan_part10(str(path))


def test_an_odd_one_byte_element_is_skipped_in_a_deflated_dataset(tmp_path) -> None:
    """Odd lengths break the standard but real devices send them (the SCP stores as received)."""
    odd = b"\x09\x00\x10\x10LO\x01\x00X"  # (0009,1010) LO of 1 byte
    plain = _inserted_before_sop_uid(_file(tmp_path), odd).read_bytes()
    dataset = plain[144 + struct.unpack("<I", plain[140:144])[0] :]
    deflated = _file(tmp_path, None, DeflatedExplicitVRLittleEndian).read_bytes()
    meta_end = 144 + struct.unpack("<I", deflated[140:144])[0]
    deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    path = tmp_path / "x.dcm"
    path.write_bytes(deflated[:meta_end] + deflate.compress(dataset) + deflate.flush())
    assert scan_part10(str(path)).sop_instance_uid == uid("c")


def test_a_file_without_the_dicm_prefix_is_refused_as_not_part10(tmp_path) -> None:
    path = tmp_path / "x.dcm"
    path.write_bytes(bytes(128) + b"DICX" + bytes(200))
    with pytest.raises(DatasetError, match="not a Part 10 file"):
        scan_part10(str(path))


def test_encapsulated_pixel_data_holding_an_element_is_refused(instances, tmp_path) -> None:
    data = instances["j2k"].read_bytes()
    at = data.index(b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff") + 12
    path = tmp_path / "x.dcm"
    path.write_bytes(data[:at] + b"\x08\x00\x50\x00SH\x02\x00ab" + data[at:])
    with pytest.raises(DatasetError, match="other than fragments"):
        scan_part10(str(path))


@pytest.mark.parametrize("vr", [b"@A", b"A@", b"[A", b"A["])
def test_a_vr_that_is_not_two_capitals_is_refused(tmp_path, vr) -> None:
    path = _inserted_before_sop_uid(_file(tmp_path), b"\x09\x00\x10\x10" + vr + b"\x02\x00ab")
    with pytest.raises(DatasetError, match="invalid VR"):
        scan_part10(str(path))


def test_undefined_length_items_end_at_their_delimiter(tmp_path) -> None:
    items = (
        CONTENT_SEQUENCE
        + b"SQ\x00\x00\xff\xff\xff\xff"  # undefined length
        + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"  # an item of undefined length
        + ELEMENT_EXPLICIT
        + b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"  # its delimiter
        + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # the sequence's
    )
    path = _inserted_before_sop_uid(_file(tmp_path), items)
    assert scan_part10(str(path)).sop_instance_uid == uid("c")


def test_what_follows_the_pixel_data_is_walked_too(tmp_path) -> None:
    path = _file(tmp_path)
    padding = b"\xfc\xff\xfc\xffOB\x00\x00" + struct.pack("<I", 100) + bytes(10)
    path.write_bytes(path.read_bytes() + padding)  # Data Set Trailing Padding that lies
    with pytest.raises(DatasetError, match="runs past the end"):
        scan_part10(str(path))


def test_encapsulated_pixel_data_is_reported_as_length_minus_one(instances) -> None:
    assert scan_part10(str(instances["j2k"])).pixel_data_length == -1


def test_zero_frames_count_as_one_and_a_missing_column_count_leaves_it_unchecked(tmp_path):
    ds = make_dataset(study=uid("a"), series=uid("b"), sop=uid("c"), rows=8, columns=8, bits=8)
    ds.NumberOfFrames = 0
    ds.PixelData = b""
    with pytest.raises(DatasetError, match=r"needs 64$"):
        scan_part10(str(_file(tmp_path, ds)))
    del ds.NumberOfFrames, ds.Columns
    assert scan_part10(str(_file(tmp_path, ds))).pixel_data_length == 0


def test_a_file_meta_element_of_1024_bytes_is_accepted(tmp_path) -> None:
    good = _file(tmp_path).read_bytes()
    length = struct.unpack("<I", good[140:144])[0]
    extra = b"\x02\x00\x00\x01UI\x00\x04" + b"1" * 1024  # (0002,0100) of 1024 bytes
    meta_end = 144 + length
    data = good[:140] + struct.pack("<I", length + len(extra)) + good[144:meta_end]
    path = tmp_path / "x.dcm"
    path.write_bytes(data + extra + good[meta_end:])
    assert scan_part10(str(path)).sop_instance_uid == uid("c")


@pytest.mark.parametrize("missing", ["StudyInstanceUID", "SeriesInstanceUID"])
def test_dataset_without_identifiers_parses_for_the_scp_to_refuse(tmp_path, missing) -> None:
    """The walker reports what is there; the SCP refuses it with NOT_IMPORTABLE (0xC213)."""
    ds = make_dataset(study=uid("a"), series=uid("b"), sop=uid("c"))
    delattr(ds, missing)
    info = scan_part10(str(_file(tmp_path, ds)))
    assert info.sop_instance_uid == uid("c")
    field = {"StudyInstanceUID": "study_instance_uid", "SeriesInstanceUID": "series_instance_uid"}
    assert getattr(info, field[missing]) == ""


@pytest.mark.filterwarnings("ignore:Invalid value")
def test_real_world_files_parse(tmp_path: Path) -> None:
    files = real_world_files(tmp_path, uid("w"), uid("w", 1))
    assert b"LO\x03\x00ODD" in files["private-odd-length"].read_bytes()
    assert b"\xff\xff\xff\xff" in files["undefined-length-sequence"].read_bytes()
    for name, path in files.items():
        assert scan_part10(str(path)).sop_instance_uid == uid(uid("w"), name), name


def test_malformed_rows_leave_the_geometry_unchecked(tmp_path: Path) -> None:
    ds = make_dataset(study=uid("a"), series=uid("b"), sop=uid("c"))
    ds[0x00280010] = raw_element(0x00280010, "US", b"\x40\x00\x00\x00")
    assert scan_part10(str(_file(tmp_path, ds))).rows == 0


def test_encapsulated_pixel_data_without_its_delimiter_is_refused(instances, tmp_path) -> None:
    data = instances["j2k"].read_bytes()
    assert data.endswith(b"\xfe\xff\xdd\xe0\x00\x00\x00\x00")
    path = tmp_path / "x.dcm"
    path.write_bytes(data[:-8])
    with pytest.raises(DatasetError):
        scan_part10(str(path))


def test_corrupt_deflate_stream_is_refused(instances, tmp_path) -> None:
    data = bytearray(instances["deflated"].read_bytes())
    header_len = 144 + int.from_bytes(data[140:144], "little")
    data[header_len + 10 : header_len + 40] = b"\xff" * 30
    path = tmp_path / "x.dcm"
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError):
        scan_part10(str(path))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\0" * 131,
        b"\0" * 128 + b"DICX" + b"\0" * 20,
        b"\0" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00\xff\xff\x00\x00",
    ],
)
def test_not_a_part10_file_is_refused(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "x.dcm"
    path.write_bytes(data)
    with pytest.raises(DatasetError):
        scan_part10(str(path))
