"""CUBIC congestion control (RFC 9438) with HyStart++ (RFC 9406) for leaving slow start.

Owns the window arithmetic: slow start (with HyStart++ and Conservative Slow Start), the cubic window
growth function, the Reno-friendly region, multiplicative decrease with beta 0.7, fast convergence,
the recovery period (one reduction per round trip, as RFC 9002 §7.3.2) and the persistent-congestion
collapse. It does not own loss detection or bytes in flight (:mod:`rudp.quic.recovery`) nor pacing
(:mod:`rudp.quic.pacing`).

RFC 9438 counts windows in segments; here windows are bytes and a segment is the max datagram size,
so ``W_cubic(t) = C * (t - K)**3 * mds + W_max`` with ``W_max`` in bytes and ``t``, ``K`` in seconds.
The window does not grow while loss recovery reports the sender application-limited (RFC 9002 §7.8);
a congestion event whose losses all prove spurious is undone (RFC 9438 §4.9, :meth:`Cubic.undo`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, cast

from rudp.quic.congestion.base import (
    AVOIDANCE_PACING_GAIN,
    SLOW_START_PACING_GAIN,
    BaseCongestionController,
    newest_in_flight_sent_at,
)
from rudp.quic.congestion.hystart import HyStart

if TYPE_CHECKING:
    from rudp.quic.rtt import RttEstimator
    from rudp.quic.sent import SentPacket

CUBIC_C: Final = 0.4
"""The aggressiveness constant C, segments per second cubed (RFC 9438 §5.1)."""
CUBIC_BETA: Final = 0.7
"""The multiplicative decrease factor beta_cubic (RFC 9438 §4.6, §5.1)."""
CUBIC_ALPHA: Final = 3 * (1 - CUBIC_BETA) / (1 + CUBIC_BETA)
"""The Reno-friendly additive increase alpha_cubic, segments per RTT (RFC 9438 §4.3)."""


class Cubic(BaseCongestionController):
    """The RFC 9438 controller.

    ``ssthresh`` is ``None`` (infinite) until slow start ends. Slow start is governed by HyStart++
    until the first congestion event; a congestion avoidance *epoch* starts at the first
    acknowledgment after slow start or after a recovery period, and ``t`` in ``W_cubic(t)`` counts
    from there (:attr:`epoch_start_at`).
    """

    uses_prr = True
    send_hook_keeps_window = True  # the send hook only tracks HyStart++'s round boundary

    def __init__(self, max_datagram_size: int = 1200, *, hystart: bool = True) -> None:
        super().__init__(max_datagram_size)
        self.use_hystart = hystart
        self.congestion_events = 0
        self.app_limited = False
        self.undone_events = 0
        """Congestion events undone because every loss they reacted to proved spurious."""
        self._reset()

    def _reset(self) -> None:
        self.cwnd = self.initial_window_bytes
        self.ssthresh: int | None = None
        self.recovery_start_at: float | None = None
        self.hystart = HyStart()
        if not self.use_hystart:
            self.hystart.finish()
        self.w_max = 0.0
        """Window just before the last reduction, bytes (after fast convergence; RFC 9438 §4.7)."""
        self.k = 0.0
        """Seconds from the epoch start until ``W_cubic`` is back at :attr:`w_max` (RFC 9438 §4.2)."""
        self.epoch_start_at: float | None = None
        self.cwnd_epoch = 0.0
        self.w_est = 0.0
        """The Reno-friendly window estimate, bytes (RFC 9438 §4.3)."""
        self._cwnd_prior = 0.0
        self._window = float(self.cwnd)
        self._last_acked_sent_at: float | None = None
        self._app_limited_since: float | None = None

    # -- the defining equations -----------------------------------------------------------------------

    def w_cubic(self, t: float) -> float:
        """``W_cubic(t)`` in bytes, ``t`` seconds into the current epoch (RFC 9438 §4.2, Figure 1)."""
        return CUBIC_C * (t - self.k) ** 3 * self.max_datagram_size + self.w_max

    @property
    def in_slow_start(self) -> bool:
        """True while the window is below the slow start threshold (CSS included)."""
        return self.ssthresh is None or self.cwnd < self.ssthresh

    @property
    def congestion_state(self) -> str:
        """``slow_start``, ``conservative_slow_start``, ``recovery`` or ``congestion_avoidance``."""
        if self.in_slow_start:
            return "conservative_slow_start" if self.hystart.in_css else "slow_start"
        if self.recovery_start_at is not None and self.epoch_start_at is None:
            return "recovery"
        return "congestion_avoidance"

    def _set_window(self, window: float) -> None:
        self._window = max(window, float(self.minimum_window_bytes))
        self.cwnd = int(self._window)

    def _in_recovery(self, sent_at: float) -> bool:
        # RFC 9002 §7.3.2: packets sent before the recovery period started belong to the old round.
        return self.recovery_start_at is not None and sent_at <= self.recovery_start_at

    # -- hooks ------------------------------------------------------------------------------------------

    def on_packet_sent(self, packet: SentPacket, now: float) -> None:
        """Track the HyStart++ round boundary."""
        self.hystart.on_packet_sent(packet)

    def on_packets_acked(self, packets: list[SentPacket], now: float, rtt: RttEstimator) -> None:
        """Grow the window: slow start / CSS below ssthresh, the cubic function above it."""
        acked_bytes = 0
        recovery_start_at = self.recovery_start_at  # _in_recovery, inline (per packet)
        for packet in packets:
            if not packet.in_flight:
                continue
            self._last_acked_sent_at = packet.sent_at
            if recovery_start_at is None or packet.sent_at > recovery_start_at:
                acked_bytes += packet.size_bytes
        if acked_bytes == 0:
            return
        if self.app_limited:
            # RFC 9002 §7.8: no growth while the application, not the window, limits the flight. The
            # cubic epoch is frozen meanwhile (RFC 9438 §5.8: t excludes app-limited time).
            if self.epoch_start_at is not None and self._app_limited_since is None:
                self._app_limited_since = now
            return
        if self._app_limited_since is not None:
            if self.epoch_start_at is not None:
                self.epoch_start_at += now - self._app_limited_since
            self._app_limited_since = None
        if self.in_slow_start:
            self._slow_start(packets, acked_bytes, rtt)
            return
        self._congestion_avoidance(acked_bytes, now, rtt.smoothed_rtt)

    def _slow_start(self, packets: list[SentPacket], acked_bytes: int, rtt: RttEstimator) -> None:
        hystart = self.hystart
        if hystart.active and self.ssthresh is None:
            # RFC 9406 §4.3: in CSS the window grows by a quarter of the acknowledged bytes.
            self._set_window(self._window + acked_bytes / hystart.growth_divisor())
            if hystart.on_ack(packets, rtt.latest_rtt):
                # RFC 9406 §4.3: after CSS_ROUNDS of CSS, congestion avoidance begins here.
                self.ssthresh = self.cwnd
            return
        # RFC 9002 §7.3.1 / RFC 9438 §4.10: standard slow start grows by the bytes acknowledged.
        self._set_window(self._window + acked_bytes)

    def _start_epoch(self, now: float) -> None:
        # RFC 9438 §4.2: K is the time the cubic function takes to climb from the window at the start
        # of the epoch back to W_max. When slow start ended without a loss (HyStart++), W_max is the
        # current window and K is 0 (RFC 9438 §4.10).
        self.epoch_start_at = now
        self.cwnd_epoch = self._window
        if self.w_max < self._window:
            self.w_max = self._window
            self._cwnd_prior = self._window
        segments = (self.w_max - self.cwnd_epoch) / self.max_datagram_size
        self.k = (segments / CUBIC_C) ** (1 / 3) if segments > 0 else 0.0
        self.w_est = self.cwnd_epoch

    def _congestion_avoidance(self, acked_bytes: int, now: float, srtt: float) -> None:
        if self.epoch_start_at is None:
            self._start_epoch(now)
        start = self.epoch_start_at if self.epoch_start_at is not None else now
        window = self._window
        mds = self.max_datagram_size
        # RFC 9438 §4.3: W_est grows by alpha_cubic segments per window of acknowledged bytes, and by
        # one segment per window (alpha = 1) once it has passed the window before the last reduction.
        alpha = 1.0 if self.w_est >= self._cwnd_prior else CUBIC_ALPHA
        self.w_est += alpha * mds * acked_bytes / window
        t = now - start
        if self.w_cubic(t) < self.w_est:
            # RFC 9438 §4.3: the Reno-friendly region: follow the Reno estimate.
            self._set_window(self.w_est)
            return
        # RFC 9438 §4.4, §4.5: aim for W_cubic one RTT ahead, clamped to [cwnd, 1.5 cwnd], and close
        # (target - cwnd)/cwnd of the gap per segment acknowledged.
        target = min(max(self.w_cubic(t + srtt), window), 1.5 * window)
        self._set_window(window + (target - window) * acked_bytes / window)

    def on_packets_lost(self, packets: list[SentPacket], now: float) -> None:
        """Start a congestion event for the newest lost in-flight packet."""
        last_sent_at = newest_in_flight_sent_at(packets)
        if last_sent_at is not None:
            self._on_congestion_event(last_sent_at, now)

    def on_ecn_ce(self, count: int, now: float) -> None:
        """Treat newly CE-marked packets as a congestion event (RFC 9002 §7.1, RFC 9438 §4.6)."""
        if count > 0:
            sent_at = self._last_acked_sent_at if self._last_acked_sent_at is not None else now
            self._on_congestion_event(sent_at, now)

    def _on_congestion_event(self, sent_at: float, now: float) -> None:
        # RFC 9002 §7.3.2: at most one reduction per round trip.
        if self._in_recovery(sent_at):
            return
        self.congestion_events += 1
        self.recovery_start_at = now
        self.hystart.finish()
        window = self._window
        # RFC 9438 §4.7 fast convergence: a flow whose W_max keeps shrinking releases bandwidth by
        # remembering a lower W_max.
        if window < self.w_max:
            self.w_max = window * (1 + CUBIC_BETA) / 2
        else:
            self.w_max = window
        self._cwnd_prior = window
        # RFC 9438 §4.6: multiplicative decrease by beta_cubic.
        self.ssthresh = max(int(window * CUBIC_BETA), self.minimum_window_bytes)
        self._set_window(window * CUBIC_BETA)
        self.epoch_start_at = None

    def set_app_limited(self, app_limited: bool) -> None:
        """Loss recovery: the window did not limit the sender over the last round trip (RFC 9002
        §7.8: the window SHOULD NOT grow then; :mod:`rudp.quic.congestion.window_use` has the rule)."""
        self.app_limited = app_limited

    def window_pacing_gain(self) -> float:
        """2 in slow start below half of ssthresh, 1.25 in Conservative Slow Start (it grows the window
        by a quarter per round trip, RFC 9406 §4.3), congestion avoidance and recovery (RFC 9002 §7.7,
        :func:`~rudp.quic.congestion.base.pacing_gain_for`)."""
        if self.hystart.in_css:
            return AVOIDANCE_PACING_GAIN
        ssthresh = self.ssthresh  # (pacing_gain_for, inline: asked per paced datagram)
        if ssthresh is None or 2 * self.cwnd < ssthresh:
            return SLOW_START_PACING_GAIN
        return AVOIDANCE_PACING_GAIN

    def undo_snapshot(self) -> tuple[object, ...]:
        """What a congestion event changes (:class:`~rudp.quic.congestion.undo.Undoable`)."""
        return (
            self._window,
            self.ssthresh,
            self.recovery_start_at,
            self.w_max,
            self.k,
            self.epoch_start_at,
            self.cwnd_epoch,
            self.w_est,
            self._cwnd_prior,
        )

    def undo(self, snapshot: object) -> None:
        """Every loss of the last congestion event proved spurious: RFC 9438 §4.9 restores the window,
        ssthresh, W_max, K and the epoch from before it (the window keeps any growth since)."""
        window, ssthresh, recovery_start_at, w_max, k, epoch, cwnd_epoch, w_est, prior = cast(
            tuple[float, "int | None", "float | None", float, float, "float | None", float, float, float],
            snapshot,
        )
        self._set_window(max(self._window, window))
        self.undone_events += 1
        self.ssthresh = ssthresh
        self.recovery_start_at = recovery_start_at
        self.w_max, self.k, self.epoch_start_at = w_max, k, epoch
        self.cwnd_epoch, self.w_est, self._cwnd_prior = cwnd_epoch, w_est, prior
        self._app_limited_since = None

    def on_persistent_congestion(self, now: float) -> None:
        """Collapse to the minimum window (RFC 9002 §7.6.2, RFC 9438 §4.8) and leave recovery.

        ``ssthresh`` keeps the value the loss just set, so slow start climbs back to it.
        """
        self._set_window(self.minimum_window_bytes)
        self.recovery_start_at = None
        self.epoch_start_at = None
        self.hystart.finish()

    def on_path_change(self, now: float) -> None:
        """Restart from the initial window with no memory of the old path (RFC 9000 §9.4)."""
        self._reset()

    def metrics(self) -> dict[str, float]:
        """``cwnd``, ``ssthresh`` (omitted while infinite), ``w_max``, ``k`` and event counters."""
        out = {
            "cwnd": float(self.cwnd),
            "congestion_events": float(self.congestion_events),
            "hystart_exits": float(self.hystart.exits),
            "w_max": self.w_max,
            "k": self.k,
        }
        if self.ssthresh is not None:
            out["ssthresh"] = float(self.ssthresh)
        return out
