"""Query/Retrieve SCP over HealthImaging: C-FIND (Patient Root and Study Root) from QIDO-RS,
C-MOVE to the Move Destination's address in REMOTE_AES and C-GET on the calling association,
each instance fetched with WADO-RS (GetDICOMInstance). Offered when HEALTHIMAGING_DATASTORE_ID
names the data store."""

from __future__ import annotations

import io
import itertools
import logging
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from scp import statuses
from scp.healthimaging.client import DicomWebClient
from scp.healthimaging.errors import DicomWebError, DicomWebUnavailable
from scp.outgoing import OUTGOING_HANDLERS, client_tls
from scp.qr.peer import StorePeer
from scp.qr.search import IdentifierError, Search, instances, level_of, response_identifier
from scp.qr.syntaxes import (
    EXPLICIT_LE,
    STORED,
    Accepted,
    accepted_syntaxes,
    proposed_contexts,
    sendable,
    wanted,
)
from scp.remote_aes import QUERY, RETRIEVE
from scp.services import Context, Handler, Service
from scp.settings import Settings

LOG = logging.getLogger("scp")
FIND_MODELS = (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)
RETRIEVE_MODELS = (
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelMove,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelGet,
)
STUDY_ROOT = frozenset(
    {
        StudyRootQueryRetrieveInformationModelFind,
        StudyRootQueryRetrieveInformationModelMove,
        StudyRootQueryRetrieveInformationModelGet,
    }
)
# GetDICOMInstance requests at once per C-MOVE/C-GET: HealthImaging allows 50 TPS (burst 100) per
# account and Region ([THROTTLE] in scp/healthimaging/__init__.py); above it the client's
# backoff paces the requests.
IN_FLIGHT = 4
# A WADO-RS answer that the transfer syntax asked for cannot be given (PS3.18 8.7.3.5 and
# 9.4.2.4: 400 Bad Request, 406 Not Acceptable): the instance is asked for again uncompressed.
REFUSED_SYNTAX = frozenset({400, 406})
# Final C-FIND status when HealthImaging's 10,000-record cap cut the results short: a warning
# (PS3.7 C.3: 0xBxxx), with an Error Comment saying so.
CAPPED = 0xB000
CANCEL = 0xFE00
OUT_OF_RESOURCES = 0xA700  # HealthImaging throttled or unavailable until the budget ran out
UNABLE_TO_PROCESS = 0xC000  # HealthImaging refused the search
BAD_IDENTIFIER = 0xA900  # Identifier does not match SOP Class
MOVE_DESTINATION_UNKNOWN = 0xA801
UNABLE_TO_LIST = 0xC001  # C-MOVE/C-GET: the instances could not be listed
NOT_AUTHORISED = statuses.NOT_AUTHORISED.code
REFUSED_MOVE = 0xC514  # pynetdicom's status for a C-MOVE handler failing before its destination
STATUSES = (
    (0xFF00, "Pending", "one match (C-FIND); one sub-operation done (C-MOVE, C-GET)"),
    (0x0000, "Success", "every match, or every instance, was sent"),
    (0xB000, "Warning", "C-MOVE, C-GET: sub-operations failed (Failed SOP Instance UID List)"),
    (
        CAPPED,
        "Warning",
        "C-FIND: a search reached HealthImaging's 10,000-record cap: there may be more",
    ),
    (
        0xA702,
        "Refused: out of resources",
        "C-MOVE, C-GET: every sub-operation failed (Failed SOP Instance UID List)",
    ),
    (CANCEL, "Cancel", "C-CANCEL received: the search, or the sub-operations, stopped"),
    (
        BAD_IDENTIFIER,
        "Identifier does not match SOP Class",
        "no level, an unknown one, or PATIENT in the Study Root model",
    ),
    (OUT_OF_RESOURCES, "Out of resources", "HealthImaging throttled or unavailable"),
    (UNABLE_TO_PROCESS, "Unable to process", "HealthImaging refused the search"),
    (MOVE_DESTINATION_UNKNOWN, "Move destination unknown", "not in REMOTE_AES"),
    (
        NOT_AUTHORISED,
        "Refused: not authorised",
        "C-FIND, C-GET: the calling AE lacks `query` (C-FIND) or `retrieve` (C-GET) in REMOTE_AES",
    ),
    (
        REFUSED_MOVE,
        "Unable to process",
        "C-MOVE: the calling AE lacks `retrieve` in REMOTE_AES (pynetdicom lets a C-MOVE "
        "handler refuse only with this status or 0xA801)",
    ),
    (UNABLE_TO_LIST, "Unable to process", "C-MOVE/C-GET: the instances could not be listed"),
)


def _status(code: int, comment: str) -> Dataset:
    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = comment[:64]
    return ds


def _failure(exc: Exception) -> Dataset:
    if isinstance(exc, IdentifierError):
        return _status(BAD_IDENTIFIER, str(exc))
    reason = getattr(exc, "reason", str(exc))  # the full message, path included, is logged
    if isinstance(exc, DicomWebUnavailable):
        return _status(OUT_OF_RESOURCES, f"HealthImaging unavailable: {reason}")
    return _status(UNABLE_TO_PROCESS, f"HealthImaging refused: {reason}")


def _calling(assoc: Any) -> str:
    return assoc.requestor.ae_title.strip()


class NotAccepted(ValueError):
    """The peer accepted no presentation context for the instance's SOP Class."""


def _failed(record: Dataset) -> Dataset:
    """A failed sub-operation: a data set with no SOP Class, whose C-STORE pynetdicom counts as
    failed and lists in Failed SOP Instance UID List (service_class.py, _move_scp/_get_scp,
    "An exception implies a C-STORE failure")."""
    failed = Dataset()
    failed.SOPInstanceUID = record.SOPInstanceUID
    return failed


class _FromHealthImaging(Service):
    """A Query/Retrieve service answered from HealthImaging's DICOMweb: offered with a data
    store only, for the information models it names."""

    models: tuple[str, ...] = ()

    def __init__(self, settings: Settings, client: DicomWebClient) -> None:
        self.settings, self.client = settings, client

    @classmethod
    def contexts(cls, settings: Settings) -> list[Context]:
        if not settings.healthimaging_datastore_id:
            return []
        return [Context(uid) for uid in cls.models]


class QueryService(_FromHealthImaging):
    """C-FIND of both information models, levels PATIENT to IMAGE."""

    name = "Query/Retrieve - FIND"
    permission = QUERY
    models = FIND_MODELS

    def handlers(self) -> list[Handler]:
        return [(evt.EVT_C_FIND, self.on_find)]

    def on_find(self, event: evt.Event) -> Iterator[tuple[Any, Dataset | None]]:
        search = Search(self.client, self.settings.qido_page_size, lambda: event.is_cancelled)
        identifier = event.identifier
        count = 0
        try:
            study_root = event.request.AffectedSOPClassUID in STUDY_ROOT
            level = level_of(identifier, study_root)
            for record in search.records(identifier, level):
                count += 1
                ae_title = self.settings.ae_title
                yield 0xFF00, response_identifier(identifier, record, level, ae_title)
        except (IdentifierError, DicomWebError) as exc:
            LOG.info(
                "find-failed",
                extra={
                    "fields": {
                        "event": "find-failed",
                        "callingAETitle": _calling(event.assoc),
                        "matches": count,
                        "error": str(exc),
                    }
                },
            )
            yield _failure(exc), None
            return
        if event.is_cancelled:
            yield CANCEL, None
        elif search.capped:
            LOG.info(
                "find-capped",
                extra={
                    "fields": {
                        "event": "find-capped",
                        "callingAETitle": _calling(event.assoc),
                        "matches": count,
                    }
                },
            )
            yield _status(CAPPED, "HealthImaging 10,000-record cap reached; narrow the query"), None
        else:
            LOG.info(
                "find-done",
                extra={
                    "fields": {
                        "event": "find-done",
                        "callingAETitle": _calling(event.assoc),
                        "queryLevel": level,
                        "matches": count,
                    }
                },
            )


class RetrieveService(_FromHealthImaging):
    """C-MOVE to a registered destination and C-GET on the calling association."""

    name = "Query/Retrieve - MOVE and GET"
    permission = RETRIEVE
    models = RETRIEVE_MODELS

    def handlers(self) -> list[Handler]:
        return [(evt.EVT_C_MOVE, self.on_move), (evt.EVT_C_GET, self.on_get)]

    def _listing(self, event: evt.Event) -> list[Dataset]:
        search = Search(self.client, self.settings.qido_page_size, lambda: event.is_cancelled)
        study_root = event.request.AffectedSOPClassUID in STUDY_ROOT
        found = list(instances(search, event.identifier, study_root))
        if search.capped:
            LOG.info(
                "retrieve-capped",
                extra={
                    "fields": {
                        "event": "retrieve-capped",
                        "callingAETitle": _calling(event.assoc),
                        "instances": len(found),
                    }
                },
            )
        return found

    def _get(self, record: Dataset, syntax: str) -> Dataset:
        data = self.client.retrieve_instance(
            str(record.StudyInstanceUID),
            str(record.SeriesInstanceUID),
            str(record.SOPInstanceUID),
            syntax,
        )
        return pydicom.dcmread(io.BytesIO(data))

    def _fetch(self, record: Dataset, accepted: Accepted) -> Dataset:
        """The instance in a transfer syntax the peer accepted (scp/qr/syntaxes.py's rule)."""
        syntax = wanted(record, accepted)
        if syntax is None:
            raise NotAccepted(f"SOP Class {record.get('SOPClassUID', '?')} not accepted")
        if syntax == STORED:
            try:
                ds = self._get(record, STORED)
            except DicomWebError as exc:
                if isinstance(exc, DicomWebUnavailable) or exc.status not in REFUSED_SYNTAX:
                    raise
            else:
                if sendable(ds.file_meta.TransferSyntaxUID, str(ds.SOPClassUID), accepted):
                    return ds
        return self._get(record, EXPLICIT_LE)

    def _fetched(
        self, found: list[Dataset], accepted: Accepted
    ) -> Iterator[tuple[Dataset, Dataset | Exception]]:
        """Each record with its instance, or why it could not be fetched, in order, with up to
        IN_FLIGHT GetDICOMInstance requests at once."""
        records = iter(found)
        window: deque[tuple[Dataset, Future[Dataset]]] = deque()
        with ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="wado-rs") as pool:
            try:
                for record in itertools.islice(records, IN_FLIGHT):
                    window.append((record, pool.submit(self._fetch, record, accepted)))
                while window:
                    record, future = window.popleft()
                    following = next(records, None)
                    if following is not None:
                        window.append((following, pool.submit(self._fetch, following, accepted)))
                    try:
                        outcome: Dataset | Exception = future.result()
                    except (DicomWebError, ValueError, OSError) as exc:
                        outcome = exc
                    yield record, outcome
            finally:
                for _, future in window:
                    future.cancel()

    def _sub_operations(
        self, event: evt.Event, found: list[Dataset], peer: StorePeer
    ) -> Iterator[Any]:
        """The sub-operations to `peer` (the Move Destination's association, known once
        pynetdicom opened it after the count; the calling one for C-GET): each instance
        fetched in a syntax it accepted; once it is gone, the rest failed unfetched."""
        yield len(found)
        accepted = accepted_syntaxes(peer.assoc.accepted_contexts) if peer.assoc else {}
        fetched = self._fetched(found, accepted)
        for index, (record, outcome) in enumerate(fetched):
            if event.is_cancelled:
                fetched.close()
                yield CANCEL, None
                return
            if peer.gone:
                fetched.close()
                LOG.info(
                    "retrieve-peer-lost",
                    extra={
                        "fields": {
                            "event": "retrieve-peer-lost",
                            "callingAETitle": _calling(event.assoc),
                            "instances": len(found) - index,
                        }
                    },
                )
                for unsent in found[index:]:
                    yield 0xFF00, _failed(unsent)
                return
            if isinstance(outcome, Dataset):
                yield 0xFF00, outcome
                continue
            LOG.info(
                "retrieve-failed",
                extra={
                    "fields": {
                        "event": "retrieve-failed",
                        "callingAETitle": _calling(event.assoc),
                        "sopInstanceUID": str(record.SOPInstanceUID),
                        "error": str(outcome),
                    }
                },
            )
            yield 0xFF00, _failed(record)

    def on_move(self, event: evt.Event) -> Iterator[Any]:
        title = str(event.move_destination).strip()
        remote = self.settings.remote_aes.get(title)
        if remote is None:
            LOG.info(
                "move-unknown-destination",
                extra={
                    "fields": {
                        "event": "move-unknown-destination",
                        "callingAETitle": _calling(event.assoc),
                        "moveDestination": title,
                    }
                },
            )
            yield None, None
            return
        try:
            found = self._listing(event)
        except (IdentifierError, DicomWebError) as exc:
            yield remote.host, remote.port
            yield 1
            yield _status(UNABLE_TO_LIST, f"listing failed: {exc}"), None
            return
        peer = StorePeer()  # the association pynetdicom opens with these kwargs
        yield (
            remote.host,
            remote.port,
            {
                "contexts": proposed_contexts(found),
                "tls_args": client_tls(self.settings, remote),
                "evt_handlers": [*peer.handlers(), *OUTGOING_HANDLERS],
            },
        )
        LOG.info(
            "move",
            extra={
                "fields": {
                    "event": "move",
                    "callingAETitle": _calling(event.assoc),
                    "moveDestination": title,
                    "instances": len(found),
                }
            },
        )
        yield from self._sub_operations(event, found, peer)

    def on_get(self, event: evt.Event) -> Iterator[Any]:
        try:
            found = self._listing(event)
        except (IdentifierError, DicomWebError) as exc:
            yield 1
            yield _status(UNABLE_TO_LIST, f"listing failed: {exc}"), None
            return
        LOG.info(
            "get",
            extra={
                "fields": {
                    "event": "get",
                    "callingAETitle": _calling(event.assoc),
                    "instances": len(found),
                }
            },
        )
        with StorePeer(event.assoc).watching() as peer:
            yield from self._sub_operations(event, found, peer)
