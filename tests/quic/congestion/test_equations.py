"""NewReno and CUBIC windows against their defining equations, on a virtual-time ACK clock.

Slow start doubles per RTT (RFC 9002 §7.3.1), a congestion event multiplies the window by 0.5 (RFC 9002
§7.3.2) or 0.7 (RFC 9438 §4.6), CUBIC's window follows W_cubic(t) = C(t-K)^3 + W_max (RFC 9438 §4.2) or
the Reno-friendly estimate (§4.3), fast convergence lowers W_max (§4.7), HyStart++ leaves slow start on
an RTT increase and spends CSS_ROUNDS rounds in Conservative Slow Start (RFC 9406 §4.3), and persistent
congestion collapses the window to two datagrams (RFC 9002 §7.6.2).
"""

from __future__ import annotations

import pytest

from rudp.quic.congestion import Cubic, NewReno
from rudp.quic.congestion.base import BaseCongestionController, initial_window, minimum_window
from rudp.quic.congestion.cubic import CUBIC_ALPHA
from rudp.quic.congestion.hystart import CSS_ROUNDS
from tests.quic.congestion.harness import MDS, AckClock

C, BETA = 0.4, 0.7
CONTROLLERS = {"newreno": (NewReno, 0.5), "cubic": (Cubic, 0.7)}


def w_cubic(t: float, w_max_segments: float) -> float:
    """RFC 9438 §4.2 Figure 1 and Figure 2, in segments, with K from the reduction to beta * W_max."""
    k = (w_max_segments * (1 - BETA) / C) ** (1 / 3)
    return C * (t - k) ** 3 + w_max_segments


def grow_to(clock: AckClock, segments: int) -> None:
    while clock.cc.congestion_window < segments * MDS:
        clock.run(0.001)


@pytest.mark.parametrize("name", list(CONTROLLERS))
def test_slow_start_doubles_every_round_trip(name: str) -> None:
    cc = CONTROLLERS[name][0](MDS)
    clock = AckClock(cc, rtt=0.1)
    clock.run(0.8)
    for k in range(7):
        # The flight sent at 1 ms is acknowledged at 101 ms, the next one at 201 ms, ...
        assert clock.window_at(0.0015 + 0.1 * k) == initial_window(MDS) * 2**k
    assert isinstance(cc, NewReno) or cc.congestion_state == "slow_start"


@pytest.mark.parametrize("name", list(CONTROLLERS))
def test_multiplicative_decrease_once_per_round_trip(name: str) -> None:
    factory, factor = CONTROLLERS[name]
    cc = factory(MDS)
    clock = AckClock(cc, rtt=0.1)
    grow_to(clock, 60)
    clock.run(0.03)
    before = cc.congestion_window
    clock.lose_newest()
    assert cc.congestion_window == pytest.approx(before * factor, abs=1)
    reduced = cc.congestion_window
    # A second packet of the same round is lost: still the same recovery period, no second cut.
    clock.lose_newest()
    assert cc.congestion_window == reduced
    # One RTT later a packet sent after the reduction is lost: a new congestion event.
    clock.run(0.25)
    grown = cc.congestion_window
    clock.lose_newest()
    assert cc.congestion_window == pytest.approx(grown * factor, abs=1)


def test_cubic_window_follows_w_cubic_after_a_loss() -> None:
    cc = Cubic(MDS, hystart=False)
    clock = AckClock(cc, rtt=0.1)
    grow_to(clock, 100)
    w_max = cc.congestion_window / MDS
    clock.lose_newest()
    assert cc.congestion_window == pytest.approx(BETA * w_max * MDS, abs=1)
    assert cc.w_max == w_max * MDS
    clock.run(7.0)
    epoch = cc.epoch_start_at
    assert epoch is not None
    assert cc.k == pytest.approx((w_max * (1 - BETA) / C) ** (1 / 3))
    for t in (0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0):
        expected = w_cubic(t, w_max)
        assert cc.w_cubic(t) == pytest.approx(expected * MDS)
        # The window closes the gap to W_cubic(t + RTT) over each RTT, so it tracks W_cubic(t) closely.
        assert clock.window_at(epoch + t) / MDS == pytest.approx(expected, rel=0.015), t
    # Concave below W_max before K, plateau around K, convex probing after it.
    assert clock.window_at(epoch + 1.0) < clock.window_at(epoch + cc.k) <= clock.window_at(epoch + 6.5)


def test_cubic_reno_friendly_region_on_a_short_rtt() -> None:
    cc = Cubic(MDS, hystart=False)
    rtt = 0.01
    clock = AckClock(cc, rtt=rtt)
    grow_to(clock, 100)
    w_max = cc.congestion_window / MDS
    clock.lose_newest()
    clock.run(1.0)
    epoch = cc.epoch_start_at
    assert epoch is not None
    for t in (0.1, 0.2, 0.3, 0.4, 0.5):
        # RFC 9438 §4.3: W_est grows by alpha_cubic segments per RTT; it is above W_cubic here, so the
        # window follows it.
        w_est = BETA * w_max + CUBIC_ALPHA * t / rtt
        assert w_est > w_cubic(t, w_max)
        assert clock.window_at(epoch + t) / MDS == pytest.approx(w_est, rel=0.02), t


def test_cubic_fast_convergence_lowers_w_max() -> None:
    cc = Cubic(MDS, hystart=False)
    clock = AckClock(cc, rtt=0.1)
    grow_to(clock, 100)
    first = cc.congestion_window
    clock.lose_newest()
    clock.run(0.5)
    second = cc.congestion_window
    assert second < first
    clock.lose_newest()
    # RFC 9438 §4.7: the second loss comes below the previous W_max: remember less than the window.
    assert cc.w_max == pytest.approx(second * (1 + BETA) / 2, abs=1)
    assert cc.congestion_window == pytest.approx(second * BETA, abs=1)


def test_hystart_leaves_slow_start_on_an_rtt_increase() -> None:
    cc = Cubic(MDS)
    clock = AckClock(cc, rtt=0.05)
    clock.run(0.21)
    assert cc.congestion_state == "slow_start"
    # +10 ms is above RttThresh = max(4 ms, min(50 ms / 8, 16 ms)) = 6.25 ms (RFC 9406 §4.3).
    clock.rtt = 0.06
    clock.run(0.1)
    assert cc.congestion_state == "conservative_slow_start"
    assert cc.hystart.exits == 1 and cc.ssthresh is None
    assert cc.hystart.css_baseline_min_rtt == pytest.approx(0.06)
    # CSS grows by a quarter of the acknowledged bytes: about 1.25x per round instead of 2x.
    start = cc.congestion_window
    clock.run(0.06)
    assert cc.congestion_window == pytest.approx(start * 1.25, rel=0.1)
    clock.run(0.06 * (CSS_ROUNDS + 1))
    assert cc.congestion_state == "congestion_avoidance"
    assert cc.ssthresh is not None and cc.congestion_events == 0


def test_hystart_ignores_small_rtt_increases_and_spurious_exits() -> None:
    cc = Cubic(MDS)
    clock = AckClock(cc, rtt=0.05)
    clock.run(0.21)
    clock.rtt = 0.053  # below the 6.25 ms threshold
    clock.run(0.11)
    assert cc.congestion_state == "slow_start" and cc.hystart.exits == 0
    clock.rtt = 0.07
    clock.run(0.08)
    assert cc.congestion_state == "conservative_slow_start"
    # RFC 9406 §4.3: the RTT drops back below the CSS baseline: the exit was spurious.
    clock.rtt = 0.05
    clock.run(0.06)
    assert cc.congestion_state == "slow_start" and cc.hystart.spurious_exits == 1


@pytest.mark.parametrize("name", list(CONTROLLERS))
def test_persistent_congestion_collapses_to_the_minimum_window(name: str) -> None:
    cc: BaseCongestionController = CONTROLLERS[name][0](MDS)
    clock = AckClock(cc, rtt=0.1)
    grow_to(clock, 80)
    lost = list(clock.in_flight)
    clock.in_flight.clear()
    cc.on_packets_lost(lost, clock.now)
    cc.on_persistent_congestion(clock.now)
    assert cc.congestion_window == minimum_window(MDS)
    # Slow start resumes, up to the ssthresh the loss set.
    clock.run(0.101)
    assert cc.congestion_window == 2 * minimum_window(MDS)
