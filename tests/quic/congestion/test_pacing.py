"""The pacer on the simulated link: bursts stay within the allowance with pacing on, not with it off."""

from __future__ import annotations

import pytest

from rudp.quic.congestion.base import SLOW_START_PACING_GAIN, initial_window
from rudp.quic.pacing import Pacer
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.support.sim import Sim, make_sim

MDS = 1350


def _transfer(
    pki: TestPki, *, pacing: bool, congestion: str = "newreno", granularity: float = 0.001
) -> tuple[Sim, int, float]:
    client = {
        "pacing": pacing,
        "congestion": congestion,
        "pmtu_discovery": False,
        "timer_granularity": granularity,
    }
    sim = make_sim(pki, link=LinkConfig(delay=0.02), client=client)
    sim.handshake()
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, bytes(2_000_000))
    max_cwnd, min_srtt = 0, 1.0

    def watch() -> bool:
        nonlocal max_cwnd, min_srtt
        stats = sim.conn.stats
        max_cwnd = max(max_cwnd, stats.congestion_window)
        min_srtt = min(min_srtt, stats.smoothed_rtt)
        return stream_id in sim.server.finished

    assert sim.pair.drive(until=watch, max_time=30)
    assert len(sim.server.streams[stream_id]) == 2_000_000
    return sim, max_cwnd, min_srtt


@pytest.mark.parametrize("granularity", [0.001, 0.0001])
def test_paced_bursts_stay_within_the_allowance(pki: TestPki, granularity: float) -> None:
    sim, max_cwnd, min_srtt = _transfer(pki, pacing=True, granularity=granularity)
    max_rate = SLOW_START_PACING_GAIN * max_cwnd / min_srtt  # bytes/s: the fastest the pacer ran
    # The largest bucket: two timer granularities of the fastest rate (10 datagrams when that is
    # less), never above half the largest window; after a pause, the initial window (RFC 9002 §7.7).
    burst = max(Pacer.burst_allowance(max_rate, MDS, granularity, max_cwnd), initial_window(MDS))
    for window in (1e-6, 1e-4, 1e-3, 5e-3):
        # A bucket of at most `burst` bytes, refilled at no more than `max_rate`, plus one datagram
        # of rounding and the few small ACK-only datagrams, which are not paced.
        allowance = burst + max_rate * window + MDS + 200
        assert sim.pair.c2s.max_burst_bytes(window) <= allowance, window
    assert sim.pair.c2s.max_burst_bytes(1e-6) <= burst + 200


def test_unpaced_bursts_are_larger(pki: TestPki) -> None:
    paced, _, _ = _transfer(pki, pacing=True)
    unpaced, _, _ = _transfer(pki, pacing=False)
    for window in (1e-6, 1e-3):
        assert unpaced.pair.c2s.max_burst_bytes(window) > 3 * paced.pair.c2s.max_burst_bytes(window)
    # Pacing spreads the same data over more sending instants but costs little time.
    assert paced.clock.now - unpaced.clock.now < 0.2


def test_pacer_asks_the_controller_it_is_given_each_time() -> None:
    # The pacer looks up a controller's pacing_rate / window_pacing_gain once per controller: a
    # different controller (a path switch) must be asked afresh, and a gain that moves is followed.
    from rudp.quic.congestion.base import BaseCongestionController
    from rudp.quic.congestion.newreno import NewReno
    from rudp.quic.rtt import RttEstimator

    class OwnRate(BaseCongestionController):
        def pacing_rate(self, rtt: RttEstimator) -> float | None:
            return 123_456.0

    class Gain(BaseCongestionController):
        gain = 1.5

        def window_pacing_gain(self) -> float:
            return self.gain

    rtt = RttEstimator()
    rtt.update(0.1, 0.0, handshake_confirmed=True, max_ack_delay=0.0)
    pacer = Pacer(MDS)
    plain, own, gain = BaseCongestionController(MDS), OwnRate(MDS), Gain(MDS)
    window = plain.congestion_window
    assert pacer.current_rate(plain, rtt) == pytest.approx(1.25 * window / 0.1)
    assert pacer.current_rate(own, rtt) == 123_456.0
    assert pacer.current_rate(gain, rtt) == pytest.approx(1.5 * window / 0.1)
    gain.gain = 3.0
    assert pacer.current_rate(gain, rtt) == pytest.approx(3.0 * window / 0.1)
    assert pacer.current_rate(own, rtt) == 123_456.0
    reno = NewReno(MDS)
    expected = SLOW_START_PACING_GAIN * reno.congestion_window / 0.1
    assert pacer.current_rate(reno, rtt) == pytest.approx(expected)
