"""The rudp exception hierarchy: every error rudp raises is one of these.

Inside the protocol core, a peer's protocol violation is a :class:`TransportError` carrying the QUIC
transport error code (RFC 9000 §20.1); the connection converts it into a CONNECTION_CLOSE at its input
boundary. Errors meant for API users (closed connections, reset streams, misuse) are separate classes so
callers can tell "the peer broke the rules" from "I called the API wrong".
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any


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
    VERSION_NEGOTIATION_ERROR = 0x11  # RFC 9368 §10.2
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


_PEER_ALERT_PHRASES: dict[int, str] = {
    40: "the peer refused the handshake",
    42: "the peer rejected our certificate",
    43: "the peer rejected our certificate",
    44: "the peer rejected our certificate",
    45: "the peer rejected our certificate",
    46: "the peer rejected our certificate",
    48: "the peer rejected our certificate",
    49: "the peer refused us access",
    51: "the peer could not verify our handshake",
    70: "the peer does not support our TLS version",
    71: "the peer wants stronger security",
    112: "the peer does not serve the server name we asked for",
    116: "the peer requires a certificate from us",
    120: "the peer supports none of our ALPN protocols",
}
"""What a TLS alert received from the peer means, for the alerts an application can act on."""


def tls_alert_words(alert: int) -> str:
    """A TLS alert description in words: 42 -> "bad certificate" (unknown values as a number)."""
    from rudp.tls.alerts import AlertDescription  # not at import time: rudp.tls imports this module

    try:
        return AlertDescription(alert).name.replace("_", " ")
    except ValueError:
        return f"{alert:#x}"


def _transport_error_name(code: int) -> str:
    try:
        return TransportErrorCode(code).name
    except ValueError:
        return f"{code:#x}"


def _with_reason(text: str, reason: str) -> str:
    return f"{text}: {reason}" if reason else text


def describe_close(
    code: int, reason: str, *, by_peer: bool, application: bool, handshake: bool = False
) -> str:
    """The sentence :class:`ConnectionClosed` (and its subclasses) show for a close.

    The same close reads the same on both transports: who closed (this side or the peer), the
    application code when not 0, a TLS alert in words (``0x12a`` -> "TLS alert bad certificate"), a
    transport error by name, and the reason after a colon only when there is one.
    """
    crypto = TransportErrorCode.CRYPTO_ERROR
    if not application and crypto <= code <= crypto + 0xFF:
        alert = code - crypto
        words = tls_alert_words(alert)
        if reason.replace("_", " ") == words:
            reason = ""  # only the alert's own name: nothing more to say
        if by_peer:
            phrase = _PEER_ALERT_PHRASES.get(alert, "the peer ended the TLS handshake")
            return _with_reason(f"{phrase} (TLS alert {words})", reason)
        return reason or f"the TLS handshake failed (TLS alert {words})"
    if application:
        text = "the peer closed the connection" if by_peer else "the connection was closed by this side"
        if code:
            text += f" with error code {code:#x}"
        return _with_reason(text, reason)
    if code == TransportErrorCode.CONNECTION_REFUSED:
        if by_peer:
            return _with_reason("the server refused the connection", reason)
        return _with_reason("connection refused", reason)
    if code == TransportErrorCode.NO_ERROR:
        if by_peer:
            return _with_reason("the peer closed the connection", reason)
        if reason == "idle timeout":
            return "the connection closed: nothing was received within the idle timeout"
        if handshake and reason:
            return reason
        return _with_reason("the connection closed", reason)
    if code == TransportErrorCode.NO_VIABLE_PATH and not by_peer:
        return _with_reason("the connection was lost", reason)
    name = _transport_error_name(code)
    if by_peer:
        return _with_reason(f"the peer closed the connection with transport error {name}", reason)
    return _with_reason(f"the connection failed with transport error {name}", reason)


class ConnectionClosed(RudpError, ConnectionError):
    """The connection is closed; raised to API users by operations that need a live connection.

    The message is a sentence composed from the attributes (see :func:`describe_close`), e.g. "the peer
    closed the connection with error code 0x5: bye" or "the peer rejected our certificate (TLS alert bad
    certificate)"; the attributes are the facts.

    Attributes:
        code: the application error code (``application``), else the QUIC transport error code
            (CRYPTO_ERROR 0x100 + TLS alert for TLS failures).
        reason: the reason phrase as sent or received ("" when none).
        by_peer: True when the peer closed the connection (or sent the TLS alert).
        application: True for an application close (``Connection.close(code, reason)``).
    """

    def __init__(
        self, code: int = 0, reason: str = "", *, by_peer: bool = False, application: bool = True
    ) -> None:
        self.code = code
        self.reason = reason
        self.by_peer = by_peer
        self.application = application
        # No ``super().__init__(message)``: the sentence is composed when first read (``str()``,
        # ``args``, ``repr()``); most connections end with a close error nobody reads.

    @property
    def args(self) -> tuple[Any, ...]:
        """``(str(self),)``, as ``BaseException(message)`` would hold (or what was assigned)."""
        assigned: tuple[Any, ...] | None = self.__dict__.get("_args")
        return (str(self),) if assigned is None else assigned

    @args.setter
    def args(self, value: Iterable[Any]) -> None:
        self.__dict__["_args"] = tuple(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __str__(self) -> str:
        return describe_close(
            self.code,
            self.reason,
            by_peer=self.by_peer,
            application=self.application,
            handshake=isinstance(self, HandshakeFailed),
        )


def fresh_close_error(error: ConnectionClosed) -> ConnectionClosed:
    """A new error of the same class with the same facts, to raise in place of a stored one.

    A connection keeps its close error (``close_error``) and every later call raises it; raising the
    stored object itself would attach a traceback whose frames refer back to the objects that keep
    it: a reference cycle per closed connection, freed only by a garbage collection.
    """
    return type(error)(error.code, error.reason, by_peer=error.by_peer, application=error.application)


class HandshakeFailed(ConnectionClosed):
    """The handshake did not complete; ``code`` carries the alert or transport cause."""


class ConnectionRefused(HandshakeFailed, ConnectionRefusedError):
    """Nothing accepted the connection: no server listens at that address (QUIC learns it from an ICMP
    port-unreachable, TCP from a reset), or the server refused it (CONNECTION_REFUSED, e.g. when full).

    Also a :class:`ConnectionRefusedError`, so ``except ConnectionRefusedError`` keeps working.
    """

    def __init__(
        self,
        code: int = TransportErrorCode.CONNECTION_REFUSED,
        reason: str = "",
        *,
        by_peer: bool = False,
        application: bool = False,
    ) -> None:
        super().__init__(code, reason, by_peer=by_peer, application=application)

    @classmethod
    def nobody_listening(cls, host: str, port: int) -> ConnectionRefused:
        """The error for a connection attempt that found no server at ``host`` ``port``."""
        return cls(reason=f"no server is listening at {host} port {port}")


class ConnectTimeout(RudpError, TimeoutError):
    """The handshake did not complete within the configured timeout."""

    @classmethod
    def after(cls, host: str, port: int, seconds: float) -> ConnectTimeout:
        """The error for a connection to ``host`` ``port`` that did not complete in ``seconds``."""
        return cls(
            f"connecting to {host} port {port} timed out: the handshake did not complete within {seconds:g} s"
        )


class NetworkError(RudpError, OSError):
    """A socket operation failed (bind, connect, resolve...); the original :class:`OSError` is the
    ``__cause__``, and ``errno`` and ``strerror`` are copied from it, so ``except OSError`` and errno
    checks keep working."""

    def __init__(self, message: str, *, errno: int | None = None, strerror: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errno = errno
        self.strerror = strerror

    def __str__(self) -> str:
        return self.message

    @classmethod
    def wrap(cls, message: str, cause: OSError) -> NetworkError:
        """``message``, followed by the cause's own words, carrying its errno (raise it ``from cause``)."""
        words = cause.strerror or str(cause) or type(cause).__name__
        return cls(f"{message}: {words}", errno=cause.errno, strerror=cause.strerror)


class DatagramError(RudpError):
    """Misuse of datagrams (RFC 9221): ``Connection.send_datagram()`` with datagrams not enabled by both
    endpoints (``Config.datagrams``), or a datagram larger than the connection can carry.

    Over the TCP baseline datagrams are carried too, reliably and in order: the baseline negotiates
    them in its HELLO frame as QUIC does in its transport parameters, so an application written for
    QUIC datagrams runs unchanged on either transport (reliable delivery is allowed by "unreliable";
    what TCP cannot offer is the lack of head-of-line blocking). This error is raised in the same cases
    on both transports, with the same words.
    """

    @classmethod
    def not_enabled(cls) -> DatagramError:
        """The error for sending a datagram on a connection that did not negotiate them."""
        return cls(
            "datagrams are not enabled on this connection: set Config(datagrams=True) on both endpoints"
        )

    @classmethod
    def too_large(cls, size: int, limit: int) -> DatagramError:
        """The error for a ``size``-byte datagram on a connection carrying at most ``limit`` bytes."""
        return cls(f"a datagram of {size} bytes is larger than the {limit} bytes this connection carries")


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


class MigrationDisabled(RudpError):
    """``migrate()`` on a connection whose server sent disable_active_migration (RFC 9000 §9, §18.2):
    the client must not move to a new local address, unless it already moved to the server's preferred
    address (RFC 9000 §9.6), which that parameter does not forbid."""


__all__ = [
    "ConfigError",
    "ConnectTimeout",
    "ConnectionClosed",
    "ConnectionRefused",
    "DatagramError",
    "DecodeError",
    "HandshakeFailed",
    "MigrationDisabled",
    "NetworkError",
    "RudpError",
    "StreamError",
    "StreamLimitReached",
    "StreamReset",
    "StreamStateError",
    "StreamStopped",
    "TLSAlert",
    "TransportError",
    "TransportErrorCode",
    "describe_close",
    "tls_alert_words",
]
