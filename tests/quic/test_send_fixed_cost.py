"""The fixed cost of a flush on the send side (issue 13, small requests): what a batch asks once and
what it may leave unasked must not change what it decides."""

from __future__ import annotations

import pytest

from rudp.quic.congestion import NewReno
from rudp.quic.congestion.base import initial_window
from rudp.quic.pacing import Pacer
from rudp.quic.pmtud import MAX_PROBE_ATTEMPTS, PmtuDiscovery
from rudp.quic.recovery import LossRecovery
from rudp.quic.rtt import RttEstimator
from rudp.quic.trains import TrainSender
from rudp.testing.certs import TestPki
from tests.support.sim import Sim, make_sim


def _quiet_client(pki: TestPki) -> Sim:
    sim = make_sim(pki, client={"pmtu_discovery": False}, server={"pmtu_discovery": False})
    sim.handshake()
    sim.pair.drive(max_time=1.0)  # the handshake's tail (CIDs, tokens, ACKs) settles
    return sim


@pytest.mark.parametrize(("size", "app_limited"), [(100, True), (400_000, False)])
def test_a_train_reports_app_limited_only_when_the_streams_are_drained(
    pki: TestPki, monkeypatch: pytest.MonkeyPatch, size: int, app_limited: bool
) -> None:
    # RFC 9002 §7.8 / delivery-rate samples: a batch whose train sent every queued byte says the
    # application limits the rate; one the congestion window or the pacer stopped with data left
    # does not (Sender._datagrams skips the question when TrainSender.drained says the answer).
    sim = _quiet_client(pki)
    conn = sim.conn
    calls: list[int] = []
    original = LossRecovery.on_app_limited
    monkeypatch.setattr(LossRecovery, "on_app_limited", lambda self: calls.append(1) or original(self))
    trains: list[int] = []
    build = TrainSender.build

    def counted(
        self: TrainSender, now: float, path: object, out: list[object], ecn: bool, gate: object
    ) -> bool:
        before = len(out)
        alive = build(self, now, path, out, ecn, gate)  # type: ignore[arg-type]
        trains.append(len(out) - before)
        return alive

    monkeypatch.setattr(TrainSender, "build", counted)
    stream_id = conn.open_stream()
    conn.send_stream(stream_id, bytes(size), fin=True)
    now = sim.clock.now
    datagrams = conn.datagrams_to_send(now)
    assert trains and sum(trains) == len(datagrams) > 0  # the batch was one train
    assert calls == ([1] if app_limited else [])


def test_the_pacers_pause_refill_follows_the_datagram_size() -> None:
    # The pacer keeps the initial window of its datagram size (RFC 9002 §7.2, §7.7: a pause refills
    # the bucket that far) and recomputes it when the path's PMTU search moves the size.
    cc = NewReno(1000)
    cc.cwnd = 40_000  # 2 x 40 kB / 40 ms = 2 MB/s: 2 ms of it is 4 kB, under either initial window
    rtt = RttEstimator()
    rtt.update(0.04, 0.0, handshake_confirmed=True, max_ack_delay=0.0)
    pacer = Pacer(1000)
    pacer.use_datagram_size(1400)

    def burst(now: float) -> int:
        sent = 0
        while pacer.allows(now, 1400, cc, rtt):
            pacer.on_sent(1400, now)
            sent += 1400
        return sent

    burst(0.0)
    assert initial_window(1400) == 14_000 != initial_window(1000)
    assert burst(1.0) == 14_000  # the pause refilled the bucket to 10 datagrams of the new size


def test_pmtu_searching_follows_every_change_of_size_and_ceiling() -> None:
    # PmtuDiscovery.searching is an attribute the sender reads per batch: every change of the
    # confirmed size or the ceiling keeps it (RFC 8899: the search ends within SEARCH_GRANULARITY).
    limited = PmtuDiscovery(1350, 16384)
    assert limited.searching
    limited.set_ceiling(1400)  # within the granularity of the base size: nothing left to find
    assert not limited.searching
    peer = PmtuDiscovery(1350, 16384)
    peer.limit_to(1300)  # the peer's max_udp_payload_size below the base
    assert not peer.searching and peer.current == 1300
    lost = PmtuDiscovery(1350, 1452)
    for _ in range(MAX_PROBE_ATTEMPTS):
        size = lost.probe_size(0.0)
        assert size == 1452 and lost.searching
        lost.on_probe_lost(size, retry_delay=0.0)
    assert not lost.searching  # 1452 failed: the ceiling 1451 is a step below the granularity
    done = PmtuDiscovery(1350, 1452)
    done.on_probe_acked(1452)
    assert not done.searching
    done.on_black_hole(1350)  # back to the base: 1451 is still worth nothing, below a failure
    assert not done.searching
    hole = PmtuDiscovery(1350, 4096)
    hole.on_probe_acked(1452)
    hole.on_probe_acked(4096)
    assert not hole.searching  # the ceiling reached
    hole.on_black_hole(1350)  # RFC 8899 §4.3: back to the base, searching again below 4096
    assert hole.current == 1350 and hole.searching
