"""Handshake message framing (RFC 8446 §4) and reassembly of a CRYPTO stream into messages (RFC 9001 §4.1.3).

Owns: HandshakeType, the 4-byte header (type + uint24 length), the strict body-decoding wrapper that
turns DecodeError into the decode_error alert, and :class:`HandshakeReassembler`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, TypeVar

from rudp.codec.buffer import Reader
from rudp.errors import DecodeError, TLSAlert, TransportError, TransportErrorCode
from rudp.tls.alerts import AlertDescription, alert
from rudp.tls.extensions import finish


class HandshakeType(IntEnum):
    """Handshake message types (RFC 8446 §4)."""

    client_hello = 1
    server_hello = 2
    new_session_ticket = 4
    end_of_early_data = 5
    encrypted_extensions = 8
    certificate = 11
    certificate_request = 13
    certificate_verify = 15
    finished = 20
    key_update = 24
    message_hash = 254


def frame(msg_type: int, body: bytes) -> bytes:
    """Prefix ``body`` with the handshake header: type (1 byte) and length (3 bytes)."""
    return bytes((msg_type,)) + len(body).to_bytes(3, "big") + body


T = TypeVar("T")


def decode_body(body: bytes, parse: Callable[[Reader], T]) -> T:
    """Run ``parse`` over ``body``, requiring it to consume every byte; DecodeError -> decode_error."""
    reader = Reader(body)
    try:
        value = parse(reader)
        finish(reader)
    except TLSAlert:
        raise
    except DecodeError as exc:
        raise alert(AlertDescription.decode_error, f"malformed handshake message: {exc.reason}") from None
    return value


# -- Reassembly of a CRYPTO stream into handshake messages (RFC 9001 §4.1.3) -------------------------------

#: largest handshake message accepted (certificate chains are the big ones)
MAX_MESSAGE_BYTES: Final = 1 << 16


@dataclass(slots=True)
class RawMessage:
    """One whole handshake message: its type, its body, and the raw bytes with the header."""

    msg_type: int
    body: bytes
    raw: bytes


class HandshakeReassembler(bytearray):
    """Buffers one encryption level's CRYPTO bytes and yields complete handshake messages: the
    buffer itself (its length, truth and :meth:`feed` are the bytearray's own, no Python calls)."""

    __slots__ = ()

    feed = bytearray.extend
    """Append ``data`` (in order; QUIC reorders CRYPTO frames before calling TLS)."""

    def next_message(self) -> RawMessage | None:
        """Pop the next whole message, or None when more bytes are needed.

        Raises:
            TransportError: CRYPTO_BUFFER_EXCEEDED when a message announces more than
                :data:`MAX_MESSAGE_BYTES` (RFC 9000 §7.5).
        """
        size = len(self)
        if size < 4:
            return None
        length = int.from_bytes(self[1:4], "big")
        if length > MAX_MESSAGE_BYTES:
            raise TransportError(TransportErrorCode.CRYPTO_BUFFER_EXCEEDED, "handshake message too large")
        if size < 4 + length:
            return None
        if size == 4 + length:  # the buffer holds this message alone (as a ClientHello usually does)
            raw = bytes(self)
            self.clear()
        else:
            raw = bytes(self[: 4 + length])
            del self[: 4 + length]
        return RawMessage(raw[0], raw[4:], raw)
