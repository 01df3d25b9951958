"""NewReno grows its window once per ACK frame with the acknowledged bytes' total (issue 13) where
that equals growing it packet by packet: held to a per-packet model of RFC 9002 §7.3 over random
ACKs (slow start crossing ssthresh inside an ACK, congestion avoidance, recovery periods, application-
limited rounds, undo, packets not in flight, probes larger than the datagram size)."""

from __future__ import annotations

import random

from rudp.quic.congestion.newreno import NewReno
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace, SentPacket


class _Model:
    """RFC 9002 §7.3 per acknowledged packet, written plainly (the reference)."""

    def __init__(self, cc: NewReno) -> None:
        self.cwnd = cc.cwnd
        self.ssthresh = cc.ssthresh
        self.recovery_start_at = cc.recovery_start_at
        self.credit = cc._avoidance_credit_bytes
        self.last_sent_at = cc._last_acked_sent_at
        self.mds = cc.max_datagram_size

    def on_acked(self, packets: list[SentPacket], app_limited: bool) -> None:
        for packet in packets:
            if not packet.in_flight:
                continue
            self.last_sent_at = packet.sent_at
            if self.recovery_start_at is not None and packet.sent_at <= self.recovery_start_at:
                continue  # §7.3.2
            if app_limited:
                continue  # §7.8
            if self.ssthresh is None or self.cwnd < self.ssthresh:
                self.cwnd += packet.size_bytes  # §7.3.1
                continue
            self.credit += packet.size_bytes  # §7.3.3
            if self.credit >= self.cwnd:
                self.credit -= self.cwnd
                self.cwnd += self.mds

    def state(self) -> tuple[object, ...]:
        return (self.cwnd, self.ssthresh, self.recovery_start_at, self.credit, self.last_sent_at)


def _state(cc: NewReno) -> tuple[object, ...]:
    return (cc.cwnd, cc.ssthresh, cc.recovery_start_at, cc._avoidance_credit_bytes, cc._last_acked_sent_at)


def test_newreno_per_ack_equals_per_packet_model() -> None:
    rng = random.Random(21)
    batched_acks = 0
    for _ in range(200):
        cc = NewReno(1200)
        if rng.random() < 0.5:
            cc.cwnd = rng.choice([2400, 3000, 12000])  # small windows: ACKs worth a window or more
        rtt = RttEstimator()
        now, pn = 1.0, 0
        sent: list[SentPacket] = []
        for _ in range(60):
            for _ in range(rng.randrange(0, 30)):
                size = rng.choice([1200, 1200, 1000, 40, 0, 4096])  # 4096: a PMTU probe
                in_flight = rng.random() < 0.9
                # send times not always increasing with the number (the controller must not assume it)
                sent_at = now - (0.05 if rng.random() < 0.05 else 0.0)
                sent.append(SentPacket(pn, PacketSpace.APPLICATION, sent_at, size, in_flight, in_flight))
                pn += 1
                now += 0.0005
            now += 0.005
            event = rng.random()
            if event < 0.1 and sent:
                cc.on_packets_lost([rng.choice(sent)], now)  # a congestion event: recovery, ssthresh
            elif event < 0.13:
                snapshot = cc.undo_snapshot()
                cc.on_packets_lost(sent[-1:], now)
                cc.undo(snapshot)
            elif event < 0.15:
                cc.on_persistent_congestion(now)
            if not sent:
                continue
            chosen = sorted(rng.sample(range(len(sent)), rng.randrange(1, len(sent) + 1)))
            acked = [sent[i] for i in chosen]
            sent = [p for i, p in enumerate(sent) if i not in set(chosen)]
            cc.set_app_limited(rng.random() < 0.2)
            model = _Model(cc)
            model.on_acked(acked, cc.app_limited)
            before = cc.cwnd
            cc.on_packets_acked(acked, now, rtt)
            assert _state(cc) == model.state()
            batched_acks += cc.cwnd != before
    assert batched_acks > 1000
