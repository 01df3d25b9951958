"""BBR congestion control, version 3, as specified by draft-ietf-ccwg-bbr.

Owns BBR's path model (the max-bandwidth and min-RTT filters, the short-term lower bounds
``bw_shortterm``/``inflight_shortterm`` and the long-term upper bound ``inflight_longterm``, called
inflight_lo/inflight_hi in earlier drafts), its state machine (Startup, Drain, ProbeBW
DOWN/CRUISE/REFILL/UP, ProbeRTT) and the control parameters derived from them: the pacing rate and the
congestion window. Section names below are the draft's.

It does not own delivery-rate sampling (:mod:`rudp.quic.congestion.delivery_rate`, run by loss recovery
because BBR sets ``uses_rate_samples``), loss detection, bytes in flight or the pacer
(:mod:`rudp.quic.pacing` paces at :meth:`Bbr.pacing_rate`).

Deviations, all deliberate:

- The loss response follows the draft (loss rate above 2% of the data in flight bounds
  ``inflight_longterm`` while probing; any loss in a round cuts the short-term bounds by BBRBeta outside
  probing, the round measured from the first loss, "NoteLoss"; Startup ends after 6 loss events in a
  round with the loss rate above 2%). QUIC's recovery period (RFC 9002 §7.3.2: until a packet sent
  after its start is acknowledged) stands in for TCP's fast recovery in "Modulating cwnd in Loss
  Recovery": entering it saves the window, leaving it restores the window; in between the window is
  the model's (the draft dropped the older drafts' packet conservation, which Linux BBRv3 still has).
- ECN (cheap, after Linux BBRv3, which the draft leaves open): CE marks are counted per round; a round
  whose CE fraction exceeds 50% of the packets delivered counts as "inflight too high" (while probing,
  and to leave Startup), and a round with any CE mark cuts ``inflight_shortterm`` by ``ecn_alpha / 3``,
  where ``ecn_alpha`` is a per-round moving average (gain 1/16) of the CE fraction.
- MarkConnectionAppLimited in ProbeRTT is kept inside BBR: samples of packets sent before the ProbeRTT
  flight is delivered are treated as application-limited here (the estimator is loss recovery's).
- The randomised probe waits come from a seeded :class:`~.bbr_filters.XorShift32` (no ``random`` in the
  sans-IO core); the default seed makes runs reproducible.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

from rudp.quic.congestion.base import BaseCongestionController
from rudp.quic.congestion.bbr_filters import MaxBwFilter, WindowedMax, XorShift32

if TYPE_CHECKING:
    from rudp.quic.congestion.delivery_rate import RateSample
    from rudp.quic.rtt import RttEstimator
    from rudp.quic.sent import SentPacket

INF: Final = math.inf
STARTUP_PACING_GAIN: Final = 2.77
"""4 ln 2: the lowest gain that doubles the delivery rate each round ("Startup")."""
STARTUP_CWND_GAIN: Final = 2.0
DRAIN_PACING_GAIN: Final = 0.5
"""1 / BBRStartupCwndGain: drains Startup's queue in about one round ("Drain"; -01 used 0.35)."""
DEFAULT_CWND_GAIN: Final = 2.0
PROBE_UP_PACING_GAIN: Final = 1.25
PROBE_UP_CWND_GAIN: Final = 2.25
PROBE_DOWN_PACING_GAIN: Final = 0.9
PROBE_RTT_CWND_GAIN: Final = 0.5
PACING_MARGIN: Final = 0.01
"""BBRPacingMarginPercent: pace 1% below the estimate to keep queues short."""
LOSS_THRESH: Final = 0.02
"""BBRLossThresh: the highest loss rate in a round BBR tolerates while probing."""
BETA: Final = 0.7
"""BBRBeta: the multiplicative cut of the bounds on loss."""
HEADROOM: Final = 0.15
"""BBRHeadroom: the share of inflight_longterm left free for other flows while cruising."""
MIN_PIPE_PACKETS: Final = 4
"""BBRMinPipeCwnd, in max-size datagrams."""
FULL_BW_THRESH: Final = 1.25
FULL_BW_COUNT: Final = 3
DRAIN_MAX_ROUNDS: Final = 3
"""Drain ends after this many rounds even if the flight never fell to the estimated BDP."""
STARTUP_FULL_LOSS_COUNT: Final = 6
MIN_RTT_FILTER_LEN: Final = 10.0
PROBE_RTT_INTERVAL: Final = 5.0
PROBE_RTT_DURATION: Final = 0.2
EXTRA_ACKED_FILTER_LEN: Final = 10
STARTUP_EXTRA_ACKED_ROUNDS: Final = 2
MAX_RENO_ROUNDS: Final = 63
ECN_THRESH: Final = 0.5
ECN_ALPHA_GAIN: Final = 1 / 16
ECN_FACTOR: Final = 1 / 3
MAX_SEND_QUANTUM: Final = 64 * 1024

STARTUP: Final = "startup"
DRAIN: Final = "drain"
PROBE_BW_DOWN: Final = "probe_bw_down"
PROBE_BW_CRUISE: Final = "probe_bw_cruise"
PROBE_BW_REFILL: Final = "probe_bw_refill"
PROBE_BW_UP: Final = "probe_bw_up"
PROBE_RTT: Final = "probe_rtt"
PROBE_BW_STATES: Final = frozenset({PROBE_BW_DOWN, PROBE_BW_CRUISE, PROBE_BW_REFILL, PROBE_BW_UP})
STATES: Final = (STARTUP, DRAIN, PROBE_BW_DOWN, PROBE_BW_CRUISE, PROBE_BW_REFILL, PROBE_BW_UP, PROBE_RTT)

ACKS_INIT, ACKS_REFILLING, ACKS_PROBE_STARTING, ACKS_PROBE_FEEDBACK, ACKS_PROBE_STOPPING = range(5)


class Bbr(BaseCongestionController):
    """BBRv3 for one path. ``state`` is one of :data:`STATES`; bandwidths are bytes/s."""

    uses_rate_samples = True

    def __init__(self, max_datagram_size: int = 1200, *, seed: int = 1) -> None:
        super().__init__(max_datagram_size)
        self._rng = XorShift32(seed)
        self.state_changes: list[tuple[float, str]] = []
        """``(now, new state)`` for every transition (tests and plots read it)."""
        self._reset()

    def _reset(self) -> None:
        mds = self.max_datagram_size
        self.cwnd = self.initial_window_bytes
        self.min_pipe_cwnd = MIN_PIPE_PACKETS * mds
        self.state = STARTUP
        self.pacing_gain = STARTUP_PACING_GAIN
        self.cwnd_gain = STARTUP_CWND_GAIN
        self._pacing_rate = 0.0
        self.max_inflight = float(self.initial_window_bytes)
        # The model ("Network Path Model Parameters").
        self.max_bw_filter = MaxBwFilter()
        self.max_bw = 0.0
        self.bw = 0.0
        self.bdp = 0.0
        self.bw_shortterm = INF
        self.inflight_shortterm = INF
        self.inflight_longterm = INF
        self.bw_latest = 0.0
        self.inflight_latest = 0
        self.min_rtt = INF
        self.min_rtt_stamp: float | None = None
        self.probe_rtt_min_delay = INF
        self.probe_rtt_min_stamp = 0.0
        self.probe_rtt_expired = False
        self.extra_acked_filter = WindowedMax(EXTRA_ACKED_FILTER_LEN)
        self.extra_acked = 0.0
        self.extra_acked_interval_start = 0.0
        self.extra_acked_delivered = 0
        # Round counting ("Round-Trip Counting") and the full-pipe estimator.
        self.delivered = 0
        self.next_round_delivered = 0
        self.round_count = 0
        self.round_start = False
        self.rounds_since_bw_probe = 0
        self.full_bw = 0.0
        self.full_bw_count = 0
        self.full_bw_now = False
        self.full_bw_reached = False
        # Congestion signals per round.
        self.loss_round_delivered = 0
        self.loss_round_start = False
        self.loss_in_round = False
        self.loss_events_in_round = 0
        self.ce_in_round = 0
        self.ecn_alpha = 1.0
        self._ecn_round_start_delivered = 0
        # ProbeBW.
        self.cycle_stamp = 0.0
        self.bw_probe_wait = 0.0
        self.ack_phase = ACKS_INIT
        self.bw_probe_samples = False
        self.bw_probe_up_rounds = 0
        self.bw_probe_up_acks = 0
        self.probe_up_cnt = INF
        # ProbeRTT, idle restart, loss recovery.
        self.probe_rtt_done_stamp: float | None = None
        self.probe_rtt_round_done = False
        self.prior_cwnd = 0
        self.idle_restart = False
        self.recovery_start_at: float | None = None
        self.drain_start_round = 0
        self.cwnd_limited = False
        self._app_limited_until = 0

    # -- the interface ------------------------------------------------------------------------------------

    @property
    def congestion_state(self) -> str:
        """The BBR state (qlog logs its changes)."""
        return self.state

    def pacing_rate(self, rtt: RttEstimator) -> float | None:
        """BBR.pacing_rate; before the first bandwidth sample, the Startup gain over the initial window
        per smoothed RTT ("Pacing Rate": BBRInitPacingRate)."""
        if self._pacing_rate > 0:
            return self._pacing_rate
        return STARTUP_PACING_GAIN * self.initial_window_bytes / max(rtt.smoothed_rtt, 0.001)

    def on_packet_sent(self, packet: SentPacket, now: float) -> None:
        """Restart from idle ("BBRHandleRestartFromIdle") and note whether the window limits sending."""
        tx = packet.tx_in_flight
        if tx and tx <= packet.size_bytes and packet.is_app_limited:
            self.idle_restart = True
            self.extra_acked_interval_start = now
            if self.state in PROBE_BW_STATES:
                self._set_pacing_rate_with_gain(1.0)
            elif self.state == PROBE_RTT:
                self._check_probe_rtt_done(now)
        if tx + self.max_datagram_size > self.cwnd:
            self.cwnd_limited = True

    def on_ecn_ce(self, count: int, now: float) -> None:
        """Count CE marks; they are weighed at the end of the round (see the module docstring)."""
        self.ce_in_round += count

    def on_persistent_congestion(self, now: float) -> None:
        """RFC 9002 §7.6.2: collapse to the minimum window (BBR's "BBROnEnterRTO"); nothing to restore."""
        self.prior_cwnd = 0
        self.cwnd = self.minimum_window_bytes
        self.recovery_start_at = now

    def on_path_change(self, now: float) -> None:
        """A new path: forget the model and start over (RFC 9000 §9.4)."""
        self._reset()
        self._enter(STARTUP, now)

    def on_rate_sample(self, sample: RateSample, now: float) -> None:
        """One ACK's sample: losses first ("BBRUpdateOnLoss"), then the model, state and controls."""
        if self.min_rtt_stamp is None:
            self.min_rtt_stamp = self.probe_rtt_min_stamp = self.extra_acked_interval_start = now
        self.delivered = sample.delivered_total
        if self._pacing_rate == 0 and sample.rtt > 0:
            # BBRInitPacingRate: the initial window per RTT, at the Startup gain.
            self._pacing_rate = STARTUP_PACING_GAIN * self.initial_window_bytes / sample.rtt
        if sample.newly_lost:
            self._on_losses(sample, now)
        if sample.newly_acked:
            self._update_on_ack(sample, now)

    def metrics(self) -> dict[str, float]:
        """``cwnd``, ``pacing_rate`` and ``bw`` (bytes/s), ``min_rtt`` (s), the bounds when set."""
        out = {
            "cwnd": float(self.cwnd),
            "pacing_rate": self._pacing_rate,
            "bw": self.bw,
            "max_bw": self.max_bw,
            "round_count": float(self.round_count),
        }
        for name in ("min_rtt", "inflight_longterm", "inflight_shortterm", "bw_shortterm"):
            value = getattr(self, name)
            if value != INF:
                out[name] = float(value)
        return out

    # -- losses ("BBRUpdateOnLoss", "Modulating cwnd in Loss Recovery") -----------------------------------

    def _on_losses(self, rs: RateSample, now: float) -> None:
        if not self.loss_in_round:
            # "NoteLoss": the first loss of a round starts the loss round over, so the round whose
            # delivery rate bounds bw_shortterm is a whole round measured after the loss.
            self.loss_round_delivered = self.delivered
        self.loss_in_round = True
        lost_total = rs.lost_total - rs.newly_lost
        for packet in rs.lost_packets:
            lost_total += packet.size_bytes
            if not self.bw_probe_samples:
                continue
            # "BBRHandleLostPacket": the loss rate over this packet's flight, as of its loss.
            tx = packet.tx_in_flight
            lost = lost_total - packet.lost_at_send
            if lost > tx * LOSS_THRESH:
                self._handle_inflight_too_high(
                    self._inflight_at_loss(tx, lost, packet.size_bytes), packet.is_app_limited, now
                )
        if self.recovery_start_at is None:
            # "OnEnterFastRecovery": remember the window to restore when recovery ends; the window
            # itself stays the model's (the short-term bounds respond once per round).
            self.prior_cwnd = self._saved_cwnd()
            self.recovery_start_at = now

    @staticmethod
    def _inflight_at_loss(tx_in_flight: int, lost: int, size: int) -> float:
        """BBRInflightLongtermFromLostPacket: the flight at which the loss rate crossed 2%."""
        inflight_prev = tx_in_flight - size
        lost_prev = lost - size
        lost_prefix = (LOSS_THRESH * inflight_prev - lost_prev) / (1 - LOSS_THRESH)
        return inflight_prev + lost_prefix

    def _handle_inflight_too_high(self, tx_in_flight: float, app_limited: bool, now: float) -> None:
        """BBRHandleInflightTooHigh: remember the flight that hurt, and stop probing."""
        self.bw_probe_samples = False
        if not app_limited:
            self.inflight_longterm = max(tx_in_flight, self._target_inflight() * BETA)
        if self.state == PROBE_BW_UP:
            self._start_probe_bw_down(now)

    def _saved_cwnd(self) -> int:
        if self.recovery_start_at is None and self.state != PROBE_RTT:
            return self.cwnd
        return max(self.prior_cwnd, self.cwnd)

    def _restore_cwnd(self) -> None:
        self.cwnd = max(self.cwnd, self.prior_cwnd)

    # -- one ACK ("BBRUpdateOnACK") ----------------------------------------------------------------------

    def _update_on_ack(self, rs: RateSample, now: float) -> None:
        if self.recovery_start_at is not None and rs.send_time > self.recovery_start_at:
            # RFC 9002 §7.3.2: a packet sent after the recovery period began was acknowledged.
            self.recovery_start_at = None
            self._restore_cwnd()
        app_limited = rs.is_app_limited or rs.prior_delivered < self._app_limited_until
        # "BBRUpdateModelAndState"
        self._update_latest_delivery_signals(rs)
        self._update_congestion_signals(rs, app_limited, now)
        self._update_ack_aggregation(rs, now)
        self._check_full_bw_reached(app_limited)
        if self.state == STARTUP:
            self._check_startup_high_loss(rs)
            if self.full_bw_reached:
                self._enter_drain(now)
        if self.state == DRAIN and (
            rs.bytes_in_flight <= self._inflight(self.max_bw, 1.0)
            or self.round_count > self.drain_start_round + DRAIN_MAX_ROUNDS
        ):
            # "CheckDrainDone": the queue is gone, or Startup overestimated the bandwidth and three
            # rounds of Drain did not empty it (the max_bw filter moves on in ProbeBW).
            self._enter_probe_bw(now)
        self._update_probe_bw_cycle_phase(rs, app_limited, now)
        self._update_min_rtt(rs, now)
        self._check_probe_rtt(rs, now)
        if self.loss_round_start:  # "BBRAdvanceLatestDeliverySignals"
            self.bw_latest = rs.delivery_rate
            self.inflight_latest = rs.delivered
        self.bw = min(self.max_bw, self.bw_shortterm)  # "BBRBoundBWForModel"
        # "BBRUpdateControlParameters"
        self._set_pacing_rate_with_gain(self.pacing_gain)
        self._set_cwnd(rs)
        if self.round_start:
            self.cwnd_limited = False

    def _start_round(self) -> None:
        self.next_round_delivered = self.delivered

    def _update_latest_delivery_signals(self, rs: RateSample) -> None:
        self.loss_round_start = False
        self.bw_latest = max(self.bw_latest, rs.delivery_rate)
        self.inflight_latest = max(self.inflight_latest, rs.delivered)
        if rs.prior_delivered >= self.loss_round_delivered:
            self.loss_round_delivered = rs.delivered_total
            self.loss_round_start = True

    def _update_congestion_signals(self, rs: RateSample, app_limited: bool, now: float) -> None:
        # "BBRUpdateMaxBw" with "BBRUpdateRound".
        if rs.prior_delivered >= self.next_round_delivered:
            self._start_round()
            self.round_count += 1
            self.rounds_since_bw_probe += 1
            self.round_start = True
        else:
            self.round_start = False
        if rs.valid and (rs.delivery_rate >= self.max_bw or not app_limited):
            self.max_bw = self.max_bw_filter.update(rs.delivery_rate)
        if not self.loss_round_start:
            return
        ecn_in_round, ecn_too_high = self._end_ecn_round(rs)
        # "BBRAdaptLowerBoundsFromCongestion": not while probing (Startup, REFILL, UP).
        if self.state not in (STARTUP, PROBE_BW_REFILL, PROBE_BW_UP) and (self.loss_in_round or ecn_in_round):
            if self.inflight_shortterm == INF:
                self.inflight_shortterm = self.cwnd
            if self.loss_in_round:
                if self.bw_shortterm == INF:
                    self.bw_shortterm = self.max_bw
                self.bw_shortterm = max(self.bw_latest, BETA * self.bw_shortterm)
                self.inflight_shortterm = max(self.inflight_latest, BETA * self.inflight_shortterm)
            if ecn_in_round:  # ECN cuts the flight only, by ecn_alpha / 3 (Linux BBRv3)
                self.inflight_shortterm *= 1 - ECN_FACTOR * self.ecn_alpha
        if ecn_too_high and self.state == STARTUP:
            self._exit_startup_on_congestion()
        elif ecn_too_high and self.bw_probe_samples:
            self._handle_inflight_too_high(rs.tx_in_flight, rs.is_app_limited, now)
        self.loss_in_round = False

    def _end_ecn_round(self, rs: RateSample) -> tuple[bool, bool]:
        """The round's CE marks: (any, more than ECN_THRESH of the packets delivered)."""
        marks = self.ce_in_round
        packets = max((rs.delivered_total - self._ecn_round_start_delivered) / self.max_datagram_size, 1.0)
        self._ecn_round_start_delivered = rs.delivered_total
        self.ce_in_round = 0
        ratio = min(marks / packets, 1.0)
        if marks or self.ecn_alpha < 1.0:
            self.ecn_alpha += ECN_ALPHA_GAIN * (ratio - self.ecn_alpha)
        return marks > 0, ratio > ECN_THRESH

    def _update_ack_aggregation(self, rs: RateSample, now: float) -> None:
        """BBRUpdateACKAggregation: data acknowledged beyond what bw explains, max over 10 rounds."""
        expected = self.bw * (now - self.extra_acked_interval_start)
        if self.extra_acked_delivered <= expected:
            self.extra_acked_delivered = 0
            self.extra_acked_interval_start = now
            expected = 0.0
        self.extra_acked_delivered += rs.newly_acked
        extra = min(self.extra_acked_delivered - expected, float(self.cwnd))
        # Startup remembers only the current and the previous round (the draft's "1 round"; Linux keeps
        # two one-round slots, so 1-2 rounds), since its bursts grow every round; 10 rounds after it.
        window = EXTRA_ACKED_FILTER_LEN if self.full_bw_reached else STARTUP_EXTRA_ACKED_ROUNDS
        self.extra_acked = self.extra_acked_filter.update(extra, self.round_count, window)

    # -- Startup and Drain ------------------------------------------------------------------------------

    def _check_full_bw_reached(self, app_limited: bool) -> None:
        """BBRCheckFullBWReached: three rounds without 25% more bandwidth (compared once per round)."""
        if self.full_bw_now or app_limited or not self.round_start:
            return
        if self.max_bw >= self.full_bw * FULL_BW_THRESH:
            self.full_bw = self.max_bw
            self.full_bw_count = 0
            return
        self.full_bw_count += 1
        self.full_bw_now = self.full_bw_count >= FULL_BW_COUNT
        if self.full_bw_now:
            self.full_bw_reached = True

    def _reset_full_bw(self) -> None:
        self.full_bw = 0.0
        self.full_bw_count = 0
        self.full_bw_now = False

    def _check_startup_high_loss(self, rs: RateSample) -> None:
        """BBRCheckStartupHighLoss: 6 loss events in a round of recovery with losses above 2%."""
        if rs.newly_lost:
            self.loss_events_in_round += 1
        if not self.loss_round_start:
            return
        if (
            self.recovery_start_at is not None
            and self.loss_events_in_round >= STARTUP_FULL_LOSS_COUNT
            and self._is_inflight_too_high(rs)
        ):
            self._exit_startup_on_congestion()
        self.loss_events_in_round = 0

    def _exit_startup_on_congestion(self) -> None:
        self.inflight_longterm = max(self._bdp_multiple(self.max_bw, 1.0), float(self.inflight_latest))
        self.full_bw_reached = True

    @staticmethod
    def _is_inflight_too_high(rs: RateSample) -> bool:
        return rs.lost > rs.tx_in_flight * LOSS_THRESH

    def _enter(self, state: str, now: float) -> None:
        self.state = state
        self.state_changes.append((now, state))

    def _enter_startup(self, now: float) -> None:
        self._enter(STARTUP, now)
        self.pacing_gain = STARTUP_PACING_GAIN
        self.cwnd_gain = STARTUP_CWND_GAIN

    def _enter_drain(self, now: float) -> None:
        self._enter(DRAIN, now)
        self.drain_start_round = self.round_count
        self.pacing_gain = DRAIN_PACING_GAIN
        self.cwnd_gain = STARTUP_CWND_GAIN

    def _enter_probe_bw(self, now: float) -> None:
        self.cwnd_gain = DEFAULT_CWND_GAIN
        self._start_probe_bw_down(now)

    # -- ProbeBW ---------------------------------------------------------------------------------------

    def _start_probe_bw_down(self, now: float) -> None:
        self.loss_in_round = False  # "BBRResetCongestionSignals"
        self.bw_latest = 0.0
        self.inflight_latest = 0
        self.probe_up_cnt = INF
        # "BBRPickProbeWait": 0 or 1 rounds, and 2 to 3 seconds.
        self.rounds_since_bw_probe = int(self._rng.next_unit() * 2)
        self.bw_probe_wait = 2.0 + self._rng.next_unit()
        self.cycle_stamp = now
        self.ack_phase = ACKS_PROBE_STOPPING
        self._start_round()
        self._enter(PROBE_BW_DOWN, now)
        self.pacing_gain = PROBE_DOWN_PACING_GAIN
        self.cwnd_gain = DEFAULT_CWND_GAIN

    def _start_probe_bw_cruise(self, now: float) -> None:
        self._enter(PROBE_BW_CRUISE, now)
        self.pacing_gain = 1.0
        self.cwnd_gain = DEFAULT_CWND_GAIN

    def _start_probe_bw_refill(self, now: float) -> None:
        self.bw_shortterm = self.inflight_shortterm = INF  # "BBRResetShortTermModel"
        self.bw_probe_up_rounds = 0
        self.bw_probe_up_acks = 0
        self.ack_phase = ACKS_REFILLING
        self._start_round()
        self._enter(PROBE_BW_REFILL, now)
        self.pacing_gain = 1.0
        self.cwnd_gain = DEFAULT_CWND_GAIN

    def _start_probe_bw_up(self, rs: RateSample, now: float) -> None:
        self.ack_phase = ACKS_PROBE_STARTING
        self._start_round()
        self._reset_full_bw()
        self.full_bw = rs.delivery_rate
        self.cycle_stamp = now
        self._enter(PROBE_BW_UP, now)
        self.pacing_gain = PROBE_UP_PACING_GAIN
        self.cwnd_gain = PROBE_UP_CWND_GAIN
        self._raise_inflight_hi_slope()

    def _update_probe_bw_cycle_phase(self, rs: RateSample, app_limited: bool, now: float) -> None:
        if not self.full_bw_reached:
            return
        self._adapt_upper_bounds(rs, app_limited, now)
        state = self.state
        if state == PROBE_BW_DOWN:
            if self._check_time_to_probe_bw(now):
                return
            inflight = rs.bytes_in_flight
            # "BBRCheckTimeToCruise": drained below the headroom and to the estimated BDP.
            if inflight <= self._inflight_with_headroom() and inflight <= self._inflight(self.max_bw, 1.0):
                self._start_probe_bw_cruise(now)
        elif state == PROBE_BW_CRUISE:
            self._check_time_to_probe_bw(now)
        elif state == PROBE_BW_REFILL:
            if self.round_start:  # one round at the estimated rate refilled the pipe
                self.bw_probe_samples = True
                self._start_probe_bw_up(rs, now)
        elif state == PROBE_BW_UP and self._is_time_to_go_down(rs):
            self._start_probe_bw_down(now)

    def _is_time_to_go_down(self, rs: RateSample) -> bool:
        """BBRIsTimeToGoDown: UP ends on a bandwidth plateau (or on loss, in _handle_inflight_too_high).
        The draft replaced the older exit "a min_rtt elapsed and more than 1.25 BDP is in flight" with
        this in 2024 (a BBRv3 fix for flows stuck at a low rate after loss): that exit ended every probe
        after two rounds, before the plateau rule could measure anything."""
        if self.cwnd_limited and self.cwnd >= self.inflight_longterm:
            # Limited by the bound, not by the path: the plateau says nothing yet.
            self._reset_full_bw()
            self.full_bw = rs.delivery_rate
        elif self.full_bw_now:
            return True
        return False

    def _check_time_to_probe_bw(self, now: float) -> bool:
        """Probe after the randomised wait, or after as many rounds as Reno would take to grow one BDP
        ("BBRIsRenoCoexistenceProbeTime")."""
        reno_rounds = min(self._target_inflight() / self.max_datagram_size, MAX_RENO_ROUNDS)
        if now > self.cycle_stamp + self.bw_probe_wait or self.rounds_since_bw_probe >= reno_rounds:
            self._start_probe_bw_refill(now)
            return True
        return False

    def _adapt_upper_bounds(self, rs: RateSample, app_limited: bool, now: float) -> None:
        """BBRAdaptUpperBounds."""
        if self.ack_phase == ACKS_PROBE_STARTING and self.round_start:
            self.ack_phase = ACKS_PROBE_FEEDBACK
        if self.ack_phase == ACKS_PROBE_STOPPING and self.round_start:
            # The probe's samples are all in: forget the cycle before it.
            self.bw_probe_samples = False
            self.ack_phase = ACKS_INIT
            if self.state in PROBE_BW_STATES and not app_limited:
                self.max_bw_filter.advance()
                self.max_bw = self.max_bw_filter.maximum
        if self._is_inflight_too_high(rs):
            if self.bw_probe_samples:
                self._handle_inflight_too_high(float(rs.tx_in_flight), rs.is_app_limited, now)
            return
        if self.inflight_longterm == INF:
            return
        if rs.tx_in_flight > self.inflight_longterm:
            self.inflight_longterm = rs.tx_in_flight
        if self.state == PROBE_BW_UP:
            self._probe_inflight_hi_upward(rs)

    def _raise_inflight_hi_slope(self) -> None:
        growth_packets = 1 << self.bw_probe_up_rounds
        self.bw_probe_up_rounds = min(self.bw_probe_up_rounds + 1, 30)
        self.probe_up_cnt = max(self.cwnd // growth_packets, self.max_datagram_size)

    def _probe_inflight_hi_upward(self, rs: RateSample) -> None:
        """BBRProbeInflightHiUpward: grow the bound 1, 2, 4... datagrams per round while it limits."""
        if not self.cwnd_limited or self.cwnd < self.inflight_longterm:
            return
        self.bw_probe_up_acks += rs.newly_acked
        if self.bw_probe_up_acks >= self.probe_up_cnt:
            delta = int(self.bw_probe_up_acks // self.probe_up_cnt)
            self.bw_probe_up_acks -= int(delta * self.probe_up_cnt)
            self.inflight_longterm += delta * self.max_datagram_size
        if self.round_start:
            self._raise_inflight_hi_slope()

    # -- ProbeRTT ----------------------------------------------------------------------------------------

    def _update_min_rtt(self, rs: RateSample, now: float) -> None:
        """BBRUpdateMinRTT: a 5 s filter for ProbeRTT's schedule inside the 10 s min_rtt filter."""
        self.probe_rtt_expired = now > self.probe_rtt_min_stamp + PROBE_RTT_INTERVAL
        if rs.rtt >= 0 and (rs.rtt < self.probe_rtt_min_delay or self.probe_rtt_expired):
            self.probe_rtt_min_delay = rs.rtt
            self.probe_rtt_min_stamp = now
        stamp = self.min_rtt_stamp if self.min_rtt_stamp is not None else now
        if self.probe_rtt_min_delay < self.min_rtt or now > stamp + MIN_RTT_FILTER_LEN:
            self.min_rtt = self.probe_rtt_min_delay
            self.min_rtt_stamp = self.probe_rtt_min_stamp

    def _check_probe_rtt(self, rs: RateSample, now: float) -> None:
        if self.state != PROBE_RTT and self.probe_rtt_expired and not self.idle_restart:
            self.prior_cwnd = self._saved_cwnd()
            self.probe_rtt_done_stamp = None
            self.ack_phase = ACKS_PROBE_STOPPING
            self._start_round()
            self._enter(PROBE_RTT, now)
            self.pacing_gain = 1.0
            self.cwnd_gain = PROBE_RTT_CWND_GAIN
        if self.state == PROBE_RTT:
            # MarkConnectionAppLimited: ProbeRTT's low rates say nothing about the path.
            self._app_limited_until = max(rs.delivered_total + rs.bytes_in_flight, 1)
            if self.probe_rtt_done_stamp is None and rs.bytes_in_flight <= self._probe_rtt_cwnd():
                self.probe_rtt_done_stamp = now + PROBE_RTT_DURATION
                self.probe_rtt_round_done = False
                self._start_round()
            elif self.probe_rtt_done_stamp is not None:
                if self.round_start:
                    self.probe_rtt_round_done = True
                if self.probe_rtt_round_done:
                    self._check_probe_rtt_done(now)
        if rs.delivered > 0:
            self.idle_restart = False

    def _check_probe_rtt_done(self, now: float) -> None:
        """Leave ProbeRTT after 200 ms and a round at the reduced window."""
        if self.probe_rtt_done_stamp is None or now <= self.probe_rtt_done_stamp:
            return
        self.probe_rtt_min_stamp = now  # the next ProbeRTT is due in 5 s
        self._restore_cwnd()
        self.bw_shortterm = self.inflight_shortterm = INF
        if self.full_bw_reached:
            self._start_probe_bw_down(now)
            self._start_probe_bw_cruise(now)
        else:
            self._enter_startup(now)

    def _probe_rtt_cwnd(self) -> float:
        return max(self._bdp_multiple(self.bw, PROBE_RTT_CWND_GAIN), float(self.min_pipe_cwnd))

    # -- control parameters ("Pacing Rate", "cwnd") ------------------------------------------------------

    def _set_pacing_rate_with_gain(self, gain: float) -> None:
        rate = gain * self.bw * (1 - PACING_MARGIN)
        if self.full_bw_reached or rate > self._pacing_rate:
            self._pacing_rate = rate

    def _bdp_multiple(self, bw: float, gain: float) -> float:
        if self.min_rtt == INF:
            return float(self.initial_window_bytes)
        return gain * bw * self.min_rtt

    def _quantization_budget(self, inflight: float) -> float:
        """Room for the pacer's bursts: 3 send quanta (1 ms of the rate, 2 datagrams to 64 KiB), and
        two more datagrams in ProbeBW_UP ("BBRQuantizationBudget")."""
        mds = self.max_datagram_size
        quantum = min(max(self._pacing_rate * 0.001, 2 * mds), MAX_SEND_QUANTUM)
        inflight = max(inflight, 3 * quantum, float(self.min_pipe_cwnd))
        if self.state == PROBE_BW_UP:
            inflight += 2 * mds
        return inflight

    def _inflight(self, bw: float, gain: float) -> float:
        return self._quantization_budget(self._bdp_multiple(bw, gain))

    def _target_inflight(self) -> float:
        return min(self.bdp, float(self.cwnd)) if self.bdp else float(self.cwnd)

    def _inflight_with_headroom(self) -> float:
        if self.inflight_longterm == INF:
            return INF
        headroom = max(float(self.max_datagram_size), HEADROOM * self.inflight_longterm)
        return max(self.inflight_longterm - headroom, float(self.min_pipe_cwnd))

    def _set_cwnd(self, rs: RateSample) -> None:
        if self.min_rtt != INF:
            self.bdp = self.bw * self.min_rtt
        inflight = self._bdp_multiple(self.bw, self.cwnd_gain) + self.extra_acked
        self.max_inflight = self._quantization_budget(inflight)
        cwnd = float(self.cwnd)
        if self.full_bw_reached:
            cwnd = min(cwnd + rs.newly_acked, self.max_inflight)
        elif cwnd < self.max_inflight or rs.delivered_total < self.initial_window_bytes:
            cwnd += rs.newly_acked
        cwnd = max(cwnd, float(self.min_pipe_cwnd))
        if self.state == PROBE_RTT:
            cwnd = min(cwnd, self._probe_rtt_cwnd())
        # "BBRBoundCwndForModel"
        cap = INF
        if self.state in (PROBE_BW_DOWN, PROBE_BW_REFILL, PROBE_BW_UP):
            cap = self.inflight_longterm
        elif self.state in (PROBE_RTT, PROBE_BW_CRUISE):
            cap = self._inflight_with_headroom()
        cap = max(min(cap, self.inflight_shortterm), float(self.min_pipe_cwnd))
        self.cwnd = int(min(cwnd, cap))
