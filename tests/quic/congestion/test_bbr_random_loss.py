"""BBR against CUBIC through the in-process simulator: 20 Mbit/s, 40 ms RTT, a one-BDP drop-tail queue
and 1% random loss on the data direction, on the virtual clock.

Random loss is not congestion: BBR's model (bandwidth and min RTT) keeps pacing near the link's rate,
while CUBIC cuts its window on every loss and collapses to a fraction of the link. BBRv3 still gives
up some of the link (it reacts to loss rates above 2% per round, and at this BDP of ~83 datagrams two
random losses in one flight already look like 2.4%; each lossy round outside probing shaves the
short-term bounds: see rudp/quic/congestion/README.md): 0.79-0.87 of the link in seven runs here
(the simulator is not deterministic run to run), 0.44-0.65 while loss recovery held the flight (packet
conservation, gone from the current draft). Wall time: about 15-25 s for both.
"""

from __future__ import annotations

from rudp.quic.congestion import Bbr, Cubic
from rudp.quic.congestion import bbr as B
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.quic.congestion.probes import Keeper
from tests.support.sim import make_sim

BANDWIDTH = 20e6
DELAY = 0.02
SECONDS = 8.0


def _goodput(pki: TestPki, keeper: Keeper) -> float:
    c2s = LinkConfig(
        delay=DELAY, bandwidth=BANDWIDTH, queue_bytes=int(BANDWIDTH / 8 * 2 * DELAY), loss=0.01, seed=5
    )
    sim = make_sim(pki, link=c2s, s2c=LinkConfig(delay=DELAY, seed=6), client={"congestion": keeper})
    sim.handshake()
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, bytes(40_000_000))
    start = sim.clock.now
    sim.pair.run_for(SECONDS)
    delivered = len(sim.server.streams[stream_id])
    assert sim.pair.c2s.stats.dropped.get("loss")
    assert sim.conn.stats.persistent_congestion_count == 0
    return delivered * 8 / (BANDWIDTH * (sim.clock.now - start))


def test_bbr_keeps_most_of_a_randomly_lossy_link_where_cubic_collapses(pki: TestPki) -> None:
    bbr_keeper = Keeper(Bbr)
    bbr = _goodput(pki, bbr_keeper)
    cubic = _goodput(pki, Keeper(Cubic))
    print(f"1% random loss, 20 Mbit/s, 40 ms: BBR {bbr:.2f}, CUBIC {cubic:.2f} of the link")
    cc = bbr_keeper.last
    assert isinstance(cc, Bbr)
    visited = {state for _, state in cc.state_changes}
    assert {B.DRAIN, B.PROBE_BW_DOWN, B.PROBE_BW_CRUISE, B.PROBE_BW_REFILL, B.PROBE_BW_UP} <= visited
    assert bbr >= 0.65
    assert cubic < 0.4
    assert bbr >= 2 * cubic
