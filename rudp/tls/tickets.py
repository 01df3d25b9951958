"""Session tickets: the client's ticket store, the server's sealed stateless tickets, 0-RTT anti-replay.

Owns:

* :class:`SessionTicket` — what a client keeps from a NewSessionTicket (RFC 8446 §4.6.1): the
  ticket identity, the resumption PSK, the suite/ALPN/SNI it belongs to, its lifetime and age_add,
  whether 0-RTT is allowed, the server's transport parameters (QUIC must remember them for 0-RTT,
  RFC 9000 §7.4.1) and the QUIC version of the connection that received it (RFC 9369 §5).
* :class:`TicketStore` — client tickets per server name, single use, persisted with msgpack.
* :class:`TicketState` / :class:`TicketSealer` — the server's ticket plaintext, sealed with AES-GCM
  under the server ticket key, so the server keeps no per-session state.
* :class:`ReplayCache` — the server's 0-RTT anti-replay policy (RFC 8446 §8).

Anti-replay policy. 0-RTT is accepted for a ticket only if (a) the client's ticket age, de-obfuscated,
is within ``window`` seconds of the age the server computes from the issue time sealed in the ticket
(freshness, RFC 8446 §8.3), and (b) the ticket has not been used for 0-RTT before, according to a
bounded cache keyed by a hash of the ticket identity (RFC 8446 §8.2 applied per ticket, so each
ticket's early data is accepted at most once). A replayed ClientHello keeps its old age, so once
``2 * window`` seconds have passed it fails the freshness check; cache entries are dropped after that
time. When the cache is full of live entries, 0-RTT is rejected (never accepted unchecked). Rejection
only rejects early data: the handshake still completes as a 1-RTT resumption. The cache protects the
engines that share it (one :class:`~rudp.tls.config.TlsConfig`, i.e. one process); servers spread over
several processes with one ticket key need a shared cache, or should disable 0-RTT.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Final

import msgpack
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rudp.errors import ConfigError

#: the QUIC value of max_early_data_size meaning "0-RTT allowed" (RFC 9001 §4.6.1)
QUIC_MAX_EARLY_DATA: Final = 0xFFFFFFFF
#: upper bound of ticket_lifetime (RFC 8446 §4.6.1)
MAX_TICKET_LIFETIME: Final = 7 * 24 * 3600

_TICKET_FORMAT: Final = 1
_TICKET_AAD: Final = b"rudp session ticket v1"
_PACK_BUFFER: Final = 512
"""msgpack buffer for a ticket's state (a PSK, names and the transport parameters: usually less)"""


@dataclass(slots=True)
class SessionTicket:
    """A ticket as the client keeps it. Times are POSIX seconds."""

    ticket: bytes
    """the opaque ticket identity sent back in pre_shared_key"""
    psk: bytes
    """the resumption PSK derived from the ticket nonce"""
    cipher_suite: int
    server_name: str | None
    alpn_protocol: str | None
    received_at: float
    lifetime: int
    age_add: int
    max_early_data: int = 0
    """0 when the server does not allow 0-RTT with this ticket"""
    transport_parameters: bytes | None = None
    """the server's quic_transport_parameters of the connection that issued the ticket"""
    quic_version: int | None = None
    """the QUIC version of the connection that received the ticket, stamped by the QUIC layer (RFC 9369
    §5: a ticket resumes only that version); None in records saved before rudp kept it"""

    def is_valid(self, now: float) -> bool:
        """True while the ticket is inside its lifetime (RFC 8446 §4.6.1)."""
        return self.received_at <= now < self.received_at + self.lifetime

    def obfuscated_age(self, now: float) -> int:
        """obfuscated_ticket_age: age in milliseconds plus age_add, modulo 2^32 (RFC 8446 §4.2.11.1)."""
        age_ms = max(0, int((now - self.received_at) * 1000))
        return (age_ms + self.age_add) & 0xFFFFFFFF

    def to_dict(self) -> dict[str, Any]:
        """A msgpack-friendly dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionTicket:
        """Inverse of :meth:`to_dict`; raises ConfigError on a malformed record."""
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"malformed session ticket record: {exc}") from exc


class TicketStore:
    """Client tickets per server name. Each ticket is handed out once (RFC 8446 Appendix C.4)."""

    def __init__(self, max_per_server: int = 8) -> None:
        self.max_per_server = max_per_server
        self._tickets: dict[str, list[SessionTicket]] = {}

    def __len__(self) -> int:
        return sum(len(v) for v in self._tickets.values())

    def add(self, ticket: SessionTicket) -> None:
        """Keep ``ticket`` (the oldest of its server's are dropped beyond ``max_per_server``)."""
        tickets = self._tickets.setdefault(ticket.server_name or "", [])
        tickets.append(ticket)
        del tickets[: -self.max_per_server]

    def get(
        self,
        server_name: str | None,
        now: float | None = None,
        accept: Callable[[SessionTicket], bool] | None = None,
    ) -> SessionTicket | None:
        """Remove and return the newest ticket for ``server_name`` (valid at ``now`` if given) that
        ``accept`` (if given) takes; the tickets it refuses stay (a QUIC version's tickets are kept
        for a later connection of that version, RFC 9369 §5)."""
        tickets = self._tickets.get(server_name or "", [])
        if now is not None:
            tickets[:] = [t for t in tickets if t.is_valid(now)]
        for index in range(len(tickets) - 1, -1, -1):
            if accept is None or accept(tickets[index]):
                return tickets.pop(index)
        return None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write every ticket to ``path`` (msgpack)."""
        records = [t.to_dict() for tickets in self._tickets.values() for t in tickets]
        with open(path, "wb") as f:
            f.write(msgpack.packb({"version": 1, "tickets": records}, use_bin_type=True))

    def load(self, path: str | os.PathLike[str]) -> None:
        """Add the tickets saved in ``path`` by :meth:`save`; raises ConfigError if unreadable."""
        try:
            with open(path, "rb") as f:
                data = msgpack.unpackb(f.read(), raw=False)
            records = data["tickets"] if data.get("version") == 1 else None
        except (OSError, ValueError, TypeError, KeyError, AttributeError, msgpack.ExtraData) as exc:
            raise ConfigError(f"cannot load ticket store {os.fspath(path)}: {exc}") from exc
        if not isinstance(records, list):
            raise ConfigError(f"unsupported ticket store format in {os.fspath(path)}")
        for record in records:
            if not isinstance(record, dict):
                raise ConfigError("malformed ticket store record")
            self.add(SessionTicket.from_dict(record))


@dataclass(slots=True)
class TicketState:
    """The plaintext a server seals into a ticket."""

    psk: bytes
    cipher_suite: int
    alpn_protocol: str | None
    server_name: str | None
    issued_at: float
    lifetime: int
    age_add: int
    max_early_data: int
    transport_parameters: bytes | None

    def age_ms(self, now: float) -> int:
        """The ticket's real age in milliseconds."""
        return int((now - self.issued_at) * 1000)


class TicketSealer:
    """Seals :class:`TicketState` with AES-GCM under the server ticket key (16, 24 or 32 bytes)."""

    def __init__(self, key: bytes) -> None:
        if len(key) not in (16, 24, 32):
            raise ConfigError("the ticket key must be 16, 24 or 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, state: TicketState, nonce: bytes) -> bytes:
        """The ticket identity: format byte, 12-byte ``nonce``, AEAD(msgpack(state))."""
        fields = [
            state.psk,
            state.cipher_suite,
            state.alpn_protocol,
            state.server_name,
            state.issued_at,
            state.lifetime,
            state.age_add,
            state.max_early_data,
            state.transport_parameters,
        ]
        # msgpack.packb's bytes, from a packer with a small buffer (packb's default 256 KiB buffer is
        # allocated and freed per call: a fresh mapping each time); a larger state grows it
        plaintext = msgpack.Packer(use_bin_type=True, buf_size=_PACK_BUFFER).pack(fields)
        return bytes((_TICKET_FORMAT,)) + nonce + self._aead.encrypt(nonce, plaintext, _TICKET_AAD)

    def unseal(self, ticket: bytes) -> TicketState | None:
        """The state inside ``ticket``, or None when it is not one of ours (or was tampered with)."""
        if len(ticket) < 1 + 12 + 16 or ticket[0] != _TICKET_FORMAT:
            return None
        try:
            plaintext = self._aead.decrypt(ticket[1:13], ticket[13:], _TICKET_AAD)
            fields = msgpack.unpackb(plaintext, raw=False)
        except (InvalidTag, ValueError, TypeError, msgpack.ExtraData):
            return None
        if not isinstance(fields, list) or len(fields) != 9 or not isinstance(fields[0], bytes):
            return None
        return TicketState(*fields)


class ReplayCache:
    """Bounded record of tickets whose 0-RTT was accepted (see the module docstring for the policy)."""

    def __init__(self, max_entries: int = 100_000, window: float = 10.0) -> None:
        self.max_entries = max_entries
        self.window = window
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def is_fresh(self, reported_age_ms: int, actual_age_ms: int) -> bool:
        """Freshness check: the client's age is within ``window`` of the server's (RFC 8446 §8.3)."""
        return abs(reported_age_ms - actual_age_ms) <= self.window * 1000

    def accept(self, ticket: bytes, now: float) -> bool:
        """Record ``ticket``'s 0-RTT use at ``now``; False if it was seen before or the cache is full."""
        while self._seen:
            key, expires_at = next(iter(self._seen.items()))
            if expires_at > now:
                break
            del self._seen[key]
        key = hashlib.sha256(ticket).digest()
        if key in self._seen or len(self._seen) >= self.max_entries:
            return False
        self._seen[key] = now + 2 * self.window
        return True
