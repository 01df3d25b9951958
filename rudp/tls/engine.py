"""The interface shared by the sans-IO TLS client and server engines, and what QUIC gets from them.

Owns: :class:`EncryptionLevel`, :class:`KeyEvent` (the secrets QUIC installs, in order, RFC 9001
§4.1.4), and :class:`TlsEngine`, the common machinery — per-level reassembly of CRYPTO bytes into
handshake messages, dispatch through a table of the messages expected in each state (anything else
is unexpected_message), outgoing bytes per level, key events, the key log, and the guarantee that
:meth:`TlsEngine.receive` raises nothing but :class:`rudp.errors.TransportError` (a TLSAlert, or
CRYPTO_BUFFER_EXCEEDED for an oversized message).

No clocks, sockets or global randomness: randomness comes from the injectable ``randbytes`` and
POSIX time from ``TlsConfig.wall_clock``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import IntEnum, StrEnum
from typing import Any, ClassVar, Final, NamedTuple

from cryptography import x509

from rudp.crypto.suites import SUITE_HASH, CipherSuite
from rudp.errors import DecodeError, TransportError
from rudp.tls.alerts import AlertDescription, alert
from rudp.tls.config import TlsConfig
from rudp.tls.framing import HandshakeReassembler, RawMessage
from rudp.tls.key_schedule import KeySchedule, Transcript
from rudp.tls.keylog import keylog_line

RandBytes = Callable[[int], bytes]
Handler = Callable[[Any, RawMessage, float], None]
"""A message handler: an engine's method, called with the engine, the message and the time."""
Expected = dict[int, tuple["EncryptionLevel", Handler]]
"""The messages a state accepts: their level and handler by message type."""
_NOTHING: Final[Expected] = {}


class EncryptionLevel(IntEnum):
    """QUIC encryption levels (RFC 9001 §4): CRYPTO data and keys are per level."""

    INITIAL = 0
    EARLY_DATA = 1
    HANDSHAKE = 2
    APPLICATION = 3


class Direction(StrEnum):
    """Which side of a key: decrypting what the peer sends, or encrypting what we send."""

    READ = "read"
    WRITE = "write"


class KeyEvent(NamedTuple):
    """A traffic secret for QUIC to install (it derives the packet and header keys, RFC 9001 §5.1)."""

    level: EncryptionLevel
    direction: Direction
    cipher_suite: CipherSuite
    secret: bytes


_new_event: Final = tuple.__new__
"""``KeyEvent``'s constructor without its Python-level ``__new__`` (every field given, in order)."""


class TlsEngine:
    """Common state and plumbing of :class:`~rudp.tls.client.TlsClient` and
    :class:`~rudp.tls.server.TlsServer`.

    Use: call :meth:`start`, then :meth:`receive` for each CRYPTO chunk; after every call, drain
    :meth:`key_events` (install those keys first) and :meth:`data_to_send`.
    """

    is_client = False
    _EXPECTED: ClassVar[dict[Any, Expected]]
    """The messages each state of ``_state`` accepts (a state not in it accepts none): a class-level
    table, so that a message is dispatched without building a table or bound methods."""
    _state: Any

    def __init__(
        self, config: TlsConfig, transport_parameters: bytes, *, randbytes: RandBytes = os.urandom
    ) -> None:
        self.config = config
        self.transport_parameters = transport_parameters
        self._randbytes = randbytes
        #: True once the peer's Finished has been verified and ours sent
        self.handshake_complete = False
        #: the negotiated ALPN protocol
        self.alpn_protocol: str | None = None
        #: True when the handshake resumed a session from a ticket (PSK accepted)
        self.session_resumed = False
        #: True when the server accepted 0-RTT (on the client: learnt from EncryptedExtensions)
        self.early_data_accepted = False
        #: the peer's quic_transport_parameters extension content
        self.peer_transport_parameters: bytes | None = None
        #: the peer's leaf certificate and the whole chain it sent
        self.peer_certificate: x509.Certificate | None = None
        self.peer_certificate_chain: list[x509.Certificate] = []
        #: the negotiated cipher suite (set when the ServerHello is sent/received)
        self.cipher_suite: CipherSuite | None = None
        #: SNI: sent by the client, received by the server
        self.server_name: str | None = None
        self.client_random = b""
        self._transcript = Transcript()
        self._schedule: KeySchedule | None = None
        # one reassembler per level that received CRYPTO bytes, made at the first (a server never
        # receives at the Application level, and 0-RTT carries no CRYPTO frames)
        self._inbound: dict[EncryptionLevel, HandshakeReassembler] = {}
        self._outbound: dict[EncryptionLevel, bytearray] = {}
        self._key_events: list[KeyEvent] = []
        self._error: TransportError | None = None

    # -- public surface ------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Begin the handshake (the client emits its ClientHello; a no-op on the server)."""

    def receive(self, level: EncryptionLevel, data: bytes, now: float) -> None:
        """Feed in-order CRYPTO bytes of ``level``; partial messages are buffered.

        ``now`` is the caller's clock (kept for the sans-IO calling convention); calendar time comes
        from ``config.wall_clock``.

        Raises:
            TransportError: a :class:`~rudp.errors.TLSAlert` on any handshake failure (QUIC closes
                with CRYPTO_ERROR 0x100 + alert), or CRYPTO_BUFFER_EXCEEDED. After a failure every
                further call raises the same error.
        """
        if self._error is not None:
            raise self._error
        try:
            if type(level) is not EncryptionLevel:
                level = EncryptionLevel(level)  # (an int from a caller outside rudp.quic)
            inbound = self._inbound.get(level)
            if inbound is None:
                inbound = self._inbound[level] = HandshakeReassembler()
            inbound.feed(data)
            while (message := inbound.next_message()) is not None:
                entry = self._EXPECTED.get(self._state, _NOTHING).get(message.msg_type)
                if entry is None or entry[0] != level:
                    raise alert(
                        AlertDescription.unexpected_message,
                        f"unexpected handshake message {message.msg_type} at level {level.name}",
                    )
                entry[1](self, message, now)
            # RFC 8446 §5.1: handshake messages must not span key changes; bytes left at a level
            # where no message is expected any more are an error (the expected levels are looked up
            # only when some level holds bytes: seldom).
            for held_level, held in self._inbound.items():
                if held:
                    expected = self._EXPECTED.get(self._state, _NOTHING).values()
                    if held_level not in {accepted for accepted, _ in expected}:
                        raise alert(
                            AlertDescription.unexpected_message, f"stray data at level {held_level.name}"
                        )
        except DecodeError as exc:
            self._error = alert(AlertDescription.decode_error, exc.reason)
            raise self._error from None
        except TransportError as exc:
            self._error = exc
            raise
        except Exception as exc:
            self._error = alert(AlertDescription.internal_error, f"{type(exc).__name__}: {exc}")
            raise self._error from exc

    def data_to_send(self) -> list[tuple[EncryptionLevel, bytes]]:
        """Drain the handshake bytes to send, per level, in level order."""
        outbound = self._outbound
        if not outbound:
            return []
        out = []
        for level in sorted(outbound):  # (a loop: in Python 3.11 a comprehension is a function call)
            out.append((level, bytes(outbound[level])))
        outbound.clear()
        return out

    def key_events(self) -> list[KeyEvent]:
        """Drain the secrets to install, in the order QUIC must install them (RFC 9001 §4.1.4)."""
        events, self._key_events = self._key_events, []
        return events

    @property
    def failed(self) -> TransportError | None:
        """The error that ended the handshake, if any."""
        return self._error

    # -- for subclasses --------------------------------------------------------------------------------

    def _send(self, level: EncryptionLevel, raw: bytes, *, transcript: bool = True) -> None:
        pending = self._outbound.get(level)
        if pending is None:
            pending = self._outbound[level] = bytearray()
        pending.extend(raw)
        if transcript:
            self._transcript.add(raw)

    def _install(self, level: EncryptionLevel, direction: Direction, secret: bytes) -> None:
        suite = self.cipher_suite
        if suite is None:
            raise alert(AlertDescription.internal_error, "no cipher suite yet")
        # (_install_with, inline; the event built in C: KeyEvent's Python-level __new__ skipped)
        self._key_events.append(_new_event(KeyEvent, (level, direction, suite, secret)))

    def _install_with(
        self, level: EncryptionLevel, direction: Direction, suite: CipherSuite, secret: bytes
    ) -> None:
        self._key_events.append(KeyEvent(level, direction, suite, secret))

    def _keylog(self, label: str, secret: bytes) -> None:
        if self.config.keylog is not None:
            self.config.keylog(keylog_line(label, self.client_random, secret))

    def _hash_name(self) -> str:
        if self.cipher_suite is None:
            raise alert(AlertDescription.internal_error, "no cipher suite yet")
        return SUITE_HASH[self.cipher_suite]

    def _key_schedule(self) -> KeySchedule:
        if self._schedule is None:
            raise alert(AlertDescription.internal_error, "no key schedule yet")
        return self._schedule

    @staticmethod
    def _decode_alpn(protocol: bytes) -> str:
        return protocol.decode("utf-8", "replace")

    def __repr__(self) -> str:
        state: Any = getattr(self, "_state", None)
        return f"<{type(self).__name__} state={getattr(state, 'name', state)}>"
