"""When the connection last showed signs of life, for the idle timeout (RFC 9000 §10.1), the keep-alive
PING, and the occasional ack-eliciting packet of an endpoint that only acknowledges (RFC 9000 §13.2.4).

Owns :class:`Liveness`: the time of the last activity, whether the next ack-eliciting packet sent
restarts the idle timer, the time of the last ack-eliciting packet sent and how many ACK-only datagrams
followed it. The connection reports each packet received and each datagram sent; the deadlines are
computed on demand, nothing here arms a timer or reads a clock.
"""

from __future__ import annotations


class Liveness:
    """Idle and keep-alive bookkeeping of one connection."""

    __slots__ = ("_ack_only_sent", "_last_ack_eliciting_sent", "_last_activity", "_restart_on_send")

    def __init__(self, now: float) -> None:
        self._last_activity = now
        self._restart_on_send = True
        self._last_ack_eliciting_sent = now
        self._ack_only_sent = 0

    def on_packet_received(self, now: float) -> None:
        """An authenticated packet arrived: the idle timer restarts (RFC 9000 §10.1)."""
        self._last_activity = now
        self._restart_on_send = True

    def on_datagram_sent(self, now: float, *, ack_eliciting: bool) -> None:
        """A datagram left; ``ack_eliciting`` if any of its packets was."""
        if not ack_eliciting:
            self._ack_only_sent += 1
            return
        self._ack_only_sent = 0
        self._last_ack_eliciting_sent = now
        if self._restart_on_send:
            # RFC 9000 §10.1: the first ack-eliciting packet after a receipt restarts the timer.
            self._restart_on_send = False
            self._last_activity = now

    def idle_deadline(self, timeout: float | None) -> float | None:
        """When the connection times out for ``timeout`` seconds of silence (None: never)."""
        return None if timeout is None else self._last_activity + timeout

    def keepalive_deadline(self, interval: float | None) -> float | None:
        """When a keep-alive PING is due, ``interval`` after the last ack-eliciting packet sent."""
        return None if interval is None else self._last_ack_eliciting_sent + interval

    def ack_only_wants_ping(self, now: float, smoothed_rtt: float) -> bool:
        """RFC 9000 §13.2.4: after ACK-only datagrams for a round trip, make the next one ack-eliciting.

        With a packet of ours in flight the PTO stays armed, so a receiver whose NAT rebound, and whose
        first datagram from the new address was lost, probes from there instead of waiting in silence
        (the peer can no longer reach it). The caller also checks that nothing ack-eliciting is in
        flight, so this never turns into a PING exchange.
        """
        return self._ack_only_sent > 0 and now - self._last_ack_eliciting_sent >= smoothed_rtt
