"""When the connection last showed signs of life, for the idle timeout (RFC 9000 §10.1) and the
keep-alive PING.

Owns :class:`Liveness`: the time of the last activity, whether the next ack-eliciting packet sent
restarts the idle timer, and the time of the last ack-eliciting packet sent. The connection reports
each packet received and each datagram sent; the deadlines are computed on demand, nothing here arms a
timer or reads a clock.
"""

from __future__ import annotations


class Liveness:
    """Idle and keep-alive bookkeeping of one connection."""

    __slots__ = (
        "_ack_only_sent",
        "_last_ack_eliciting_sent",
        "_last_activity",
        "_restart_on_send",
    )

    def __init__(self, now: float) -> None:
        self._last_activity = now
        self._restart_on_send = True
        self._last_ack_eliciting_sent = now

    def on_packet_received(self, now: float) -> None:
        """An authenticated packet arrived: the idle timer restarts (RFC 9000 §10.1)."""
        self._last_activity = now
        self._restart_on_send = True

    def on_datagram_sent(self, now: float, *, ack_eliciting: bool) -> None:
        """A datagram left; ``ack_eliciting`` if any of its packets was."""
        if not ack_eliciting:
            return
        self._last_ack_eliciting_sent = now
        if self._restart_on_send:
            # RFC 9000 §10.1: the first ack-eliciting packet after a receipt restarts the timer.
            self._restart_on_send = False
            self._last_activity = now

    def idle_deadline(self, timeout: float | None) -> float | None:
        """When the connection times out for ``timeout`` seconds of silence (None: never)."""
        return None if timeout is None else self._last_activity + timeout

    def deadlines(self, timeout: float | None, interval: float | None) -> tuple[float | None, float | None]:
        """:meth:`idle_deadline` and :meth:`keepalive_deadline` in one call (asked after every flush)."""
        return (
            None if timeout is None else self._last_activity + timeout,
            None if interval is None else self._last_ack_eliciting_sent + interval,
        )

    def keepalive_deadline(self, interval: float | None) -> float | None:
        """When a keep-alive PING is due, ``interval`` after the last ack-eliciting packet sent."""
        return None if interval is None else self._last_ack_eliciting_sent + interval
