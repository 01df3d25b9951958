"""Both controllers on a simulated 20 Mbit/s, 40 ms RTT bottleneck with a one-BDP drop-tail buffer.

Utilisation over the first 8 virtual seconds (slow start included) must reach 85% of the link; after
a burst of 30 consecutive drops the sender must cut its window and be back above 85% within a few
seconds. The same link with a deep buffer makes HyStart++ leave slow start on the queueing delay,
before any loss. Wall time: about 5-8 s per controller.
"""

from __future__ import annotations

import pytest

from rudp.testing import DropRange, LinkConfig
from rudp.testing.certs import TestPki
from tests.quic.congestion.probes import PROBES, Keeper, ProbeCubic
from tests.support.sim import Sim, make_sim

BANDWIDTH = 20e6  # bits/s
DELAY = 0.02  # one way: 40 ms RTT
BDP_BYTES = int(BANDWIDTH / 8 * 2 * DELAY)  # 100 KB


def _bottleneck(pki: TestPki, congestion: object, queue_bytes: int | None) -> Sim:
    c2s = LinkConfig(delay=DELAY, bandwidth=BANDWIDTH, queue_bytes=queue_bytes)
    s2c = LinkConfig(delay=DELAY, seed=1)
    # The virtual clock honours any wait: pace at 0.1 ms granularity (10-datagram bursts), so a burst
    # never overflows the bottleneck queue inside the 30 datagrams the loss burst drops by index.
    client = {"congestion": congestion, "timer_granularity": 0.0001}
    return make_sim(pki, link=c2s, s2c=s2c, client=client)


def _utilisation(sim: Sim, seconds: float) -> float:
    start_bytes = sim.pair.c2s.stats.bytes_delivered
    start = sim.clock.now
    sim.pair.run_for(seconds)
    delivered = sim.pair.c2s.stats.bytes_delivered - start_bytes
    return delivered * 8 / (BANDWIDTH * (sim.clock.now - start))


@pytest.mark.parametrize("name", list(PROBES))
def test_utilisation_and_recovery_after_a_loss_burst(pki: TestPki, name: str) -> None:
    probe, factor = PROBES[name]
    keeper = Keeper(probe)
    sim = _bottleneck(pki, keeper, BDP_BYTES)
    sim.handshake()
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, bytes(40_000_000))
    first = _utilisation(sim, 8.0)
    cc = keeper.last
    assert isinstance(cc, PROBES[name][0])
    print(f"{name}: utilisation {first:.3f} over 8 s, {len(cc.cuts)} window cuts")
    assert first >= 0.85
    # Losses came only from the drop-tail queue (and PMTU probes above the link's MTU, which are no
    # congestion signal), and each cut was the controller's factor.
    assert sim.pair.c2s.stats.dropped.get("queue")
    assert set(sim.pair.c2s.stats.dropped) <= {"queue", "mtu"}
    assert cc.cuts and all(after == pytest.approx(before * factor, abs=2) for before, after in cc.cuts)

    cuts_before = len(cc.cuts)
    sent = sim.pair.c2s.stats.sent
    sim.pair.c2s.update(burst_loss=DropRange(start=sent + 10, count=30))
    sim.pair.run_for(1.0)
    assert sim.pair.c2s.stats.dropped.get("burst") == 30
    assert len(cc.cuts) > cuts_before  # the burst was a congestion event
    after = _utilisation(sim, 4.0)
    print(f"{name}: utilisation {after:.3f} over 4 s after the burst")
    assert after >= 0.85
    assert sim.conn.stats.persistent_congestion_count == 0
    assert len(sim.server.streams[stream_id]) > 0.85 * BANDWIDTH / 8 * 13


def test_hystart_leaves_slow_start_on_queueing_delay_before_any_loss(pki: TestPki) -> None:
    keeper = Keeper(ProbeCubic)
    sim = _bottleneck(pki, keeper, None)  # an unbounded buffer: the RTT rises, nothing is dropped
    sim.handshake()
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, bytes(8_000_000))
    cc = keeper.last
    assert isinstance(cc, ProbeCubic)
    assert sim.pair.drive(until=lambda: cc.hystart.exits > 0, max_time=2.0)
    assert cc.congestion_state == "conservative_slow_start"
    assert cc.ssthresh is None and not cc.cuts and sim.conn.stats.packets_lost == 0
    # The exit came when the round's minimum RTT rose by RttThresh over the base 40 ms.
    assert cc.hystart.css_baseline_min_rtt >= 0.040 + 0.005
    assert sim.pair.drive(until=lambda: cc.congestion_state == "congestion_avoidance", max_time=3.0)
    assert cc.ssthresh is not None and not cc.cuts


@pytest.mark.parametrize("name", list(PROBES))
def test_persistent_congestion_collapses_to_the_minimum_window(pki: TestPki, name: str) -> None:
    keeper = Keeper(PROBES[name][0])
    sim = make_sim(pki, link=LinkConfig(delay=0.01), client={"congestion": keeper})
    sim.handshake()
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, bytes(3_000_000))
    sim.pair.run_for(0.1)
    cc = keeper.last
    assert isinstance(cc, PROBES[name][0])
    assert cc.congestion_window > 20 * cc.minimum_window_bytes
    sim.pair.c2s.update(loss=1.0)
    sim.pair.run_for(2.0)
    sim.pair.c2s.update(loss=0.0)
    assert sim.pair.drive(until=lambda: sim.conn.stats.persistent_congestion_count == 1, max_time=5)
    # RFC 9002 §7.6.2: the window collapses to kMinimumWindow (two datagrams).
    assert cc.collapses == [cc.minimum_window_bytes] == [2 * 1350]
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=60)
    assert len(sim.server.streams[stream_id]) == 3_000_000
