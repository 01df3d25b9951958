"""NewReno window arithmetic (RFC 9002 §7, Appendix B), driven with sent-packet records directly."""

from __future__ import annotations

import pytest

from rudp.quic.congestion.base import initial_window, minimum_window
from rudp.quic.congestion.newreno import NewReno
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import SentPacket
from tests.quic.recovery.helpers import packet

MDS = 1200
RTT = RttEstimator()


class Sender:
    """Numbers packets and remembers nothing else: the tests decide what is acked or lost."""

    def __init__(self, cc: NewReno) -> None:
        self.cc = cc
        self.next_pn = 0

    def send(self, count: int, at: float, size: int = MDS) -> list[SentPacket]:
        out = []
        for _ in range(count):
            sent = packet(self.next_pn, at, size=size)
            self.next_pn += 1
            self.cc.on_packet_sent(sent, at)
            out.append(sent)
        return out


@pytest.mark.parametrize(("mds", "expected"), [(1200, 12000), (1500, 14720), (9000, 18000)])
def test_initial_and_minimum_window(mds: int, expected: int) -> None:
    assert initial_window(mds) == expected
    assert minimum_window(mds) == 2 * mds
    cc = NewReno(mds)
    assert cc.congestion_window == expected
    assert cc.in_slow_start and cc.ssthresh is None


def test_slow_start_grows_by_acked_bytes_and_doubles_per_round_trip() -> None:
    cc = NewReno(MDS)
    sender = Sender(cc)
    one = sender.send(1, 0.0, size=700)
    cc.on_packets_acked(one, 0.1, RTT)
    assert cc.congestion_window == 12000 + 700
    cc = NewReno(MDS)
    sender = Sender(cc)
    now = 0.0
    for _ in range(4):
        before = cc.congestion_window
        flight = sender.send(before // MDS, now)
        now += 0.1
        cc.on_packets_acked(flight, now, RTT)
        assert cc.congestion_window == 2 * before


def test_halving_once_per_recovery_period() -> None:
    cc = NewReno(MDS)
    sender = Sender(cc)
    early = sender.send(12, 0.5)
    cc.on_packets_lost([early[0]], 1.0)
    assert cc.congestion_window == 6000
    assert cc.ssthresh == 6000
    assert cc.recovery_start_at == 1.0
    # More losses of packets sent before (or exactly when) the period began: no further reduction.
    cc.on_packets_lost(early[1:3], 1.2)
    cc.on_packets_lost(sender.send(1, 1.0), 1.3)
    assert cc.congestion_window == 6000
    # Acks of packets sent before the period do not grow the window either (9 * 1200 > cwnd).
    cc.on_packets_acked(early[3:], 1.2, RTT)
    assert cc.congestion_window == 6000
    # A loss of a packet sent after the period began is a new congestion event.
    late = sender.send(1, 1.1)
    cc.on_packets_lost(late, 1.5)
    assert cc.congestion_window == 3000
    assert cc.congestion_events == 2


def test_non_in_flight_losses_are_not_congestion() -> None:
    cc = NewReno(MDS)
    cc.on_packets_lost([packet(0, 0.0, ack_eliciting=False)], 1.0)
    assert cc.congestion_window == 12000 and cc.congestion_events == 0


def test_congestion_avoidance_grows_one_datagram_per_window() -> None:
    cc = NewReno(MDS)
    sender = Sender(cc)
    cc.on_packets_lost(sender.send(1, 0.0), 0.1)
    assert cc.congestion_window == 6000 and not cc.in_slow_start
    now = 0.2
    for _ in range(5):
        before = cc.congestion_window
        flight = sender.send(before // MDS, now)
        now += 0.1
        cc.on_packets_acked(flight[:-1], now, RTT)
        assert cc.congestion_window == before  # not yet a full window's worth
        cc.on_packets_acked(flight[-1:], now, RTT)
        assert cc.congestion_window == before + MDS


def test_window_never_below_minimum() -> None:
    cc = NewReno(MDS)
    sender = Sender(cc)
    now = 0.0
    for _ in range(10):
        lost = sender.send(1, now + 0.01)
        now += 1.0
        cc.on_packets_lost(lost, now)
    assert cc.congestion_window == minimum_window(MDS)


def test_persistent_congestion_collapses_and_ends_recovery() -> None:
    cc = NewReno(MDS)
    sender = Sender(cc)
    cc.on_packets_lost(sender.send(1, 0.0), 1.0)
    cc.on_persistent_congestion(1.0)
    assert cc.congestion_window == 2 * MDS
    # Out of recovery: an ack of an old packet grows the window again (still below ssthresh).
    cc.on_packets_acked(sender.send(1, 0.5), 1.1, RTT)
    assert cc.congestion_window == 3 * MDS


def test_ecn_ce_is_a_congestion_event() -> None:
    cc = NewReno(MDS)
    sender = Sender(cc)
    cc.on_packets_acked(sender.send(1, 0.0), 0.1, RTT)
    cc.on_ecn_ce(1, 0.1)
    assert cc.congestion_window == (12000 + MDS) // 2
    cc.on_ecn_ce(0, 0.2)
    assert cc.congestion_events == 1


def test_path_change_restarts() -> None:
    cc = NewReno(MDS)
    cc.on_packets_lost([packet(0, 0.0)], 1.0)
    cc.on_path_change(2.0)
    assert cc.congestion_window == 12000 and cc.ssthresh is None and cc.recovery_start_at is None


def test_metrics_and_can_send() -> None:
    cc = NewReno(MDS)
    assert cc.metrics() == {"cwnd": 12000.0, "congestion_events": 0.0}
    cc.on_packets_lost([packet(0, 0.0)], 1.0)
    assert cc.metrics()["ssthresh"] == 6000.0
    assert cc.can_send(6000) and not cc.can_send(6001)
    assert cc.pacing_rate(RTT) is None
