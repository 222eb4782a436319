"""The hand-encoded C-STORE-RSP and file meta equal what pydicom/pynetdicom would encode."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import create_file_meta, decode, encode

from scp.association import encode_file_meta, encode_store_rsp

CT = "1.2.840.10008.5.1.4.1.1.2"
SOPS = ["1.2.3", "1.2.826.0.1.3680043.10.1234.1", "1." + "2" * 62]  # odd, even, 64 long


@pytest.mark.parametrize("sop", SOPS)
@pytest.mark.parametrize("ts", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.4.50"])
def test_file_meta_is_pynetdicoms_byte_for_byte(sop: str, ts: str) -> None:
    theirs = DicomBytesIO()
    write_file_meta_info(
        theirs, create_file_meta(sop_class_uid=CT, sop_instance_uid=sop, transfer_syntax=ts)
    )
    ours = encode_file_meta(CT, sop, ts)
    assert ours == theirs.getvalue()
    meta = dcmread(BytesIO(b"\0" * 128 + b"DICM" + ours)).file_meta
    assert (meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID) == (sop, ts)


@pytest.mark.parametrize("sop", SOPS)
@pytest.mark.parametrize(("message_id", "status"), [(1, 0x0000), (65535, 0xA700), (7, 0xC210)])
def test_store_response_is_pynetdicoms_byte_for_byte(
    sop: str, message_id: int, status: int
) -> None:
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = message_id
    rsp.AffectedSOPClassUID = CT
    rsp.AffectedSOPInstanceUID = sop
    rsp.Status = status
    message = C_STORE_RSP()
    message.primitive_to_message(rsp)
    theirs = encode(message.command_set, True, True)
    ours = encode_store_rsp(message_id, status, CT, sop)
    assert ours == theirs
    decoded = decode(BytesIO(ours), True, True)
    assert (decoded.Status, decoded.MessageIDBeingRespondedTo, decoded.CommandField) == (
        status,
        message_id,
        0x8001,
    )
