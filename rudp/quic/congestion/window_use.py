"""Whether the congestion window limited the sender: the RFC 9002 §7.8 test for window growth.

RFC 9002 §7.8: while bytes in flight stay below the window for lack of data (the application or flow
control), the window SHOULD NOT grow, in slow start or congestion avoidance; RFC 7661 allows other
rules for such periods. Asking "is the window full right now?" on every ACK is the wrong question
for a request/response workload: a round's data arrives at once, fills the flight, and by the time
its ACKs arrive the sender has run dry, so the window never grows past one round's size, even in slow
start, and each round keeps needing its full round trip (issue 14's head-of-line benchmark).

:class:`WindowUse` answers per round trip instead, as Linux does (tcp_cwnd_validate and
tcp_is_cwnd_limited): the window limited the sender if, in the current round,

- a packet found the window full (the flight reached the window, or the window refused a packet), or
- in slow start, the largest flight of the round was more than half the window: slow start doubles
  the window each round, so a flight of at least half of it is one that slow start itself produced.

A round begins at the first send after a packet sent at or after the last round's start was
acknowledged; the window-full mark of a round thus covers the ACKs of the round that follows it.
Owned by :class:`~rudp.quic.recovery.LossRecovery`, which feeds it sends, refusals and ACKs and
reports the answer to the controller (``set_app_limited``). Pacing delays alone do not count as
application limits (RFC 9002 §7.8): the pacer runs above the window's rate (1.25-2 x cwnd/srtt), so a
sender with data reaches the window within the round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rudp.quic.congestion.base import CongestionController
    from rudp.quic.sent import SentPacket


class WindowUse:
    """Per round trip: did the window limit the sender, and how large did the flight get."""

    __slots__ = ("_last_sent_at", "_round_over", "_round_start_at", "max_flight", "window_full")

    def __init__(self) -> None:
        self.window_full = False
        """A packet of the current round found the window full."""
        self.max_flight = 0
        """The largest bytes in flight after a send of the current round."""
        self._round_start_at: float | None = None
        self._round_over = True
        self._last_sent_at: float | None = None

    def on_sent(self, bytes_in_flight: int, window_full: bool, now: float) -> None:
        """A packet left (``bytes_in_flight`` counts it); ``window_full``: the next one would not fit.

        Linux tcp_cwnd_validate: a new round, a full window or (in a round not yet window-limited) a
        larger flight restarts the record from this send."""
        self._last_sent_at = now
        if (
            self._round_over
            or window_full
            or (not self.window_full and bytes_in_flight > self.max_flight)
        ):
            self.window_full = window_full
            self.max_flight = bytes_in_flight
            self._round_start_at = now
            self._round_over = False

    def on_train_sent(self, packets: list[SentPacket], bytes_in_flight: int, window: int) -> int:
        """:meth:`on_sent` for each packet in flight of a train, in order, the flight starting at
        ``bytes_in_flight`` and the window fixed; returns the flight after the last packet."""
        flight = bytes_in_flight
        for packet in packets:
            if packet.in_flight:
                size = packet.size_bytes
                flight += size
                full = flight + size > window
                now = packet.sent_at
                self._last_sent_at = now
                if self._round_over or full or (not self.window_full and flight > self.max_flight):
                    self.window_full = full
                    self.max_flight = flight
                    self._round_start_at = now
                    self._round_over = False
        return flight

    def on_window_refused(self, bytes_in_flight: int) -> None:
        """The window refused a packet: the sender had data and the window stopped it (the round, if a
        new one starts here, ends with the acknowledgment of the last packet sent)."""
        if self._last_sent_at is not None:
            self.on_sent(bytes_in_flight, True, self._last_sent_at)

    def on_acked(self, newest_sent_at: float) -> None:
        """Packets were acknowledged, the newest sent at ``newest_sent_at``: a packet sent at or after
        the round's start ends the round (its record stays until the next send)."""
        if self._round_start_at is not None and newest_sent_at >= self._round_start_at:
            self._round_over = True

    def window_limited(self, window: int, in_slow_start: bool) -> bool:
        """True if the window may grow on this ACK (RFC 9002 §7.8; Linux tcp_is_cwnd_limited)."""
        if self.window_full:
            return True
        return in_slow_start and window < 2 * self.max_flight

    def on_ack(self, controller: CongestionController, newest_sent_at: float) -> bool:
        """An ACK, before ``controller`` sees it: :meth:`window_limited` with the controller's window
        and slow start, then :meth:`on_acked` (``newest_sent_at``: -inf when no packet in flight was
        acknowledged), in one call (recovery's, per ACK)."""
        # (The window and slow start asked only when needed: this runs for every ACK.)
        limited = self.window_full or (
            controller.congestion_window < 2 * self.max_flight
            and bool(getattr(controller, "in_slow_start", False))
        )
        start = self._round_start_at
        if start is not None and newest_sent_at >= start:
            self._round_over = True
        return limited

    def reset(self) -> None:
        """A new path: nothing is known about how the new window is used."""
        self.window_full = False
        self.max_flight = 0
        self._round_start_at = None
        self._round_over = True
        self._last_sent_at = None
