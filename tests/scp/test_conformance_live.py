"""The Conformance Statement is true: a running SCP accepts exactly the SOP classes and transfer
syntaxes docs/conformance-statement.md lists, and announces the implementation identity, PDU
size and rejections it states.

GIVEN the committed statement (tests/generator/test_documents.py keeps it current)
WHEN a pynetdicom SCU proposes every SOP class and transfer syntax pydicom knows
THEN what the SCP accepts equals what the statement lists, no more and no less.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterator

import pytest
from pydicom._uid_dict import UID_dictionary
from pynetdicom import AE, _config, build_context
from pynetdicom.sop_class import CTImageStorage, StorageCommitmentPushModel, Verification

from generator.documents.conformance import SCP_TLS_MINIMUM, facts
from tests.scp.test_refusals import _file as instance_file
from tests.support.dicom_files import uid
from tests.support.scp import REPO, ScpProcess
from tests.support.tls import make_pki

STATEMENT = (REPO / "docs" / "conformance-statement.md").read_text()
EXPLICIT_LE = "1.2.840.10008.1.2.1"
MAX_CONTEXTS = 120  # an association carries at most 128 presentation contexts


def listed(after: str) -> list[str]:
    """UIDs of the first Markdown table after the line that starts with `after`."""
    lines = STATEMENT.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(after))
    rows = []
    for line in lines[start + 1 :]:
        if rows and not line.startswith("|"):
            break
        if line.startswith("|"):
            rows.append(line)
    return [m.group(1) for row in rows if (m := re.search(r"`([0-9][0-9.]*)`", row))]


def known(kind: str) -> set[str]:
    """Every UID of this kind in pydicom's dictionary (the standard's registry of UIDs)."""
    return {uid for uid, entry in UID_dictionary.items() if entry[1] == kind}


@pytest.fixture(scope="module")
def scp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScpProcess]:
    tmp = tmp_path_factory.mktemp("conformance")
    with ScpProcess(log_dir=tmp, storage=str(tmp / "store")) as process:
        yield process


def accepted(port: int, contexts: list) -> list:
    """Accepted presentation contexts, proposing `contexts` over as many associations as needed."""
    result = []
    for i in range(0, len(contexts), MAX_CONTEXTS):
        ae = AE(ae_title="CONFORMANCE")
        ae.requested_contexts = contexts[i : i + MAX_CONTEXTS]
        assoc = ae.associate("127.0.0.1", port, ae_title="STORESCP")
        assert assoc.is_established, "association refused"
        result += assoc.accepted_contexts
        assoc.release()
    return result


def test_accepts_exactly_the_storage_classes_listed(scp: ScpProcess) -> None:
    storage = listed("Storage SOP classes (")
    assert len(storage) > 100, "statement lists too few storage classes: parser broken?"
    others = listed("#### 2.2.1")  # Verification, Storage Commitment Push Model
    assert {Verification, StorageCommitmentPushModel} == set(others)
    candidates = sorted(known("SOP Class") | set(storage) | set(others))
    contexts = [build_context(uid, EXPLICIT_LE) for uid in candidates]
    got = {str(cx.abstract_syntax) for cx in accepted(scp.port, contexts)}
    assert got - set(others) == set(storage)
    assert set(others) <= got


def test_accepts_exactly_the_transfer_syntaxes_listed(scp: ScpProcess) -> None:
    syntaxes = listed("#### 2.2.3")
    assert EXPLICIT_LE in syntaxes
    candidates = sorted(known("Transfer Syntax") | set(syntaxes))
    contexts = [build_context(CTImageStorage, ts) for ts in candidates]
    got = {str(cx.transfer_syntax[0]) for cx in accepted(scp.port, contexts)}
    assert got == set(syntaxes)


def test_picks_the_first_syntax_of_the_statement_order(scp: ScpProcess) -> None:
    syntaxes = listed("#### 2.2.3")
    later, earlier = syntaxes[-1], syntaxes[1]
    (cx,) = accepted(scp.port, [build_context(CTImageStorage, [later, earlier])])
    assert cx.transfer_syntax[0] == earlier


def test_verification_syntaxes(scp: ScpProcess) -> None:
    expected = [uid for uid, _ in facts().verification_syntaxes]
    candidates = sorted(known("Transfer Syntax"))
    got = {
        str(cx.transfer_syntax[0])
        for cx in accepted(scp.port, [build_context(Verification, ts) for ts in candidates])
    }
    assert got == set(expected)
    assert all(f"`{uid}`" in STATEMENT for uid in expected)


def test_implementation_identity_and_pdu_size(scp: ScpProcess) -> None:
    ae = AE(ae_title="CONFORMANCE")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="STORESCP")
    assert assoc.is_established
    acceptor = assoc.acceptor
    identity = (acceptor.implementation_class_uid, acceptor.implementation_version_name)
    pdu = acceptor.maximum_length
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    c = facts()
    assert identity == (c.implementation_class_uid, c.implementation_version_name)
    assert pdu == c.max_pdu_size
    assert f"| Implementation Class UID | `{identity[0]}` |" in STATEMENT
    assert f"| Implementation Version Name | `{identity[1]}` |" in STATEMENT
    assert f"| Maximum PDU size received | {pdu:,} bytes" in STATEMENT


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_statuses_returned_are_listed(scp: ScpProcess, tmp_path, monkeypatch) -> None:
    """Success and two refusals, each answered with a status of the statement's table."""
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    ae = AE(ae_title="CONFORMANCE")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="STORESCP")
    sent = [
        instance_file(tmp_path, "good"),
        instance_file(tmp_path, "bad-uid", StudyInstanceUID="1.2.840.abc"),
        instance_file(tmp_path, "mismatch", SOPInstanceUID=uid("someone else")),
    ]
    statuses = [assoc.send_c_store(str(path)).Status for path in sent]
    assoc.release()
    listed_codes = {s.code for s in facts().statuses}
    assert statuses[0] == 0x0000 and statuses[1] != 0x0000 and statuses[2] != 0x0000
    for status in statuses:
        assert status in listed_codes
        assert f"| `0x{status:04X}` |" in STATEMENT


def _code(text: str) -> int:
    return int(text.split()[0])


def test_rejections_as_stated(tmp_path) -> None:
    """The AE-title and limit rows of the rejection table, each provoked on a running SCP."""
    called, calling, limit = (
        tuple(_code(x) for x in (r.result, r.source, r.reason)) for r in facts().rejections[:3]
    )
    settings = {"require_called_ae_title": True, "require_calling_ae_title": "CT01"}
    with ScpProcess(
        log_dir=tmp_path, storage=str(tmp_path), maximum_associations=1, **settings
    ) as s:

        def associate(calling_ae: str, called_ae: str):
            ae = AE(ae_title=calling_ae)
            ae.add_requested_context(Verification)
            return ae.associate("127.0.0.1", s.port, ae_title=called_ae)

        def rejection(assoc) -> tuple[int, int, int]:
            assert assoc.is_rejected
            rj = assoc.acceptor.primitive
            return rj.result, rj.result_source, rj.diagnostic

        assert rejection(associate("CT01", "SOMEONE")) == called
        assert rejection(associate("MR01", "STORESCP")) == calling
        first = associate("CT01", "STORESCP")
        assert first.is_established
        try:
            assert rejection(associate("CT01", "STORESCP")) == limit
        finally:
            first.release()


def _handshake(port: int, ca: str, version: ssl.TLSVersion) -> str:
    """The TLS version negotiated by a client that offers only `version`."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer old protocols at all
    ctx.minimum_version = ctx.maximum_version = version
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return str(tls.version())


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_scp_tls_versions_as_stated(tmp_path) -> None:
    """The SCP's own TLS accepts the stated minimum and later, and refuses older clients
    with a protocol-version alert from the server."""
    assert SCP_TLS_MINIMUM == "TLSv1.2" and f"accepts {SCP_TLS_MINIMUM} and later" in STATEMENT
    pki = make_pki(tmp_path / "pki")
    settings = {"tls_cert": str(pki.server_cert), "tls_key": str(pki.server_key)}
    with ScpProcess(log_dir=tmp_path, storage=str(tmp_path / "store"), **settings) as s:
        assert _handshake(s.port, str(pki.ca), ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
        assert _handshake(s.port, str(pki.ca), ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
        with pytest.raises(ssl.SSLError, match="alert protocol version"):
            _handshake(s.port, str(pki.ca), ssl.TLSVersion.TLSv1_1)
