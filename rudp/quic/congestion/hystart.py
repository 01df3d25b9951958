"""HyStart++: leaving slow start on a rising RTT instead of on loss (RFC 9406).

Owns the round tracking, the per-round minimum RTT, the delay-increase test that ends slow start, and
Conservative Slow Start (CSS) with its spurious-exit check. It does not own the window: the
controller asks :class:`HyStart` how much of the acknowledged bytes to add (:meth:`growth_divisor`)
and whether CSS has lasted long enough to move to congestion avoidance.

Rounds are counted with Application-space packet numbers, as RFC 9406 §4.2 counts them with
``SND.NXT``: a round ends when an acknowledgment covers the first packet sent after the round began.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import Final

from rudp.quic.sent import PacketSpace, SentPacket

MIN_RTT_THRESH: Final = 0.004
"""Lower bound of the RTT increase that ends slow start, seconds (RFC 9406 §4.3)."""
MAX_RTT_THRESH: Final = 0.016
"""Upper bound of that threshold, seconds (RFC 9406 §4.3)."""
MIN_RTT_DIVISOR: Final = 8
"""The threshold is the last round's minimum RTT divided by this (RFC 9406 §4.3)."""
N_RTT_SAMPLE: Final = 8
"""RTT samples needed in a round before the delay test applies (RFC 9406 §4.3)."""
CSS_GROWTH_DIVISOR: Final = 4
"""In CSS the window grows by acknowledged bytes divided by this (RFC 9406 §4.3)."""
CSS_ROUNDS: Final = 5
"""Rounds of CSS before congestion avoidance begins (RFC 9406 §4.3)."""


class HyStartPhase(Enum):
    """Where HyStart++ is in the initial slow start."""

    SLOW_START = "slow_start"
    CONSERVATIVE = "conservative_slow_start"
    DONE = "done"
    """Slow start ended (by CSS, by loss or by a persistent congestion); HyStart++ is inert."""


class HyStart:
    """The HyStart++ state machine for one connection's initial slow start (RFC 9406 §4.2)."""

    __slots__ = (
        "_current_round_min_rtt",
        "_largest_sent",
        "_last_round_min_rtt",
        "_rtt_sample_count",
        "_window_end",
        "css_baseline_min_rtt",
        "css_rounds",
        "exits",
        "phase",
        "spurious_exits",
    )

    def __init__(self) -> None:
        self.phase = HyStartPhase.SLOW_START
        self._largest_sent = -1
        self._window_end: int | None = None
        self._last_round_min_rtt = math.inf
        self._current_round_min_rtt = math.inf
        self._rtt_sample_count = 0
        self.css_baseline_min_rtt = math.inf
        self.css_rounds = 0
        self.exits = 0
        """Times the delay test moved slow start into CSS."""
        self.spurious_exits = 0
        """Times CSS went back to slow start because the RTT fell below the baseline."""

    @property
    def active(self) -> bool:
        """True while HyStart++ governs the window (slow start or CSS)."""
        return self.phase is not HyStartPhase.DONE

    @property
    def in_css(self) -> bool:
        """True during Conservative Slow Start."""
        return self.phase is HyStartPhase.CONSERVATIVE

    def growth_divisor(self) -> int:
        """What to divide acknowledged bytes by before adding them to the window (RFC 9406 §4.3)."""
        return CSS_GROWTH_DIVISOR if self.phase is HyStartPhase.CONSERVATIVE else 1

    def on_packet_sent(self, packet: SentPacket) -> None:
        """Remember the largest Application packet number sent (the round boundary, ``SND.NXT``)."""
        if packet.space is PacketSpace.APPLICATION:
            self._largest_sent = packet.packet_number

    def finish(self) -> None:
        """Slow start is over for good (a congestion event or CSS completed)."""
        self.phase = HyStartPhase.DONE

    def on_ack(self, packets: list[SentPacket], latest_rtt: float) -> bool:
        """Process one acknowledgment: ``packets`` newly acknowledged, ``latest_rtt`` its RTT sample.

        Returns True when CSS has run for CSS_ROUNDS rounds and congestion avoidance must begin
        (the caller sets ``ssthresh`` to the window, RFC 9406 §4.3).
        """
        if self.phase is HyStartPhase.DONE:
            return False
        largest_acked = -1
        for packet in packets:
            if packet.space is PacketSpace.APPLICATION:
                largest_acked = packet.packet_number
        if largest_acked < 0:
            return False
        window_end = self._window_end
        if (window_end is None or largest_acked >= window_end) and self._end_round():
            return True
        # RFC 9406 §4.3: keep the round's minimum RTT and count the samples.
        if latest_rtt > 0:
            self._current_round_min_rtt = min(self._current_round_min_rtt, latest_rtt)
            self._rtt_sample_count += 1
        if self.phase is HyStartPhase.SLOW_START:
            self._check_delay_increase()
        elif (
            self._rtt_sample_count >= N_RTT_SAMPLE and self._current_round_min_rtt < self.css_baseline_min_rtt
        ):
            # RFC 9406 §4.3: the RTT fell back below the baseline: the exit was spurious, so slow
            # start resumes.
            self.phase = HyStartPhase.SLOW_START
            self.css_baseline_min_rtt = math.inf
            self.spurious_exits += 1
        return False

    def _end_round(self) -> bool:
        # RFC 9406 §4.2: a new round starts; it ends when the first packet sent from now on is
        # acknowledged. RFC 9406 §4.3: each completed round of CSS counts towards CSS_ROUNDS.
        if self.phase is HyStartPhase.CONSERVATIVE and self._window_end is not None:
            self.css_rounds += 1
            if self.css_rounds >= CSS_ROUNDS:
                self.phase = HyStartPhase.DONE
                return True
        self._window_end = self._largest_sent + 1
        self._last_round_min_rtt = self._current_round_min_rtt
        self._current_round_min_rtt = math.inf
        self._rtt_sample_count = 0
        return False

    def _check_delay_increase(self) -> None:
        # RFC 9406 §4.3: with enough samples in this round and a previous round to compare with, an
        # increase of at least RttThresh (1/8 of the last minimum, clamped to [4 ms, 16 ms]) ends
        # slow start and starts CSS.
        if self._rtt_sample_count < N_RTT_SAMPLE:
            return
        last, current = self._last_round_min_rtt, self._current_round_min_rtt
        if math.isinf(last) or math.isinf(current):
            return
        threshold = max(MIN_RTT_THRESH, min(last / MIN_RTT_DIVISOR, MAX_RTT_THRESH))
        if current >= last + threshold:
            self.css_baseline_min_rtt = current
            self.css_rounds = 0
            self.phase = HyStartPhase.CONSERVATIVE
            self.exits += 1
