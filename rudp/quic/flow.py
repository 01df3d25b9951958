"""Flow-control credit for both directions (RFC 9000 §4.1, §4.2, §4.6).

Owns the arithmetic of limits: :class:`SendCredit` is credit the peer granted us (MAX_DATA,
MAX_STREAM_DATA, MAX_STREAMS) together with the "blocked" signal we owe it; :class:`RecvWindow` is credit
we grant the peer, returned only for bytes the application *consumed* and auto-tuned from the update
rate; :class:`LimitAnnouncer` is a cumulative limit we raise and announce (MAX_STREAMS).

It does not know about frames, streams or packets: :mod:`rudp.quic.streams.manager` turns these values
into frames and feeds loss and acknowledgement back.
"""

from __future__ import annotations

from rudp.errors import TransportError, TransportErrorCode


class SendCredit:
    """A limit the peer set on what we may send, and how much of it we used.

    Used for connection data (MAX_DATA), stream data (MAX_STREAM_DATA) and stream counts (MAX_STREAMS).
    When we are blocked by the limit we owe the peer one BLOCKED frame per limit value (RFC 9000 §4.1:
    a blocked sender SHOULD say so; §19.12-19.14).
    """

    __slots__ = ("_blocked_sent_for", "blocked_pending", "limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        """The highest limit the peer granted (absolute offset, byte sum or stream count)."""
        self.used = 0
        """How much of the limit we consumed."""
        self.blocked_pending = False
        """A BLOCKED frame carrying :attr:`limit` needs sending."""
        self._blocked_sent_for: int | None = None

    @property
    def available(self) -> int:
        """Credit left (never negative)."""
        left = self.limit - self.used
        return left if left > 0 else 0

    def raise_limit(self, limit: int) -> bool:
        """Apply a new limit from the peer; return True if it increased.

        RFC 9000 §4.1: limits that do not increase are ignored.
        """
        if limit <= self.limit:
            return False
        self.limit = limit
        self.blocked_pending = False
        return True

    def note_blocked(self) -> None:
        """Record that we have something to send but no credit: queue a BLOCKED once per limit value."""
        if self.available == 0 and self._blocked_sent_for != self.limit:
            self.blocked_pending = True

    def take_blocked(self) -> int:
        """Mark the BLOCKED frame as sent and return the limit it must carry."""
        self.blocked_pending = False
        self._blocked_sent_for = self.limit
        return self.limit

    def on_blocked_lost(self, limit: int) -> None:
        """A BLOCKED frame for ``limit`` was lost: re-send only if that limit still blocks us."""
        if limit == self.limit and self.available == 0:
            self.blocked_pending = True


class RecvWindow:
    """Credit we grant the peer for one stream or for the whole connection (RFC 9000 §4.1, §4.2).

    ``received`` is the highest offset received (stream) or the sum of those (connection) and may never
    pass :attr:`limit`. Credit comes back only as the application consumes data: an update is due once
    the credit left is below half the window, and then the limit becomes ``consumed + window``. If
    updates are needed more often than once per two smoothed RTTs, the window doubles, up to
    ``max_window`` (the sender is limited by us, not by the path).
    """

    __slots__ = ("_last_update_at", "_resend", "consumed", "limit", "max_window", "received", "window")

    def __init__(self, window: int, max_window: int) -> None:
        self.window = window
        """Current window size in bytes."""
        self.max_window = max(window, max_window)
        """Auto-tuning ceiling."""
        self.limit = window
        """The highest limit we announced (initially the transport parameter)."""
        self.received = 0
        """Highest received offset, or the connection-wide sum of those."""
        self.consumed = 0
        """Bytes the application read (or that were discarded after a reset)."""
        self._last_update_at: float | None = None
        self._resend = False

    def check(self, received: int, frame_type: int) -> None:
        """Raise FLOW_CONTROL_ERROR if ``received`` passes the limit we announced (RFC 9000 §4.1)."""
        if received > self.limit:
            raise TransportError(
                TransportErrorCode.FLOW_CONTROL_ERROR,
                f"peer sent up to {received}, beyond the limit {self.limit}",
                frame_type,
            )

    @property
    def update_due(self) -> bool:
        """True when a MAX_DATA / MAX_STREAM_DATA should be sent now."""
        return self._resend or (self.limit - self.consumed) * 2 < self.window

    def take_update(self, now: float, smoothed_rtt: float) -> int:
        """Auto-tune the window, raise the limit to ``consumed + window`` and return the new limit.

        A re-send after loss does not count as an update for auto-tuning: only consumption does.
        """
        if (self.limit - self.consumed) * 2 < self.window:
            last = self._last_update_at
            if last is not None and smoothed_rtt > 0 and now - last < 2 * smoothed_rtt:
                self.window = min(self.window * 2, self.max_window)
            self._last_update_at = now
        self.limit = max(self.limit, self.consumed + self.window)
        self._resend = False
        return self.limit

    def on_update_lost(self, limit: int) -> None:
        """An update carrying ``limit`` was lost: re-send it if no higher limit was announced since."""
        if limit == self.limit:
            self._resend = True


class LimitAnnouncer:
    """A cumulative limit we raise and announce to the peer (MAX_STREAMS, RFC 9000 §4.6).

    The limit rises by one for each of the peer's streams that closes; it is announced, as
    :class:`RecvWindow` announces data credit, once the credit the peer has left from the last
    announcement falls to half the initial limit or below (or the peer says it is blocked, or an
    announcement was lost). One MAX_STREAMS per closed stream would cost a datagram, and the peer's
    ACK of it, per request of a request/response protocol. While the peer still has more than a
    quarter left the announcement is not :attr:`urgent`: it rides on a packet that goes anyway (the
    next response), instead of a datagram of its own and the peer's ACK of that.
    """

    __slots__ = ("announced", "pending", "resend", "urgent", "used", "value", "window")

    def __init__(self, value: int) -> None:
        self.value = value
        """The current limit (the peer's closed streams plus the initial limit)."""
        self.announced = value
        """The highest limit the peer was told (initially the transport parameter)."""
        self.window = value
        """The initial limit: how many streams the peer may have open at once."""
        self.used = 0
        """How many streams of this kind the peer opened."""
        self.resend = False
        """An announcement was lost or the peer is blocked: announce now (read-only outside)."""
        self.pending = False
        """The current limit needs announcing, on a packet that goes anyway (kept by every change:
        the sender asks for every packet it fills; read-only outside)."""
        self.urgent = False
        """The announcement is worth a datagram of its own: the peer has a quarter of the initial limit
        left or less, says it is blocked, or an announcement was lost (RFC 9000 §4.6; read-only
        outside)."""

    def _refresh(self) -> None:
        due = self.value > self.announced
        left = self.announced - self.used
        self.pending = self.resend or (due and left * 2 <= self.window)
        self.urgent = self.resend or (due and left * 4 <= self.window)

    def increase(self, amount: int = 1) -> None:
        """Raise the limit by ``amount`` (streams of the peer closed)."""
        if amount > 0:
            self.value += amount
            self._refresh()

    def note_used(self, count: int) -> None:
        """The peer has opened ``count`` streams of this kind so far."""
        if count > self.used:
            self.used = count
            self._refresh()

    def on_peer_blocked(self, limit: int) -> None:
        """The peer is blocked at ``limit`` (STREAMS_BLOCKED, RFC 9000 §19.14): announce what we have."""
        if limit >= self.announced and self.value > self.announced:
            self.resend = True
            self._refresh()

    def take(self) -> int:
        """Mark the announcement sent and return the value to carry."""
        self.resend = False
        self.announced = self.value
        self._refresh()
        return self.value

    def on_lost(self, value: int) -> None:
        """An announcement of ``value`` was lost: re-send if no higher limit was announced since."""
        if value == self.announced:
            self.resend = True
            self._refresh()


__all__ = ["LimitAnnouncer", "RecvWindow", "SendCredit"]
