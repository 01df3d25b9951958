"""Delivery-rate samples (draft-cheng-iccrg-delivery-rate-estimation §3, draft-ietf-ccwg-bbr "Delivery
Rate Samples"): the steady-state rate of a paced flow, the send-interval bound under ACK compression,
application-limited marking and its end, idle restarts, the min-RTT floor on intervals, loss
accounting, and the hooks in loss recovery (only for controllers that consume samples)."""

from __future__ import annotations

import pytest

from rudp.quic.congestion import Bbr, NewReno
from rudp.quic.congestion.base import BaseCongestionController
from rudp.quic.congestion.delivery_rate import DeliveryRateEstimator, RateSample
from rudp.quic.recovery import LossRecovery
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace, SentPacket
from tests.quic.recovery.helpers import ack_of, ack_range

MDS = 1200
RTT = 0.1
GAP = 0.001  # one packet per millisecond: 1.2 MB/s


class Flow:
    """Packets sent every ``GAP`` seconds, each acknowledged ``RTT`` later, through an estimator."""

    def __init__(self) -> None:
        self.rates = DeliveryRateEstimator()
        self.in_flight: dict[int, SentPacket] = {}
        self.next_pn = 0
        self.samples: list[RateSample] = []

    @property
    def bytes_in_flight(self) -> int:
        return MDS * len(self.in_flight)

    def send(self, now: float) -> SentPacket:
        packet = SentPacket(self.next_pn, PacketSpace.APPLICATION, now, MDS, True, True)
        self.next_pn += 1
        self.in_flight[packet.packet_number] = packet
        self.rates.on_packet_sent(packet, self.bytes_in_flight, now)
        return packet

    def ack(self, numbers: list[int], now: float, min_rtt: float = RTT) -> RateSample | None:
        for number in numbers:
            self.rates.on_packet_acked(self.in_flight.pop(number), now)
        sample = self.rates.take_sample(now, min_rtt, self.bytes_in_flight)
        if sample is not None:
            self.samples.append(sample)
        return sample

    def steady(self, until: float) -> None:
        """Send one packet per GAP from 0 to ``until``, acknowledging each one RTT after it left."""
        steps = round(until / GAP)
        for k in range(steps):
            now = round(k * GAP, 9)
            due = [pn for pn, p in self.in_flight.items() if p.sent_at + RTT <= now + 1e-12]
            if due:
                self.ack(due, now)
            self.send(now)


def test_steady_paced_flow_samples_its_sending_rate() -> None:
    flow = Flow()
    flow.steady(0.4)
    sample = flow.samples[-1]
    assert sample.valid and not sample.is_app_limited
    assert sample.delivery_rate == pytest.approx(MDS / GAP, rel=0.02)
    # The interval spans one flight (about an RTT) and rtt is the newest packet's.
    assert sample.interval == pytest.approx(RTT, abs=2 * GAP)
    assert sample.rtt == pytest.approx(RTT)
    assert sample.newly_acked == MDS and sample.newly_lost == 0
    assert sample.tx_in_flight == pytest.approx(RTT / GAP * MDS, abs=2 * MDS)
    assert sample.delivered_total == flow.rates.delivered


def test_a_burst_is_measured_at_the_rate_its_acknowledgments_return() -> None:
    flow = Flow()
    burst = [flow.send(0.0) for _ in range(20)]  # all sent at once: the send interval is zero
    for k, packet in enumerate(burst):
        flow.ack([packet.packet_number], RTT + k * GAP)  # the bottleneck spaces them 1 ms apart
    sample = flow.samples[-1]
    assert sample.send_elapsed == 0.0 and sample.interval == sample.ack_elapsed
    # 20 packets over the 100 ms + 19 ms since the burst left: the rate is finite and at most the
    # bottleneck's (the ACK interval, not the zero send interval, bounds it).
    assert sample.delivery_rate == pytest.approx(20 * MDS / (RTT + 19 * GAP))
    assert sample.delivery_rate < MDS / GAP


def test_app_limited_marks_the_flight_and_ends_once_it_is_delivered() -> None:
    flow = Flow()
    flow.steady(0.2)
    assert not flow.rates.is_app_limited
    flow.rates.on_app_limited(flow.bytes_in_flight)
    marked = flow.send(0.2)
    assert marked.is_app_limited
    # Acknowledge everything up to the marked packet: samples of packets sent before the mark are
    # not application-limited, the marked packet's sample is.
    before = [pn for pn in flow.in_flight if pn < marked.packet_number]
    sample = flow.ack(before, 0.3)
    assert sample is not None and not sample.is_app_limited
    assert flow.rates.is_app_limited  # the marked packet is still in flight
    sample = flow.ack([marked.packet_number], 0.3 + GAP)
    assert sample is not None and sample.is_app_limited
    assert not flow.rates.is_app_limited  # delivered beyond the mark: the period is over
    assert not flow.send(0.31).is_app_limited


def test_sending_after_idle_restarts_the_intervals() -> None:
    flow = Flow()
    flow.steady(0.2)
    flow.ack(sorted(flow.in_flight), 0.3)
    assert not flow.in_flight
    first = flow.send(5.0)  # after 4.7 s of silence
    assert first.first_sent_at == first.delivered_at == 5.0
    sample = flow.ack([first.packet_number], 5.0 + RTT)
    assert sample is not None
    assert sample.interval == pytest.approx(RTT)  # not the idle time


def test_intervals_shorter_than_min_rtt_give_no_rate() -> None:
    flow = Flow()
    packet = flow.send(0.0)
    sample = flow.ack([packet.packet_number], 0.05, min_rtt=0.08)
    assert sample is not None
    assert not sample.valid and sample.delivery_rate == 0.0
    assert sample.newly_acked == MDS


def test_losses_are_counted_since_each_packets_send_time() -> None:
    flow = Flow()
    flow.steady(0.2)
    victim = min(flow.in_flight)
    newest = max(flow.in_flight)
    flow.rates.on_packet_lost(flow.in_flight.pop(victim))
    sample = flow.ack([newest], 0.2 + RTT)
    assert sample is not None
    assert sample.newly_lost == MDS and sample.lost_packets[0].packet_number == victim
    assert sample.lost == MDS  # declared while the newest packet was in flight
    assert sample.lost_total == MDS
    # Only a loss and no acknowledgment (a loss timer): a sample without rate or RTT.
    other = min(flow.in_flight)
    flow.rates.on_packet_lost(flow.in_flight.pop(other))
    sample = flow.rates.take_sample(0.5, RTT, flow.bytes_in_flight)
    assert sample is not None and sample.newly_acked == 0 and sample.rtt == -1.0 and not sample.valid
    assert flow.rates.take_sample(0.5, RTT, flow.bytes_in_flight) is None


class RecordingRates(BaseCongestionController):
    """A fixed window that consumes rate samples."""

    uses_rate_samples = True

    def __init__(self, max_datagram_size: int = MDS) -> None:
        super().__init__(max_datagram_size)
        self.cwnd = 100 * max_datagram_size
        self.samples: list[RateSample] = []

    def on_rate_sample(self, sample: RateSample, now: float) -> None:
        self.samples.append(sample)


def _send(recovery: LossRecovery, pn: int, now: float) -> SentPacket:
    packet = SentPacket(pn, PacketSpace.APPLICATION, now, MDS, True, True)
    recovery.on_packet_sent(packet)
    return packet


def test_loss_recovery_hands_one_sample_per_ack_to_a_rate_consumer() -> None:
    cc = RecordingRates()
    recovery = LossRecovery(cc, RttEstimator(), max_ack_delay=0.025, is_client=True)
    for pn in range(10):
        _send(recovery, pn, pn * GAP)
    recovery.on_ack_received(PacketSpace.APPLICATION, ack_range(0, 1), 0.0, RTT + GAP)
    # Packets 0 and 1 acknowledged; then 3..9 acknowledged, 2 lost by the packet threshold.
    recovery.on_ack_received(PacketSpace.APPLICATION, ack_of(*range(3, 10)), 0.0, RTT + 9 * GAP)
    assert [s.newly_acked for s in cc.samples] == [2 * MDS, 7 * MDS]
    assert cc.samples[1].newly_lost == MDS and cc.samples[1].lost_packets[0].packet_number == 2
    assert cc.samples[1].bytes_in_flight == recovery.bytes_in_flight == 0
    # The application ran dry with room in the window: the next packet is application-limited.
    recovery.on_app_limited()
    assert _send(recovery, 10, 0.2).is_app_limited


def test_controllers_without_rate_samples_pay_nothing() -> None:
    recovery = LossRecovery(NewReno(MDS), RttEstimator(), max_ack_delay=0.025, is_client=True)
    packet = _send(recovery, 0, 0.0)
    recovery.on_app_limited()
    recovery.on_ack_received(PacketSpace.APPLICATION, ack_of(0), 0.0, RTT)
    assert packet.tx_in_flight == 0 and packet.delivered_at == 0.0 and not packet.is_app_limited
    assert Bbr.uses_rate_samples and not NewReno.uses_rate_samples
