"""PING/PONG with the RTT they measure (:class:`Pings`), and the idle and keep-alive deadlines
(:class:`Liveness`) of the TCP mux.

Owns the PING tokens queued and in flight (each with the time it left, when known), the RTT estimator
they feed, the time of the last bytes received and sent, and both sides' idle timeouts. Deadlines are
computed from that state on demand; nothing here reads a clock or stores "the current time": every
method that needs the time takes ``now``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from rudp.config import Config
from rudp.quic.events import Event, PingAcknowledged
from rudp.quic.rtt import RttEstimator
from rudp.tcp.framing import Ping, Pong
from rudp.tcp.output import Outbox

MAX_PINGS_IN_FLIGHT: Final = 64
"""Unanswered PINGs remembered at most (dict order: the oldest is forgotten first)."""


class Pings:
    """Our PINGs (the application's and our own) and the RTT samples their PONGs give."""

    __slots__ = ("_emit", "_in_flight", "_outbox", "_pings", "_rtt", "_to_send", "_tokens")

    def __init__(self, outbox: Outbox, emit: Callable[[Event], None]) -> None:
        self._outbox = outbox
        self._emit = emit
        self._rtt = RttEstimator()
        self._to_send: list[tuple[bytes, int | None]] = []  # (token, application id or None)
        self._in_flight: dict[bytes, tuple[int | None, float | None]] = {}  # token: (id, sent at)
        self._pings = 0  # application pings so far: the last id handed out
        self._tokens = 0

    @property
    def rtt(self) -> RttEstimator:
        """The RTT estimator (PING to PONG, so TCP queueing behind data is included)."""
        return self._rtt

    @property
    def smoothed_rtt(self) -> float:
        """The smoothed RTT, or 0.0 before the first sample."""
        return self._rtt.smoothed_rtt if self._rtt.has_sample else 0.0

    @property
    def has_pending(self) -> bool:
        """True when a PING waits to be written."""
        return bool(self._to_send)

    def ping(self) -> int:
        """Queue an application PING; its id comes back in a PingAcknowledged event."""
        self._pings += 1
        self._queue(self._pings)
        return self._pings

    def probe(self) -> None:
        """Queue an internal PING (an RTT sample, or a keep-alive): its PONG raises no event."""
        self._queue(None)

    def write(self, now: float | None) -> None:
        """Write the queued PINGs, sent at ``now`` (None: unknown, so their PONGs give no RTT sample).

        At most MAX_PINGS_IN_FLIGHT stay remembered: a peer that never answers cannot make the table
        grow for the connection's life; the oldest is forgotten (its late PONG is then ignored).
        """
        for token, uid in self._to_send:
            self._outbox.write(Ping(token))
            self._in_flight[token] = (uid, now)
            if len(self._in_flight) > MAX_PINGS_IN_FLIGHT:
                del self._in_flight[next(iter(self._in_flight))]
        self._to_send.clear()

    @property
    def in_flight(self) -> int:
        """PINGs written and not yet answered (bounded by MAX_PINGS_IN_FLIGHT)."""
        return len(self._in_flight)

    def on_ping(self, frame: Ping) -> None:
        """The peer's PING: echo its token."""
        self._outbox.write(Pong(frame.token))

    def on_pong(self, frame: Pong, now: float) -> None:
        """A PONG received at ``now``: an RTT sample, and the event for an application PING."""
        sent = self._in_flight.pop(frame.token, None)
        if sent is None:
            return  # not ours, or already answered: harmless
        uid, sent_at = sent
        if sent_at is not None:
            self._rtt.update(now - sent_at, 0.0, handshake_confirmed=True, max_ack_delay=0.0)
        if uid is not None:
            self._emit(PingAcknowledged(uid))

    def clear(self) -> None:
        """Forget the PINGs not yet written (the connection is closing)."""
        self._to_send.clear()

    def _queue(self, uid: int | None) -> None:
        self._tokens += 1
        self._to_send.append((self._tokens.to_bytes(8, "big"), uid))


class Liveness:
    """When bytes last arrived and left: the idle timeout and the keep-alive PING are due from them."""

    __slots__ = (
        "_idle_timeout",
        "_keepalive_interval",
        "_last_received_at",
        "_last_sent_at",
        "_peer_idle_timeout",
    )

    def __init__(self, config: Config, now: float) -> None:
        self._idle_timeout = config.idle_timeout
        self._peer_idle_timeout: float | None = None  # from the peer's HELLO (0: none)
        self._keepalive_interval = config.keepalive_interval
        self._last_received_at = now
        self._last_sent_at = now

    def on_peer_hello(self, idle_timeout_ms: int) -> None:
        """The peer's idle timeout: the connection ends after the shorter of both (0 means none)."""
        self._peer_idle_timeout = idle_timeout_ms / 1000

    def on_received(self, now: float) -> None:
        """Bytes arrived at ``now``: the idle timer restarts."""
        self._last_received_at = max(self._last_received_at, now)

    def on_sent(self, now: float) -> None:
        """Bytes left (or a keep-alive PING was queued) at ``now``: the keep-alive timer restarts."""
        self._last_sent_at = max(self._last_sent_at, now)

    def idle_deadline(self) -> float | None:
        """When the connection closes for silence, or None without an idle timeout."""
        timeouts = [t for t in (self._idle_timeout, self._peer_idle_timeout) if t is not None and t > 0]
        return self._last_received_at + min(timeouts) if timeouts else None

    def keepalive_deadline(self) -> float | None:
        """When a keep-alive PING is due, or None without keep-alive."""
        interval = self._keepalive_interval
        return None if interval is None else self._last_sent_at + interval


__all__ = ["Liveness", "Pings"]
