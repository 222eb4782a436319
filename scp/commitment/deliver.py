"""Sending a report: on the association that asked, while it is open, else on a new association
to the requester's registered address, proposing that we are SCP of Storage Commitment (SCP/SCU
role selection, PS3.7 D.3.3.4), as PS3.4 J.3.3 allows."""

from __future__ import annotations

import logging

from pynetdicom import build_role
from pynetdicom.association import Association

from scp import outgoing
from scp.commitment import SOP_CLASS, WELL_KNOWN_INSTANCE
from scp.commitment.outcome import Report
from scp.remote_aes import RemoteAE
from scp.settings import Settings

LOG = logging.getLogger("scp")
# N-EVENT-REPORT statuses that confirm delivery: success and the warnings (PS3.7 10.1.1.1.8).
CONFIRMED = (0x0000, 0x0001, 0x0107, 0x0116)


def send(assoc: Association, report: Report) -> str:
    """N-EVENT-REPORT on assoc; '' when the peer confirmed it, else why not."""
    try:
        status, _ = assoc.send_n_event_report(
            report.dataset(), report.event_type, SOP_CLASS, WELL_KNOWN_INSTANCE
        )
    except (RuntimeError, ValueError, OSError) as exc:
        return f"not sent: {exc}"
    code = status.get("Status") if status else None
    if code is None:
        return "no response (timeout, abort or invalid response)"
    if code not in CONFIRMED:
        return f"refused by the peer with status 0x{code:04X}"
    return ""


def on_new_association(settings: Settings, remote: RemoteAE, report: Report) -> str:
    """Open an association to remote, send, release; '' when confirmed, else why not."""
    role = build_role(SOP_CLASS, scu_role=False, scp_role=True)
    assoc = outgoing.associate(settings, remote, [SOP_CLASS], [role])
    if assoc is None:
        return f"no association with {remote.ae_title} at {remote.host}:{remote.port}"
    try:
        return send(assoc, report)
    finally:
        if assoc.is_established:
            assoc.release()
