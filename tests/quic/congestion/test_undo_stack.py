"""Spurious-loss undo inside a real connection on the simulator: a path that reorders 1% of the
packets by 4 ms (about 8 packets at 20 Mbit/s) but loses none. CUBIC declares the first reordered
packet lost, the peer acknowledges it, recovery undoes that congestion event and widens its
reordering thresholds past the depth seen, so later reorderings cost nothing.

Before spurious-loss detection (fixed thresholds 3 packets / 9/8 RTT, no undo) the same transfer
declared 17 packets lost, reduced the window 9 times and took 3.5 s (simulated)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rudp.quic.congestion import Cubic
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.quic.congestion.probes import Keeper
from tests.support.sim import make_sim


@pytest.mark.parametrize("qlog", [False, True], ids=["plain", "qlog-proxy"])
def test_cubic_undoes_the_reduction_that_reordering_caused(pki: TestPki, tmp_path: Path, qlog: bool) -> None:
    link = LinkConfig(
        delay=0.02, bandwidth=20e6, queue_bytes=1_000_000, reorder=0.01, reorder_delay=0.004, seed=3
    )
    keeper = Keeper(Cubic)
    options: dict[str, object] = {"congestion": keeper, "pmtu_discovery": False}
    if qlog:  # the controller then sits behind qlog's logging proxy, which must forward the hooks
        options["qlog_dir"] = tmp_path
    sim = make_sim(pki, link=link, client=options)
    sim.handshake()
    stream_id = sim.conn.open_stream()
    size = 3_000_000
    sim.client.send(stream_id, bytes(size))
    started = sim.clock.now
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=60)
    elapsed = sim.clock.now - started
    assert len(sim.server.streams[stream_id]) == size
    cc = keeper.last
    assert isinstance(cc, Cubic)
    lost = sim.conn.stats.packets_lost
    print(
        f"CUBIC, reordering path: {lost} lost, {cc.congestion_events} events, "
        f"{cc.undone_events} undone, {elapsed:.2f} s"
    )
    assert cc.undone_events >= 1
    assert cc.congestion_events - cc.undone_events <= 1
    assert lost <= 4 and elapsed < 2.0
