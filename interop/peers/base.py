"""What every interop peer shares: the client plan, server options and the reports they return.

Owns the implementation-neutral vocabulary (:class:`ClientPlan`, :class:`ServerOptions`,
:class:`EndpointReport`, :class:`Digest`) and the hq-interop request format. It imports neither rudp nor
aioquic, so each peer module depends only on its own implementation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol
from urllib.parse import unquote

from interop.tap import VERSION_1, VERSION_2

ALPN: Final = "hq-interop"
H3_ALPN: Final = "h3"
"""HTTP/3 (the http3 case): a GET with :method, :scheme, :authority and :path, answered 200 with the file
or 404; every server here accepts both, the client's ALPN choosing."""
SERVER_NAME: Final = "localhost"
"""The name clients verify (the test certificate covers it); they connect to 127.0.0.1."""
MAX_REQUEST_BYTES: Final = 8192
HQ_BAD_REQUEST: Final = 0x190
"""Stream reset code of our hq-interop servers for a request that is not ``GET /path``."""
HQ_NOT_FOUND: Final = 0x194
"""Stream reset code of our hq-interop servers for a path that names no file."""
TICKET_TIMEOUT: Final = 5.0
"""Seconds a client waits for a session ticket before its next (resuming) connection."""
TLS_CHACHA20_POLY1305_SHA256: Final = 0x1303


@dataclass(frozen=True)
class ServerOptions:
    """How a case wants the server configured."""

    retry: bool = False
    """Validate client addresses with a Retry packet before any connection state exists."""
    preferred_address: tuple[str, int] | None = None
    """Advertise this preferred address (RFC 9000 §9.6) without binding it: the wire tap listens there
    and forwards to the server's own address (connectionmigration)."""


@dataclass(frozen=True)
class ClientPlan:
    """What a client does: connections one after the other, each fetching its paths concurrently."""

    connections: tuple[tuple[str, ...], ...]
    """For each connection, the paths it requests (all at once, one stream each)."""
    version: int = VERSION_1
    """The QUIC version the client starts with."""
    cipher_suites: tuple[int, ...] | None = None
    """The only TLS cipher suites offered; None offers the implementation's default list."""
    resume: bool = False
    """Connections after the first resume the session with a ticket from the one before."""
    early_data: bool = False
    """Connections after the first send their requests as 0-RTT data (implies ``resume``)."""
    key_update: bool = False
    """Initiate a 1-RTT key update as soon as response data arrives (retried until it can start)."""
    migrate_after: int | None = None
    """Once this many response bytes arrived on a connection, the client migrates it to a new local
    socket (a new port) and a fresh connection ID of the server; only clients that can do so take it."""
    alpn: str = ALPN
    """The application protocol the client offers (and speaks): hq-interop, or HTTP/3 (:data:`H3_ALPN`)."""


@dataclass(frozen=True)
class Digest:
    """Size and SHA-256 of a body."""

    size: int
    sha256: str


class BodyHasher:
    """Hash a body as it streams in, without keeping it."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._size = 0

    def update(self, data: bytes) -> None:
        """Add the next chunk."""
        self._hash.update(data)
        self._size += len(data)

    @property
    def size(self) -> int:
        """Bytes seen so far."""
        return self._size

    def digest(self) -> Digest:
        """The digest of everything seen."""
        return Digest(self._size, self._hash.hexdigest())


def file_digest(path: Path) -> Digest:
    """The digest of a file on disk."""
    hasher = BodyHasher()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            hasher.update(chunk)
    return hasher.digest()


@dataclass
class EndpointReport:
    """What one end of one connection says it negotiated (filled by the peer that owns that end)."""

    impl: str
    role: str
    handshake_completed: bool = False
    alpn: str | None = None
    session_resumed: bool = False
    early_data_accepted: bool = False
    cipher_suite: int | None = None
    """The negotiated TLS cipher suite code point, when the implementation tells."""
    key_updates: int = 0
    """1-RTT key updates this end went through (initiated by either side)."""
    path_changes: int | None = None
    """Times this end switched to a new path (None: the implementation does not tell)."""
    peer_port: int | None = None
    """The UDP port this end sends to at the end of the connection (None: not told)."""
    peer_host: str | None = None
    """The IP address this end sends to at the end of the connection (None: not told)."""
    ecn_state: str | None = None
    """ECN validation of the current path at the end: testing, unknown, capable, failed, disabled
    (None: the implementation does not tell)."""
    ecn_marked_sent: int | None = None
    """Packets this end sent marked ECT(0) (None: not told)."""
    ecn_peer_counts: tuple[int, ...] | None = None
    """ECT(0), ECT(1), CE counts the peer's ACK_ECN frames reported (None: not told)."""


@dataclass
class ClientConnectionResult:
    """One client connection: its end's report and the digest of every body it fetched."""

    report: EndpointReport
    bodies: dict[str, Digest] = field(default_factory=dict)


class ServerPeer(Protocol):
    """A running hq-interop server of one implementation."""

    @property
    def port(self) -> int:
        """The UDP port it listens on (on the host :meth:`start` was given)."""
        ...

    @property
    def cid_length(self) -> int:
        """The length of the connection IDs it issues (what its clients' short headers carry)."""
        ...

    def reports(self) -> list[EndpointReport]:
        """One report per connection whose handshake completed, in order of completion."""
        ...

    async def close(self) -> None:
        """Stop serving and release the socket."""
        ...


def request_line(path: str) -> bytes:
    """The hq-interop request for ``path``."""
    return f"GET {path}\r\n".encode("ascii")


def resolve_request(root: Path, request: bytes) -> Path | int:
    """The file an hq-interop request names under ``root``, or the reset code to answer with."""
    try:
        method, _, target = request.decode("ascii").strip().partition(" ")
    except UnicodeDecodeError:
        return HQ_BAD_REQUEST
    if method != "GET" or not target.startswith("/"):
        return HQ_BAD_REQUEST
    candidate = (root / unquote(target.strip()).lstrip("/")).resolve()
    if not candidate.is_relative_to(root.resolve()) or not candidate.is_file():
        return HQ_NOT_FOUND
    return candidate


__all__ = [
    "ALPN",
    "H3_ALPN",
    "HQ_BAD_REQUEST",
    "HQ_NOT_FOUND",
    "SERVER_NAME",
    "TICKET_TIMEOUT",
    "TLS_CHACHA20_POLY1305_SHA256",
    "VERSION_1",
    "VERSION_2",
    "BodyHasher",
    "ClientConnectionResult",
    "ClientPlan",
    "Digest",
    "EndpointReport",
    "ServerOptions",
    "ServerPeer",
    "file_digest",
    "request_line",
    "resolve_request",
]
