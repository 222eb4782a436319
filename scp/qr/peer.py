"""The association C-MOVE/C-GET sub-operations go on, watched through pynetdicom's events (the
supported seam: handlers bound in AE.associate's kwargs, or Association.bind for C-GET's
calling association)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dimse_messages import C_STORE_RQ, C_STORE_RSP

from scp.services import Handler


class StorePeer:
    """The peer of our C-STOREs: its association once accepted, and how many C-STORE requests
    went out on it and how many responses came back. A request left without a response means
    the peer closed, aborted or timed out; pynetdicom's reactor marks the association so a
    moment later, and a C-STORE sent before that waits DIMSE_TIMEOUT for nothing."""

    def __init__(self, assoc: Association | None = None) -> None:
        self.assoc = assoc
        self.requests = self.responses = 0

    def handlers(self) -> list[Handler]:
        """For AE.associate(evt_handlers=...): the association and its C-STOREs."""
        return [
            (evt.EVT_ACCEPTED, self._accepted),
            (evt.EVT_DIMSE_SENT, self._sent),
            (evt.EVT_DIMSE_RECV, self._received),
        ]

    @contextmanager
    def watching(self) -> Iterator[StorePeer]:
        """Count the C-STOREs of an association opened by the peer (C-GET) while in the block."""
        assert self.assoc is not None
        self.assoc.bind(evt.EVT_DIMSE_SENT, self._sent)
        self.assoc.bind(evt.EVT_DIMSE_RECV, self._received)
        try:
            yield self
        finally:
            self.assoc.unbind(evt.EVT_DIMSE_SENT, self._sent)
            self.assoc.unbind(evt.EVT_DIMSE_RECV, self._received)

    @property
    def gone(self) -> bool:
        """No use sending it more: not established, or a C-STORE went unanswered."""
        assoc = self.assoc
        return assoc is None or not assoc.is_established or self.responses < self.requests

    def _accepted(self, event: evt.Event) -> None:
        self.assoc = event.assoc

    def _sent(self, event: evt.Event) -> None:
        if isinstance(event.message, C_STORE_RQ):
            self.requests += 1

    def _received(self, event: evt.Event) -> None:
        if isinstance(event.message, C_STORE_RSP):
            self.responses += 1
