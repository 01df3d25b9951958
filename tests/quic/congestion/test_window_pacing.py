"""Window-based controllers and the pacer (issue 14): the pacing gain by phase (RFC 9002 §7.7, as
Linux's tcp_update_pacing_rate), the initial-window burst after a pause, and when the window may grow
(RFC 9002 §7.8 judged per round trip, as Linux's tcp_is_cwnd_limited: congestion/window_use.py)."""

from __future__ import annotations

import pytest

from rudp.quic.congestion import Cubic, NewReno
from rudp.quic.congestion.base import (
    AVOIDANCE_PACING_GAIN,
    SLOW_START_PACING_GAIN,
    BaseCongestionController,
    initial_window,
    pacing_gain_for,
)
from rudp.quic.congestion.window_use import WindowUse
from rudp.quic.pacing import Pacer
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace, SentPacket
from tests.quic.congestion.harness import AckClock
from tests.quic.recovery.sim_path import MDS, SimPath

RTT = 0.04


def _rtt() -> RttEstimator:
    rtt = RttEstimator()
    rtt.update(RTT, 0.0, handshake_confirmed=True, max_ack_delay=0.0)
    return rtt


def _rate_gain(cc: BaseCongestionController) -> float:
    """The multiple of cwnd / srtt the pacer runs at for ``cc``."""
    return Pacer(MDS).current_rate(cc, _rtt()) * RTT / cc.congestion_window


@pytest.mark.parametrize("cls", [NewReno, Cubic])
def test_pacing_gain_is_two_in_slow_start_and_one_and_a_quarter_after(cls: type[NewReno | Cubic]) -> None:
    cc = cls(MDS)
    clock = AckClock(cc, RTT, mds=MDS)
    clock.run(0.2)
    assert cc.in_slow_start
    assert _rate_gain(cc) == pytest.approx(SLOW_START_PACING_GAIN)
    clock.lose_newest()
    assert not cc.in_slow_start
    assert _rate_gain(cc) == pytest.approx(AVOIDANCE_PACING_GAIN)
    clock.run(0.5)  # congestion avoidance
    assert _rate_gain(cc) == pytest.approx(AVOIDANCE_PACING_GAIN)
    # Persistent congestion: the window collapses far below ssthresh, slow start at gain 2 again.
    cc.on_persistent_congestion(clock.now)
    assert cc.in_slow_start and 2 * cc.cwnd < (cc.ssthresh or 0)
    assert _rate_gain(cc) == pytest.approx(SLOW_START_PACING_GAIN)
    # Past half of ssthresh, slow start slows its pacing to the avoidance gain (Linux's rule).
    cc.cwnd = (cc.ssthresh or 0) * 3 // 4
    assert cc.in_slow_start and _rate_gain(cc) == pytest.approx(AVOIDANCE_PACING_GAIN)


@pytest.mark.parametrize("cls", [NewReno, Cubic])
def test_window_pacing_gain_inline_is_pacing_gain_for(cls: type[NewReno | Cubic]) -> None:
    # The controllers compute pacing_gain_for inline (asked per paced datagram): the same answers,
    # on both sides of the half-ssthresh boundary and with no ssthresh yet.
    cc = cls(MDS)
    for ssthresh in (None, 0, 1, 2 * MDS, 20 * MDS, 20 * MDS + 1):
        for cwnd in (0, 1, MDS, 10 * MDS - 1, 10 * MDS, 10 * MDS + 1, 40 * MDS):
            cc.cwnd, cc.ssthresh = cwnd, ssthresh
            assert cc.window_pacing_gain() == pacing_gain_for(cwnd, ssthresh), (cwnd, ssthresh)


def test_cubic_paces_conservative_slow_start_at_the_avoidance_gain() -> None:
    cc = Cubic(MDS)
    clock = AckClock(cc, RTT, mds=MDS)
    clock.run(0.25)
    clock.rtt = RTT + 0.012  # an RTT increase of more than RttThresh (5 ms): HyStart++ enters CSS
    clock.run(0.1)
    assert cc.hystart.in_css and cc.ssthresh is None
    assert _rate_gain(cc) == pytest.approx(AVOIDANCE_PACING_GAIN)


def test_controllers_without_a_gain_keep_rfc_9002s_example() -> None:
    class Fixed(BaseCongestionController):
        pass

    assert _rate_gain(Fixed(MDS)) == pytest.approx(1.25)


def test_a_pause_refills_the_bucket_to_the_initial_window() -> None:
    cc = NewReno(MDS)
    cc.cwnd = 40_000  # 2 x 40 kB / 40 ms = 2 MB/s: 2 ms of it is 4 kB, under the initial window
    rtt = _rtt()
    pacer = Pacer(MDS)
    assert pacer.allows(0.0, MDS, cc, rtt)
    assert pacer.burst_bytes < initial_window(MDS)

    def burst(now: float) -> int:
        sent = 0
        while pacer.allows(now, MDS, cc, rtt):
            pacer.on_sent(MDS, now)
            sent += MDS
        return sent

    burst(0.0)
    # After a pause (the application had nothing to send), the next round leaves its first initial
    # window at once (RFC 9002 §7.7), not the 2 ms of the rate the bucket holds while busy.
    assert burst(1.0) == initial_window(MDS)
    assert burst(1.0) == 0
    # Busy again: the bucket refills at the rate, capped at the usual allowance.
    assert burst(1.001) <= pacer.burst_bytes + MDS


def _packet(pn: int, at: float) -> SentPacket:
    return SentPacket(pn, PacketSpace.APPLICATION, at, MDS, True, True)


def test_window_use_rounds() -> None:
    use = WindowUse()
    window = 10 * MDS
    # Round 1: a flight of 4 packets against a window of 10: not window-limited in any phase.
    for pn in range(4):
        use.on_sent((pn + 1) * MDS, False, 0.0)
    assert not use.window_limited(window, in_slow_start=True)
    # Round 2 (its first packet's ACK ends round 1): a flight of 6, more than half: slow start grows.
    use.on_acked(0.0)
    for pn in range(6):
        use.on_sent((pn + 1) * MDS, False, 0.04)
    assert use.window_limited(window, in_slow_start=True)
    assert not use.window_limited(window, in_slow_start=False)
    # The window refused a packet: window-limited in every phase, for the rest of the round and the
    # ACKs until the next round's first send.
    use.on_window_refused(window)
    assert use.window_limited(window, in_slow_start=False)
    use.on_acked(0.03)  # a packet of the round before: the round goes on
    use.on_sent(window, False, 0.05)
    assert use.window_limited(window, in_slow_start=False)
    use.on_acked(0.05)  # round over: the next send starts a fresh record
    assert use.window_limited(window, in_slow_start=False)
    use.on_sent(2 * MDS, False, 0.09)
    assert not use.window_limited(window, in_slow_start=False)
    assert not use.window_limited(window, in_slow_start=True)


def _into_avoidance(cc: NewReno | Cubic) -> SimPath:
    sim = SimPath(cc, rtt=RTT, drop=lambda pn, at: pn == 60)
    sim.run(0.6)
    assert cc.congestion_events == 1 and not cc.in_slow_start
    return sim


@pytest.mark.parametrize("cls", [NewReno, Cubic])
def test_avoidance_grows_only_when_the_window_fills(cls: type[NewReno | Cubic]) -> None:
    cc = cls(MDS)
    sim = _into_avoidance(cc)
    sim.run(1.0)
    window = cc.cwnd
    # The application now sends 40% of the window per round trip: with the previous round's tail the
    # flight exceeds half the window, which would grow it in slow start, but never fills it.
    sim.app_packets_per_rtt = int(0.4 * window / MDS)
    sim.run(1.2)  # the ACKs of the last window-limited rounds may still grow it a little
    assert cc.cwnd <= window + 3 * MDS
    window = cc.cwnd
    sim.run(3.0)
    assert sim.recovery.app_limited
    assert cc.cwnd == window  # 45 RTTs without growth (RFC 9002 §7.8)
    # Unlimited again: the window fills every round and grows (CUBIC's epoch resumes, RFC 9438 §5.8).
    sim.app_packets_per_rtt = None
    sim.run(4.0)
    assert not sim.recovery.app_limited
    assert cc.cwnd > window + 4 * MDS
