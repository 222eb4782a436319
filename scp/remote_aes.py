"""The one registry of remote AEs (DESIGN section 9): AE title -> host, port, TLS, and what that
AE may ask of us when it calls (store, query, retrieve, commitment).

Written as one setting, `REMOTE_AES` (template parameter `RemoteAETitles`):
`TITLE=host:port:permission+permission[:tls]`, comma-separated, e.g.
`CT1=10.0.4.20:104:store+commitment,WS1=ws1.example.org:11112:query+retrieve:tls`.
Storage-commitment reports (and, later, C-MOVE destinations) resolve through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

STORE, QUERY, RETRIEVE, COMMITMENT = "store", "query", "retrieve", "commitment"
PERMISSIONS = (STORE, QUERY, RETRIEVE, COMMITMENT)
# What a calling AE that is not in the registry may do: store (subject to
# REQUIRE_CALLING_AE_TITLE), as before the registry existed. Everything else needs an entry,
# because an answer may have to travel to the AE's registered address.
UNREGISTERED = frozenset({STORE})
HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
FORMAT = "TITLE=host:port:permission+permission[:tls], comma-separated"


@dataclass(frozen=True)
class RemoteAE:
    """One remote application entity: where it listens and what it may ask of us."""

    ae_title: str
    host: str
    port: int
    permissions: frozenset[str]
    tls: bool = False

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    def describe(self) -> str:
        perms = "+".join(p for p in PERMISSIONS if p in self.permissions)
        return f"{self.ae_title}={self.host}:{self.port}:{perms}" + (":tls" if self.tls else "")


def parse_entry(text: str, ae_title: object) -> RemoteAE:
    """One `TITLE=host:port:permissions[:tls]` entry; `ae_title` validates the title.
    Raises ValueError with a message saying what is wrong and what to write."""
    title, sep, address = text.partition("=")
    if not sep:
        raise ValueError(f"{text.strip()!r}: expected {FORMAT}")
    name = ae_title(title)  # type: ignore[operator]
    parts = address.strip().split(":")
    if len(parts) not in (3, 4):
        raise ValueError(f"{name}: expected host:port:permissions[:tls] after '='")
    host, port_text, perms_text = parts[:3]
    if not HOST_RE.fullmatch(host):
        raise ValueError(f"{name}: {host!r} is not a host name or IPv4 address")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{name}: port {port_text!r} is not from 1 to 65535")
    perms = frozenset(p.strip() for p in perms_text.split("+") if p.strip())
    unknown = sorted(perms - set(PERMISSIONS))
    if not perms or unknown:
        raise ValueError(
            f"{name}: permissions {perms_text!r}: use one or more of {'+'.join(PERMISSIONS)}"
        )
    if len(parts) == 4 and parts[3] != "tls":
        raise ValueError(f"{name}: the optional fourth field is 'tls', not {parts[3]!r}")
    return RemoteAE(name, host, int(port_text), perms, tls=len(parts) == 4)


class RemoteAEs:
    """The registry: look an AE title up, ask what a calling AE may do."""

    def __init__(self, entries: Iterable[RemoteAE] = ()) -> None:
        self._by_title: dict[str, RemoteAE] = {}
        for entry in entries:
            if entry.ae_title in self._by_title:
                raise ValueError(f"{entry.ae_title}: listed twice")
            self._by_title[entry.ae_title] = entry

    @classmethod
    def parse(cls, text: str, ae_title: object) -> RemoteAEs:
        return cls(parse_entry(part, ae_title) for part in text.split(",") if part.strip())

    def get(self, ae_title: str) -> RemoteAE | None:
        return self._by_title.get(ae_title.strip())

    def may(self, calling_ae: str, permission: str) -> bool:
        """Whether calling_ae may use a service needing `permission` ('' needs none)."""
        if not permission:
            return True
        entry = self.get(calling_ae)
        return entry.may(permission) if entry else permission in UNREGISTERED

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_title.values())

    def __len__(self) -> int:
        return len(self._by_title)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteAEs) and list(self) == list(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __str__(self) -> str:
        return ",".join(e.describe() for e in self)
