"""A bottleneck path on virtual time for driving a rate-sampling controller alone (no packets, no crypto).

:class:`RatePath` sends max-size packets whenever the controller's window and its pacing rate allow and
the application has data, serialises them through a bottleneck of ``rate`` bytes/s with a drop-tail
queue of ``queue_bytes``, drops packets at random with probability ``loss`` (seeded), acknowledges each
delivered packet ``rtt`` after it left the bottleneck's queue-free timeline, and declares a dropped
packet lost when a packet sent three after it is acknowledged (RFC 9002 §6.1.1). A real
:class:`~rudp.quic.congestion.delivery_rate.DeliveryRateEstimator` turns each ACK into the controller's
rate sample, exactly as :class:`~rudp.quic.recovery.LossRecovery` does.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable

from rudp.quic.congestion.bbr import Bbr
from rudp.quic.congestion.delivery_rate import DeliveryRateEstimator
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace, SentPacket

MDS = 1200
STEP = 0.0002


class RatePath:
    """One sender (``cc``) on a bottleneck; ``app_budget`` (bytes/s, None = always data) limits the app."""

    def __init__(
        self,
        cc: Bbr,
        *,
        rate: float,
        rtt: float,
        queue_bytes: int | None = None,
        loss: float = 0.0,
        seed: int = 7,
    ) -> None:
        self.cc = cc
        self.rate = rate
        self.rtt = rtt
        self.queue_bytes = queue_bytes
        self.loss = loss
        self.random = random.Random(seed)
        self.now = 0.0
        self.estimator = RttEstimator()
        self.rates = DeliveryRateEstimator()
        self.outstanding: dict[int, SentPacket] = {}
        self.dropped: list[int] = []
        self.acks: list[tuple[float, int]] = []
        self.bytes_in_flight = 0
        self.next_pn = 0
        self.link_free_at = 0.0
        self.tokens = 2.0 * MDS
        self.delivered_bytes = 0
        self.app_budget: float | None = None
        self.app_tokens = 0.0
        self.mark_app_limited = True
        """Report application-limited periods to the estimator (as the connection does)."""
        self.on_sample: Callable[[RatePath], None] | None = None
        self.trace: list[tuple[float, str, int, float]] = []
        """``(now, state, cwnd, bytes in flight)`` after each ACK."""

    # -- sending --------------------------------------------------------------------------------------

    def _app_has_data(self) -> bool:
        return self.app_budget is None or self.app_tokens >= MDS

    def _send_one(self) -> None:
        packet = SentPacket(self.next_pn, PacketSpace.APPLICATION, self.now, MDS, True, True)
        self.next_pn += 1
        self.bytes_in_flight += MDS
        self.rates.on_packet_sent(packet, self.bytes_in_flight, self.now)
        self.cc.on_packet_sent(packet, self.now)
        self.outstanding[packet.packet_number] = packet
        self.tokens -= MDS
        if self.app_budget is not None:
            self.app_tokens -= MDS
        queued = max(self.link_free_at - self.now, 0.0) * self.rate
        if self.queue_bytes is not None and queued + MDS > self.queue_bytes:
            self.dropped.append(packet.packet_number)
            return
        if self.loss and self.random.random() < self.loss:
            self.dropped.append(packet.packet_number)
            return
        self.link_free_at = max(self.link_free_at, self.now) + MDS / self.rate
        heapq.heappush(self.acks, (self.link_free_at + self.rtt, packet.packet_number))

    def _send_allowed(self) -> None:
        rate = self.cc.pacing_rate(self.estimator) if self.estimator.has_sample else None
        while self.cc.can_send(self.bytes_in_flight + MDS) and self._app_has_data():
            if rate is not None and self.tokens < MDS:
                return
            self._send_one()
        if (
            self.mark_app_limited
            and self.app_budget is not None
            and not self._app_has_data()
            and self.bytes_in_flight < self.cc.congestion_window
        ):
            self.rates.on_app_limited(self.bytes_in_flight)

    # -- acknowledgments -------------------------------------------------------------------------------

    def _ack_due(self) -> None:
        while self.acks and self.acks[0][0] <= self.now + 1e-12:
            _, number = heapq.heappop(self.acks)
            packet = self.outstanding.pop(number)
            self.bytes_in_flight -= MDS
            self.delivered_bytes += MDS
            self.estimator.update(self.now - packet.sent_at, 0.0, handshake_confirmed=True, max_ack_delay=0.0)
            self.rates.on_packet_acked(packet, self.now)
            lost = [pn for pn in self.dropped if pn + 3 <= number]
            if lost:
                self.dropped = [pn for pn in self.dropped if pn + 3 > number]
                for pn in lost:
                    gone = self.outstanding.pop(pn)
                    self.bytes_in_flight -= MDS
                    self.rates.on_packet_lost(gone)
            sample = self.rates.take_sample(self.now, self.estimator.min_rtt, self.bytes_in_flight)
            assert sample is not None
            self.cc.on_rate_sample(sample, self.now)
            cc = self.cc
            self.trace.append((self.now, cc.congestion_state, cc.congestion_window, self.bytes_in_flight))
            if self.on_sample is not None:
                self.on_sample(self)

    def run(self, duration: float) -> None:
        """Advance virtual time by ``duration`` seconds in steps of 0.2 ms."""
        end = self.now + duration
        while self.now < end - 1e-12:
            self.now = round(self.now + STEP, 9)
            rate = self.cc.pacing_rate(self.estimator) if self.estimator.has_sample else None
            self.tokens = min(self.tokens + (rate or 0.0) * STEP, 2.0 * MDS)
            if self.app_budget is not None:
                self.app_tokens = min(self.app_tokens + self.app_budget * STEP, 4.0 * MDS)
            self._ack_due()
            self._send_allowed()

    def run_until(self, condition: Callable[[], bool], max_time: float) -> bool:
        """Run until ``condition()`` holds (checked every 1 ms) or ``max_time`` seconds passed."""
        end = self.now + max_time
        while self.now < end:
            if condition():
                return True
            self.run(0.001)
        return condition()

    def goodput(self, duration: float) -> float:
        """Bytes/s delivered over the next ``duration`` seconds."""
        before = self.delivered_bytes
        self.run(duration)
        return (self.delivered_bytes - before) / duration
