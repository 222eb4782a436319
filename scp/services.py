"""The SCP's DIMSE services, each declaring itself: its presentation contexts and roles, the
permission a calling AE needs (scp/remote_aes.py), its handlers and its background parts. The AE
(scp/server.py build_ae), the association policy (the permission gate below) and the conformance
statement (generator/documents/conformance.py) are all built from the one list, SERVICES."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from pynetdicom import AE, evt
from pynetdicom._globals import DEFAULT_TRANSFER_SYNTAXES
from pynetdicom.sop_class import _STORAGE_CLASSES

from scp import statuses
from scp.remote_aes import STORE, RemoteAEs
from scp.settings import Settings

LOG = logging.getLogger("scp")
NOT_AUTHORISED = statuses.NOT_AUTHORISED.code  # PS3.7 Annex C, for C-STORE and N-ACTION alike

# Stored as received, never transcoded: the uncompressed syntaxes and every compressed one
# HealthImaging imports.
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old modalities)
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51",  # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless, Non-Hierarchical (Process 14)
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, First-Order Prediction (Process 14 SV1)
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202",  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.5",  # RLE Lossless
]


@dataclass(frozen=True)
class Context:
    """One presentation context the AE accepts: abstract syntax, transfer syntaxes, and whether
    the peer may be SCU and/or SCP of it on our associations (scu_role: the peer is SCU)."""

    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...] | None = None  # None: pynetdicom's defaults
    scu_role: bool = True
    scp_role: bool = False


Handler = tuple[Any, Callable[..., Any]]


class Part(Protocol):
    """A background part (the commitment reporter): one start/drain/stop lifecycle."""

    def start(self) -> None: ...

    def drain(self) -> None: ...

    def stop(self, timeout: float) -> None: ...


class Service:
    """A DIMSE service of the SCP. Subclasses set the class attributes and may override
    `handlers` and `parts`; `contexts(settings)` is what the AE accepts for it."""

    name: ClassVar[str]
    permission: ClassVar[str] = ""  # what a calling AE needs (scp/remote_aes.py); '' none
    our_roles: ClassVar[tuple[str, ...]] = ("SCP",)  # as the conformance statement lists them

    @classmethod
    def contexts(cls, settings: Settings) -> list[Context]:
        raise NotImplementedError

    def handlers(self) -> list[Handler]:
        return []

    def parts(self) -> list[Part]:
        return []


class VerificationService(Service):
    name = "Verification"

    @classmethod
    def contexts(cls, settings: Settings) -> list[Context]:
        return [Context("1.2.840.10008.1.1")]

    def handlers(self) -> list[Handler]:
        return [(evt.EVT_C_ECHO, lambda event: 0x0000)]


class StorageService(Service):
    """C-STORE of every storage class (or SUPPORTED_SOP_CLASS_UIDS); `on_store` stores one."""

    name = "Storage"
    permission = STORE

    def __init__(self, on_store: Callable[[evt.Event], int]) -> None:
        self.on_store = on_store

    @classmethod
    def sop_classes(cls, settings: Settings) -> list[str]:
        return list(settings.supported_sop_class_uids) or sorted(set(_STORAGE_CLASSES.values()))

    @classmethod
    def contexts(cls, settings: Settings) -> list[Context]:
        """With Query/Retrieve offered (a data store named), a C-GET requestor may also be SCP
        of the storage classes on our associations (role selection, PS3.7 D.3.3.4)."""
        syntaxes = tuple(TRANSFER_SYNTAXES)
        get = bool(settings.healthimaging_datastore_id)
        return [Context(uid, syntaxes, scp_role=get) for uid in cls.sop_classes(settings)]

    def handlers(self) -> list[Handler]:
        return [(evt.EVT_C_STORE, self.on_store)]


class Services:
    """The services of one SCP process: the AE's contexts, the handlers (behind the permission
    gate) and the lifecycle of their background parts."""

    def __init__(self, services: Sequence[Service], settings: Settings) -> None:
        self.services = list(services)
        self.settings = settings
        self.remote_aes: RemoteAEs = settings.remote_aes

    def handlers(self) -> list[Handler]:
        out: list[Handler] = []
        seen: set[Any] = set()
        for service in self.services:
            for event, handler in service.handlers():
                if event in seen:
                    raise ValueError(f"{service.name}: {event.name} is already handled")
                seen.add(event)
                out.append((event, self._gate(service, handler)))
        return out

    def _gate(self, service: Service, handler: Callable[..., Any]) -> Callable[..., Any]:
        """The handler, refusing (0x0124) calling AEs the registry does not permit."""
        if not service.permission:
            return handler
        registry, permission = self.remote_aes, service.permission

        def gated(event: evt.Event) -> Any:
            calling = event.assoc.requestor.ae_title.strip()
            if registry.may(calling, permission):
                return handler(event)
            _log_refusal(service.name, calling, permission)
            if event.event.name.startswith("EVT_N_"):
                return NOT_AUTHORISED, None
            return NOT_AUTHORISED

        if inspect.isgeneratorfunction(handler):
            return _refusing_generator(registry, permission, service.name, handler)
        return gated

    def parts(self) -> list[Part]:
        return [part for service in self.services for part in service.parts()]

    def start(self) -> None:
        for part in self.parts():
            part.start()

    def drain(self) -> None:
        for part in self.parts():
            part.drain()

    def stop(self, timeout: float) -> None:
        for part in self.parts():
            part.stop(timeout)


def _log_refusal(service: str, calling: str, permission: str) -> None:
    LOG.warning(
        "request refused: not authorised",
        extra={
            "fields": {
                "event": "not-authorised",
                "service": service,
                "callingAETitle": calling,
                "needs": permission,
            }
        },
    )


def _refusing_generator(
    registry: RemoteAEs, permission: str, name: str, handler: Callable[..., Any]
) -> Callable[..., Any]:
    """The gate for pynetdicom's generator handlers (C-FIND, C-GET, C-MOVE): a refusal is
    yielded in the order each expects. C-GET yields its sub-operation count first; a C-MOVE
    handler can only fail before its destination (pynetdicom answers 0xC514, service_class.py
    _move_scp) or name none (0xA801, which would say the wrong thing)."""

    def gated(event: evt.Event) -> Any:
        calling = event.assoc.requestor.ae_title.strip()
        if registry.may(calling, permission):
            yield from handler(event)
            return
        _log_refusal(name, calling, permission)
        if event.event is evt.EVT_C_MOVE:
            raise PermissionError(f"{calling} may not {permission}")
        if event.event is evt.EVT_C_GET:
            yield 1
        yield NOT_AUTHORISED, None

    return gated


def service_classes() -> list[type[Service]]:
    """Every service the SCP offers, in the conformance statement's order."""
    from scp.commitment.service import CommitmentService
    from scp.qr.service import QueryService, RetrieveService

    return [VerificationService, StorageService, CommitmentService, QueryService, RetrieveService]


def add_contexts(ae: AE, settings: Settings) -> None:
    """Accept the presentation contexts every service declares."""
    for service in service_classes():
        for cx in service.contexts(settings):
            syntaxes = list(cx.transfer_syntaxes or DEFAULT_TRANSFER_SYNTAXES)
            ae.add_supported_context(
                cx.abstract_syntax,
                syntaxes,
                scu_role=cx.scu_role if cx.scp_role else None,
                scp_role=cx.scp_role or None,
            )


def build_services(
    settings: Settings, on_store: Callable[[evt.Event], int], metrics: Any
) -> Services:
    """The services of one serving process, with their handlers and background parts."""
    from scp.commitment.service import CommitmentService
    from scp.healthimaging.signing import open_client
    from scp.qr.service import QueryService, RetrieveService

    services: list[Service] = [VerificationService(), StorageService(on_store)]
    if CommitmentService.contexts(settings):
        services.append(CommitmentService(settings, metrics))
    if QueryService.contexts(settings):
        client = open_client(settings)
        services += [QueryService(settings, client), RetrieveService(settings, client)]
    return Services(services, settings)
