"""NewReno congestion control as specified by RFC 9002 §7 and Appendix B.

Owns the window arithmetic: slow start, congestion avoidance, the recovery period (one reduction per
round trip) and the persistent-congestion collapse. It does not own loss detection or bytes in flight,
which :mod:`rudp.quic.recovery` tracks and reports through the hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rudp.quic.congestion.base import (
    AVOIDANCE_PACING_GAIN,
    K_LOSS_REDUCTION_FACTOR,
    SLOW_START_PACING_GAIN,
    BaseCongestionController,
    newest_in_flight_sent_at,
)

if TYPE_CHECKING:
    from rudp.quic.rtt import RttEstimator
    from rudp.quic.sent import SentPacket


class NewReno(BaseCongestionController):
    """The RFC 9002 reference controller.

    ``ssthresh`` is ``None`` (infinite) until the first congestion event. The controller is in slow
    start while ``cwnd < ssthresh`` and in a recovery period while acknowledged packets were sent at or
    before :attr:`recovery_start_at`. The window does not grow while loss recovery reports the sender
    application-limited (RFC 9002 §7.8, :meth:`set_app_limited`); a congestion event whose losses all
    prove spurious is undone (:meth:`undo`, :mod:`rudp.quic.congestion.undo`), and recovery periods
    are paced by PRR (:mod:`rudp.quic.congestion.prr`).
    """

    uses_prr = True

    def __init__(self, max_datagram_size: int = 1200) -> None:
        super().__init__(max_datagram_size)
        self.ssthresh: int | None = None
        self.recovery_start_at: float | None = None
        self._avoidance_credit_bytes = 0
        self._last_acked_sent_at: float | None = None
        self.congestion_events = 0
        self.app_limited = False
        self.undone_events = 0
        """Congestion events undone because every loss they reacted to proved spurious."""

    @property
    def in_slow_start(self) -> bool:
        """True while the window is below the slow start threshold."""
        return self.ssthresh is None or self.cwnd < self.ssthresh

    def _in_recovery(self, sent_at: float) -> bool:
        # RFC 9002 §7.3.2: packets sent before the recovery period started belong to the old round.
        return self.recovery_start_at is not None and sent_at <= self.recovery_start_at

    def on_packets_acked(self, packets: list[SentPacket], now: float, rtt: RttEstimator) -> None:
        """Grow the window: by the acked bytes in slow start, ~1 datagram per window otherwise.

        Per ACK frame with the in-flight bytes' total when that comes to what packet by packet gives
        (:meth:`_grow_per_packet`): no packet of the recovery period, and the ACK neither crosses
        ssthresh in slow start nor earns the avoidance credit twice."""
        recovery_start_at = self.recovery_start_at
        total = 0
        last: SentPacket | None = None
        if recovery_start_at is None:
            for packet in packets:
                if packet.in_flight:
                    total += packet.size_bytes
                    last = packet
        else:
            for packet in packets:
                if packet.in_flight:
                    if packet.sent_at <= recovery_start_at:
                        self._grow_per_packet(packets)  # RFC 9002 §7.3.2: some belong to the old round
                        return
                    total += packet.size_bytes
                    last = packet
        if last is None:
            return
        self._last_acked_sent_at = last.sent_at
        if self.app_limited:
            return  # RFC 9002 §7.8
        cwnd, ssthresh = self.cwnd, self.ssthresh
        if ssthresh is None or cwnd + total < ssthresh:
            self.cwnd = cwnd + total  # RFC 9002 §7.3.1: each packet in slow start
        elif cwnd >= ssthresh and self._avoidance_credit_bytes + total < 2 * cwnd:
            # RFC 9002 §7.3.3 (below): at most one datagram more, as packet by packet (the credit
            # crosses the window once at most: the window only grows, and only after the crossing).
            credit = self._avoidance_credit_bytes + total
            if credit >= cwnd:
                credit -= cwnd
                self.cwnd = cwnd + self.max_datagram_size
            self._avoidance_credit_bytes = credit
        else:
            self._grow_per_packet(packets)

    def _grow_per_packet(self, packets: list[SentPacket]) -> None:
        recovery_start_at = self.recovery_start_at  # _in_recovery, inline (per packet)
        for packet in packets:
            if not packet.in_flight:
                continue
            self._last_acked_sent_at = packet.sent_at
            # RFC 9002 §7.3.2: no growth during a recovery period; §7.8: none while app-limited.
            if (recovery_start_at is not None and packet.sent_at <= recovery_start_at) or self.app_limited:
                continue
            if self.ssthresh is None or self.cwnd < self.ssthresh:  # in_slow_start, inline
                # RFC 9002 §7.3.1: slow start grows by the bytes acknowledged.
                self.cwnd += packet.size_bytes
                continue
            # RFC 9002 §7.3.3 / RFC 3465 §2.1 byte counting: one max datagram per cwnd of bytes acked,
            # kept in an integer credit so no fraction is lost to rounding.
            self._avoidance_credit_bytes += packet.size_bytes
            if self._avoidance_credit_bytes >= self.cwnd:
                self._avoidance_credit_bytes -= self.cwnd
                self.cwnd += self.max_datagram_size

    def on_packets_lost(self, packets: list[SentPacket], now: float) -> None:
        """Start a congestion event for the newest lost in-flight packet."""
        last_sent_at = newest_in_flight_sent_at(packets)
        if last_sent_at is not None:
            self._on_congestion_event(last_sent_at, now)

    def on_ecn_ce(self, count: int, now: float) -> None:
        """Treat newly CE-marked packets as a congestion event (RFC 9002 §7.1).

        The recovery-period check uses the send time of the most recently acknowledged packet, which
        loss recovery reports just before this hook.
        """
        if count > 0:
            sent_at = self._last_acked_sent_at if self._last_acked_sent_at is not None else now
            self._on_congestion_event(sent_at, now)

    def _on_congestion_event(self, sent_at: float, now: float) -> None:
        # RFC 9002 §7.3.2: at most one reduction per round trip.
        if self._in_recovery(sent_at):
            return
        self.congestion_events += 1
        self.recovery_start_at = now
        self.ssthresh = int(self.cwnd * K_LOSS_REDUCTION_FACTOR)
        self.cwnd = max(self.ssthresh, self.minimum_window_bytes)
        self._avoidance_credit_bytes = 0

    def set_app_limited(self, app_limited: bool) -> None:
        """Loss recovery: the window did not limit the sender over the last round trip (RFC 9002
        §7.8: the window SHOULD NOT grow then; :mod:`rudp.quic.congestion.window_use` has the rule)."""
        self.app_limited = app_limited

    def window_pacing_gain(self) -> float:
        """2 in slow start below half of ssthresh, 1.25 otherwise (RFC 9002 §7.7,
        :func:`~rudp.quic.congestion.base.pacing_gain_for`)."""
        ssthresh = self.ssthresh  # (pacing_gain_for, inline: asked per paced datagram)
        if ssthresh is None or 2 * self.cwnd < ssthresh:
            return SLOW_START_PACING_GAIN
        return AVOIDANCE_PACING_GAIN

    def undo_snapshot(self) -> tuple[int, int | None, float | None, int]:
        """What a congestion event changes (:class:`~rudp.quic.congestion.undo.Undoable`)."""
        return (self.cwnd, self.ssthresh, self.recovery_start_at, self._avoidance_credit_bytes)

    def undo(self, snapshot: object) -> None:
        """Every loss of the last congestion event proved spurious: back to the state before it
        (RFC 4015 §2; the window keeps any growth since, as Linux's undo takes the larger)."""
        cwnd, ssthresh, recovery_start_at, credit = cast(
            tuple[int, "int | None", "float | None", int], snapshot
        )
        self.cwnd = max(self.cwnd, cwnd)
        self.undone_events += 1
        self.ssthresh = ssthresh
        self.recovery_start_at = recovery_start_at
        self._avoidance_credit_bytes = credit

    def on_persistent_congestion(self, now: float) -> None:
        """Collapse to the minimum window (RFC 9002 §7.6.2) and leave the recovery period."""
        self.cwnd = self.minimum_window_bytes
        self.recovery_start_at = None
        self._avoidance_credit_bytes = 0

    def on_path_change(self, now: float) -> None:
        """Restart from the initial window with no memory of the old path (RFC 9000 §9.4)."""
        self.cwnd = self.initial_window_bytes
        self.ssthresh = None
        self.recovery_start_at = None
        self._avoidance_credit_bytes = 0

    def metrics(self) -> dict[str, float]:
        """``cwnd``, ``ssthresh`` (omitted while infinite) and ``congestion_events``."""
        out = {"cwnd": float(self.cwnd), "congestion_events": float(self.congestion_events)}
        if self.ssthresh is not None:
            out["ssthresh"] = float(self.ssthresh)
        return out
