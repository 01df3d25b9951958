"""Round-trip time estimation (RFC 9002 §5).

Owns :class:`RttEstimator`: latest, smoothed, variance and minimum RTT, and the acknowledgment-delay
rules. It does not decide *which* acknowledgments produce samples; that is
:class:`~rudp.quic.recovery.LossRecovery`'s job (RFC 9002 §5.1).
"""

from __future__ import annotations

from typing import Final

K_GRANULARITY: Final = 0.001
"""Timer granularity in seconds (RFC 9002 §6.1.2, kGranularity)."""

K_INITIAL_RTT: Final = 0.333
"""RTT assumed before the first sample (RFC 9002 §6.2.2, kInitialRtt)."""


class RttEstimator:
    """Running RTT statistics for one path.

    Before the first sample, ``smoothed_rtt`` is ``initial_rtt`` and ``rttvar`` half of it
    (RFC 9002 §5.3); ``latest_rtt`` and ``min_rtt`` are 0.0 and ``has_sample`` is False.
    ``base_pto`` is :meth:`pto_base`, derived again whenever ``smoothed_rtt`` or ``rttvar`` change (the
    connection's timer reads it after every flush).
    """

    __slots__ = ("base_pto", "has_sample", "initial_rtt", "latest_rtt", "min_rtt", "rttvar", "smoothed_rtt")

    def __init__(self, initial_rtt: float = K_INITIAL_RTT) -> None:
        self.initial_rtt = initial_rtt
        self.latest_rtt = 0.0
        self.min_rtt = 0.0
        self.smoothed_rtt = initial_rtt
        self.rttvar = initial_rtt / 2
        self.has_sample = False
        self.base_pto = _pto_base(initial_rtt, initial_rtt / 2)

    def update(
        self, latest_rtt: float, ack_delay: float, *, handshake_confirmed: bool, max_ack_delay: float
    ) -> None:
        """Fold in one RTT sample (RFC 9002 §5.2-§5.3).

        ``latest_rtt`` is the time from sending the largest newly acknowledged packet to receiving its
        acknowledgment; ``ack_delay`` is the peer-reported delay in seconds (pass 0.0 for Initial
        packets, whose acknowledgments are never intentionally delayed).
        """
        # (Comparisons rather than min/max/abs calls: this runs for every ACK that samples the RTT.)
        if latest_rtt < 0.0:
            latest_rtt = 0.0
        self.latest_rtt = latest_rtt
        if not self.has_sample:
            # RFC 9002 §5.3: the first sample initialises every estimate.
            self.has_sample = True
            self.min_rtt = latest_rtt
            self.smoothed_rtt = latest_rtt
            self.rttvar = latest_rtt / 2
            self.base_pto = _pto_base(latest_rtt, latest_rtt / 2)
            return
        # RFC 9002 §5.2: min_rtt is taken before any ack-delay adjustment.
        if latest_rtt < self.min_rtt:
            self.min_rtt = latest_rtt
        if ack_delay < 0.0:
            ack_delay = 0.0
        if handshake_confirmed and ack_delay > max_ack_delay:
            # RFC 9002 §5.3: after confirmation the peer cannot claim more than max_ack_delay.
            ack_delay = max_ack_delay
        adjusted = latest_rtt
        # RFC 9002 §5.3: never subtract the ack delay if that would go below min_rtt.
        if latest_rtt >= self.min_rtt + ack_delay:
            adjusted = latest_rtt - ack_delay
        deviation = self.smoothed_rtt - adjusted
        self.rttvar = rttvar = 0.75 * self.rttvar + 0.25 * (deviation if deviation >= 0.0 else -deviation)
        self.smoothed_rtt = smoothed = 0.875 * self.smoothed_rtt + 0.125 * adjusted
        variation = 4 * rttvar  # (_pto_base inline: once per RTT sample)
        self.base_pto = smoothed + (variation if variation > K_GRANULARITY else K_GRANULARITY)

    def reset(self) -> None:
        """Forget every sample: back to the initial RTT (a new network path, RFC 9000 §9.4)."""
        self.__init__(self.initial_rtt)  # type: ignore[misc]

    def pto_base(self) -> float:
        """The PTO period without ack delay and backoff: ``smoothed + max(4*rttvar, kGranularity)``.

        RFC 9002 §6.2.1. (The value of :attr:`base_pto`.)
        """
        return self.base_pto


def _pto_base(smoothed_rtt: float, rttvar: float) -> float:
    # RFC 9002 §6.2.1: smoothed_rtt + max(4 * rttvar, kGranularity), without the max() call.
    variation = 4 * rttvar
    return smoothed_rtt + (variation if variation > K_GRANULARITY else K_GRANULARITY)
