"""An ACK clock on virtual time for driving a congestion controller alone (no packets, no crypto).

:class:`AckClock` sends as many max-size packets as the window allows, acknowledges each one exactly
one RTT after it was sent (one ACK per packet, each carrying an RTT sample), and can declare chosen
packets lost, so a test reads the window as a function of time and compares it with the controller's
defining equations.
"""

from __future__ import annotations

from collections import deque

from rudp.quic.congestion.base import CongestionController
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace, SentPacket

MDS = 1200


class AckClock:
    """Feeds ``cc`` a steady ACK clock with a path RTT that the test may change."""

    def __init__(self, cc: CongestionController, rtt: float, *, now: float = 0.0, mds: int = MDS) -> None:
        self.cc = cc
        self.rtt = rtt
        self.now = now
        self.mds = mds
        self.estimator = RttEstimator()
        self.in_flight: deque[SentPacket] = deque()
        self.next_pn = 0
        self.trace: list[tuple[float, int]] = []

    @property
    def bytes_in_flight(self) -> int:
        return sum(packet.size_bytes for packet in self.in_flight)

    def send_allowed(self) -> None:
        while self.cc.can_send(self.bytes_in_flight + self.mds):
            packet = SentPacket(self.next_pn, PacketSpace.APPLICATION, self.now, self.mds, True, True)
            self.next_pn += 1
            self.in_flight.append(packet)
            self.cc.on_packet_sent(packet, self.now)

    def ack_due(self) -> None:
        while self.in_flight and self.in_flight[0].sent_at + self.rtt <= self.now + 1e-12:
            packet = self.in_flight.popleft()
            self.estimator.update(self.now - packet.sent_at, 0.0, handshake_confirmed=True, max_ack_delay=0.0)
            self.cc.on_packets_acked([packet], self.now, self.estimator)

    def lose_newest(self) -> SentPacket:
        """Declare the most recently sent outstanding packet lost."""
        packet = self.in_flight.pop()
        self.cc.on_packets_lost([packet], self.now)
        return packet

    def run(self, duration: float, step: float = 0.001) -> None:
        end = self.now + duration
        while self.now < end - 1e-12:
            self.now = round(self.now + step, 9)
            self.ack_due()
            self.send_allowed()
            self.trace.append((self.now, self.cc.congestion_window))

    def window_at(self, t: float) -> int:
        """The window recorded at the last step at or before ``t``."""
        best = self.trace[0][1]
        for when, window in self.trace:
            if when > t + 1e-12:
                break
            best = window
        return best
