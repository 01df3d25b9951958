"""A controller written in a test, selected by class and by factory, driven by a real connection."""

from __future__ import annotations

import pytest

from rudp.config import Config
from rudp.errors import ConfigError
from rudp.quic.congestion import (
    BaseCongestionController,
    CongestionController,
    Cubic,
    registered_congestion_controllers,
    resolve_congestion_controller,
)
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import SentPacket
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.support.sim import make_sim

WINDOW_PACKETS = 4


class FixedWindow(BaseCongestionController):
    """Four datagrams in flight, whatever happens; records every hook."""

    instances: list[FixedWindow] = []

    def __init__(self, max_datagram_size: int) -> None:
        super().__init__(max_datagram_size)
        self.cwnd = WINDOW_PACKETS * max_datagram_size
        self.sent = 0
        self.acked = 0
        self.lost = 0
        self.rtt_seen = 0.0
        FixedWindow.instances.append(self)

    def on_packet_sent(self, packet: SentPacket, now: float) -> None:
        self.sent += 1

    def on_packets_acked(self, packets: list[SentPacket], now: float, rtt: RttEstimator) -> None:
        self.acked += len(packets)
        self.rtt_seen = rtt.smoothed_rtt

    def on_packets_lost(self, packets: list[SentPacket], now: float) -> None:
        self.lost += len(packets)


def test_builtin_names_and_unknown_name() -> None:
    assert {"newreno", "cubic"} <= set(registered_congestion_controllers())
    assert isinstance(resolve_congestion_controller("CUBIC")(1350), Cubic)
    with pytest.raises(ConfigError, match="cubic"):
        resolve_congestion_controller("vegas")
    assert isinstance(FixedWindow(1200), CongestionController)


@pytest.mark.parametrize(("how", "dropped"), [("class", set()), ("factory", {40, 41, 90})])
def test_user_controller_is_driven_and_its_window_obeyed(pki: TestPki, how: str, dropped: set[int]) -> None:
    FixedWindow.instances.clear()
    spec: object = FixedWindow if how == "class" else (lambda mds: FixedWindow(mds))
    link = LinkConfig(delay=0.01, drop_filter=lambda data, index: index in dropped)
    sim = make_sim(pki, link=link, client={"congestion": spec})
    assert isinstance(sim.client_config, Config)
    sim.handshake()
    controller = FixedWindow.instances[0]
    limit = WINDOW_PACKETS * 1350
    peak = 0

    def watch() -> bool:
        nonlocal peak
        peak = max(peak, sim.conn.stats.bytes_in_flight)
        return stream_id in sim.server.finished

    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, bytes(300_000))
    assert sim.pair.drive(until=watch, max_time=60)
    assert len(sim.server.streams[stream_id]) == 300_000
    if dropped:
        # RFC 9002 §7.5: PTO probes (two at most) are sent whatever the window says.
        assert controller.lost >= len(dropped)
        assert limit - 1350 < peak <= limit + 2 * 1350
    else:
        assert limit - 1350 < peak <= limit
        assert controller.lost == 0
    assert controller.sent == sim.conn.stats.packets_sent
    assert controller.acked > 200
    assert controller.rtt_seen == pytest.approx(0.02, abs=0.01)
    # Four 1350-byte datagrams per 20 ms round trip: about 270 KB/s, so 300 KB take over a second.
    assert sim.clock.now - sim.client.handshake_done_at > 1.0
