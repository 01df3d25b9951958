"""The TCP mux's lifecycle: open, closing (our CLOSE is queued), closed; and what the kernel reports.

Owns :class:`Lifecycle`: whether the connection is alive, why it ended (the one
:class:`~rudp.quic.events.ConnectionTerminated` event) and when it is over for the transport. Also the
:class:`KernelTcpInfo` figures the asyncio layer reads from the socket for :attr:`TcpMux.stats`. It
does not queue frames (:mod:`rudp.tcp.output`) nor decide when to close (:mod:`rudp.tcp.mux`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rudp.errors import ConnectionClosed
from rudp.quic.events import ConnectionTerminated, Event


@dataclass(frozen=True, slots=True)
class KernelTcpInfo:
    """What the kernel knows about the TCP connection (Linux TCP_INFO), read by the asyncio layer."""

    smoothed_rtt: float
    """The kernel's smoothed RTT (seconds)."""
    congestion_window_bytes: int
    """Congestion window (segments times MSS)."""
    bytes_in_flight: int
    """Unacknowledged bytes (segments times MSS)."""
    retransmitted_segments: int
    """Segments retransmitted over the connection's life."""
    mss: int
    """Sender maximum segment size."""


KernelInfoSource = Callable[[], KernelTcpInfo | None]
"""A callable returning fresh kernel TCP statistics, or None when unavailable."""


class Lifecycle:
    """Open, closing or closed, and the cause of the end (reported once through ``emit``)."""

    __slots__ = ("_cause", "_closed", "_closing", "_emit")

    def __init__(self, emit: Callable[[Event], None]) -> None:
        self._emit = emit
        self._closing = False  # our CLOSE is queued: the next output is the last
        self._closed = False
        self._cause: ConnectionTerminated | None = None

    @property
    def dead(self) -> bool:
        """True once closing or closed: nothing but our CLOSE is written any more."""
        return self._closing or self._closed

    @property
    def closed(self) -> bool:
        """True once the connection is over and its last bytes were handed out."""
        return self._closed

    @property
    def cause(self) -> ConnectionTerminated | None:
        """Why the connection ended (None while it is alive)."""
        return self._cause

    def check_open(self) -> None:
        """Raise for a command issued once the connection is closing or closed.

        Raises:
            ConnectionClosed: carrying the cause of the end.
        """
        if not self.dead:
            return
        cause = self._cause
        if cause is None:
            raise ConnectionClosed(0, "connection closed")
        raise ConnectionClosed(cause.code, cause.reason, by_peer=cause.by_peer, application=cause.application)

    def start_closing(self, cause: ConnectionTerminated) -> None:
        """Our CLOSE is queued: report ``cause`` (unless an earlier one was) and wait for the output."""
        self._closing = True
        self._terminate(cause)

    def end(self, cause: ConnectionTerminated) -> None:
        """Over at once (the peer's CLOSE arrived, or the transport ended): nothing more is sent.

        ``cause`` is reported unless an earlier cause was (our own CLOSE, say).
        """
        self._terminate(cause)
        self._closed = True

    def on_output_taken(self) -> None:
        """The output was handed out: when it carried our CLOSE, the connection is over."""
        if self._closing:
            self._closed = True

    def _terminate(self, cause: ConnectionTerminated) -> None:
        if self._cause is None:
            self._cause = cause
            self._emit(cause)


__all__ = ["KernelInfoSource", "KernelTcpInfo", "Lifecycle"]
