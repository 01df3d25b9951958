"""Events the sans-IO QUIC connection reports to the application, pulled with ``next_event()``.

Events say *that* something happened; data is pulled separately (``read_stream``), so the application
decides when to consume it and flow-control credit is returned only for consumed bytes.
"""

from __future__ import annotations

from dataclasses import dataclass


class Event:
    """Base class of every connection event."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class HandshakeCompleted(Event):
    """The TLS handshake completed (keys for 1-RTT are installed both ways)."""

    alpn_protocol: str | None
    """The negotiated application protocol."""
    session_resumed: bool
    """True when a session ticket was used (PSK resumption)."""
    early_data_accepted: bool
    """True when the server accepted 0-RTT data; if False, a client must resend its early data."""


@dataclass(frozen=True, slots=True)
class StreamOpened(Event):
    """The peer opened a new stream (its first frame for that stream arrived)."""

    stream_id: int
    """The new stream's ID."""


@dataclass(frozen=True, slots=True)
class StreamReadable(Event):
    """New in-order data (or the FIN) is available; call ``read_stream()``."""

    stream_id: int
    """The stream with data to read."""


@dataclass(frozen=True, slots=True)
class StreamWritable(Event):
    """The stream's send buffer or flow-control credit has room again after being full."""

    stream_id: int
    """The stream that can accept more data."""


@dataclass(frozen=True, slots=True)
class StreamReset(Event):
    """The peer reset the stream (RESET_STREAM): no more data will arrive on it."""

    stream_id: int
    """The reset stream."""
    error_code: int
    """The application error code from the peer."""


@dataclass(frozen=True, slots=True)
class StopSendingReceived(Event):
    """The peer asked us to stop sending on the stream (STOP_SENDING); the stream was reset locally."""

    stream_id: int
    """The stream concerned."""
    error_code: int
    """The application error code from the peer."""


@dataclass(frozen=True, slots=True)
class StreamsAvailable(Event):
    """The peer raised its stream limit (MAX_STREAMS): more streams can be opened."""

    bidirectional: bool
    """Which kind of stream became available."""


@dataclass(frozen=True, slots=True)
class DatagramReceived(Event):
    """An unreliable datagram (RFC 9221) arrived."""

    data: bytes
    """The datagram payload."""


@dataclass(frozen=True, slots=True)
class PingAcknowledged(Event):
    """A PING sent with ``ping()`` was acknowledged."""

    uid: int
    """The identifier ``ping()`` returned."""


@dataclass(frozen=True, slots=True)
class ConnectionTerminated(Event):
    """The connection ended; it is the last event.

    ``code`` and ``reason`` come from the CONNECTION_CLOSE sent or received; an idle timeout has code 0,
    ``by_peer`` False and reason "idle timeout".
    """

    code: int
    """Transport or application error code."""
    reason: str
    """The reason phrase (decoded leniently as UTF-8)."""
    by_peer: bool
    """True if the peer closed the connection."""
    application: bool
    """True for an application close (CONNECTION_CLOSE 0x1d), False for a transport close."""
    frame_type: int = 0
    """For transport errors, the frame type that triggered the error (0 when unknown)."""
