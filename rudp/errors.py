"""The rudp exception hierarchy: every error rudp raises is one of these.

Inside the protocol core, a peer's protocol violation is a :class:`TransportError` carrying the QUIC
transport error code (RFC 9000 §20.1); the connection converts it into a CONNECTION_CLOSE at its input
boundary. Errors meant for API users (closed connections, reset streams, misuse) are separate classes so
callers can tell "the peer broke the rules" from "I called the API wrong".
"""

from __future__ import annotations

from enum import IntEnum


class TransportErrorCode(IntEnum):
    """QUIC transport error codes (RFC 9000 §20.1). CRYPTO_ERROR is 0x100 + TLS alert."""

    NO_ERROR = 0x00
    INTERNAL_ERROR = 0x01
    CONNECTION_REFUSED = 0x02
    FLOW_CONTROL_ERROR = 0x03
    STREAM_LIMIT_ERROR = 0x04
    STREAM_STATE_ERROR = 0x05
    FINAL_SIZE_ERROR = 0x06
    FRAME_ENCODING_ERROR = 0x07
    TRANSPORT_PARAMETER_ERROR = 0x08
    CONNECTION_ID_LIMIT_ERROR = 0x09
    PROTOCOL_VIOLATION = 0x0A
    INVALID_TOKEN = 0x0B
    APPLICATION_ERROR = 0x0C
    CRYPTO_BUFFER_EXCEEDED = 0x0D
    KEY_UPDATE_ERROR = 0x0E
    AEAD_LIMIT_REACHED = 0x0F
    NO_VIABLE_PATH = 0x10
    CRYPTO_ERROR = 0x100


class RudpError(Exception):
    """Base class of every exception rudp raises."""


class ConfigError(RudpError, ValueError):
    """A configuration value is invalid (bad Config field, unknown congestion controller...)."""


class TransportError(RudpError):
    """A QUIC protocol violation: closes the connection with ``code`` in CONNECTION_CLOSE.

    Attributes:
        code: the QUIC transport error code (an int; usually a :class:`TransportErrorCode`).
        frame_type: the frame type that triggered the error, or 0 when unknown.
        reason: a human-readable phrase, sent as the reason phrase.
    """

    def __init__(self, code: int, reason: str = "", frame_type: int = 0) -> None:
        self.code = int(code)
        self.frame_type = frame_type
        self.reason = reason
        try:
            name = TransportErrorCode(self.code).name
        except ValueError:
            name = hex(self.code)
        super().__init__(f"{name}: {reason}" if reason else name)


class DecodeError(TransportError):
    """Malformed bytes: a decoder met input it cannot parse.

    Defaults to FRAME_ENCODING_ERROR; decoders of other structures pass a more precise code
    (TRANSPORT_PARAMETER_ERROR, PROTOCOL_VIOLATION...).
    """

    def __init__(
        self,
        reason: str = "malformed input",
        code: int = TransportErrorCode.FRAME_ENCODING_ERROR,
        frame_type: int = 0,
    ) -> None:
        super().__init__(code, reason, frame_type)


class TLSAlert(TransportError):
    """A TLS handshake failure; on the wire it is CRYPTO_ERROR 0x100 + ``alert`` (RFC 9001 §4.8)."""

    def __init__(self, alert: int, reason: str = "") -> None:
        self.alert = int(alert)
        super().__init__(TransportErrorCode.CRYPTO_ERROR + self.alert, reason)


class ConnectionClosed(RudpError, ConnectionError):
    """The connection is closed; raised to API users by operations that need a live connection."""

    def __init__(
        self, code: int = 0, reason: str = "", *, by_peer: bool = False, application: bool = True
    ) -> None:
        self.code = code
        self.reason = reason
        self.by_peer = by_peer
        self.application = application
        who = "peer" if by_peer else "local"
        kind = "application" if application else "transport"
        super().__init__(f"connection closed by {who} ({kind} code {code:#x}): {reason}")


class HandshakeFailed(ConnectionClosed):
    """The handshake did not complete; ``code`` carries the alert or transport cause."""


class ConnectTimeout(RudpError, TimeoutError):
    """The handshake did not complete within the configured timeout."""


class StreamError(RudpError):
    """Base of stream-level errors; ``stream_id`` names the stream."""

    def __init__(self, stream_id: int, message: str = "") -> None:
        self.stream_id = stream_id
        super().__init__(message or f"stream {stream_id}")


class StreamReset(StreamError):
    """The peer reset the stream (RESET_STREAM) with application error ``code``."""

    def __init__(self, stream_id: int, code: int) -> None:
        self.code = code
        super().__init__(stream_id, f"stream {stream_id} reset by peer with code {code:#x}")


class StreamStopped(StreamError):
    """The peer asked us to stop sending (STOP_SENDING) with application error ``code``."""

    def __init__(self, stream_id: int, code: int) -> None:
        self.code = code
        super().__init__(stream_id, f"stream {stream_id} stopped by peer with code {code:#x}")


class StreamStateError(StreamError):
    """Local misuse of a stream (write after FIN, read on a send-only stream...)."""


class StreamLimitReached(RudpError):
    """open_stream() was called beyond the peer's MAX_STREAMS limit (and not asked to wait)."""


__all__ = [
    "ConfigError",
    "ConnectTimeout",
    "ConnectionClosed",
    "DecodeError",
    "HandshakeFailed",
    "RudpError",
    "StreamError",
    "StreamLimitReached",
    "StreamReset",
    "StreamStateError",
    "StreamStopped",
    "TLSAlert",
    "TransportError",
    "TransportErrorCode",
]
