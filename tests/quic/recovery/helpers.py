"""Small builders shared by the recovery tests: sent packets, ACK frames and a handler log."""

from __future__ import annotations

from rudp.codec.frames import Ack
from rudp.quic.congestion.base import BaseCongestionController
from rudp.quic.delivery import DeliveryHandler
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace, SentPacket


class HandlerLog:
    """Records every delivery-handler call as ``(packet_number, acked)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []

    def handler(self, packet_number: int) -> DeliveryHandler:
        def on_delivery(acked: bool) -> None:
            self.calls.append((packet_number, acked))

        return on_delivery

    def acked(self) -> list[int]:
        return [pn for pn, ok in self.calls if ok]

    def lost(self) -> list[int]:
        return [pn for pn, ok in self.calls if not ok]


def packet(
    pn: int,
    sent_at: float,
    *,
    space: PacketSpace = PacketSpace.APPLICATION,
    size: int = 1200,
    ack_eliciting: bool = True,
    in_flight: bool | None = None,
    log: HandlerLog | None = None,
    largest_acked_in_ack: int | None = None,
) -> SentPacket:
    """A sent packet; in flight iff ack-eliciting unless told otherwise."""
    handlers = [log.handler(pn)] if log is not None else []
    return SentPacket(
        packet_number=pn,
        space=space,
        sent_at=sent_at,
        size_bytes=size,
        ack_eliciting=ack_eliciting,
        in_flight=ack_eliciting if in_flight is None else in_flight,
        handlers=handlers,
        largest_acked_in_ack=largest_acked_in_ack,
    )


def ack_of(*pns: int, ack_delay: int = 0, ecn: tuple[int, int, int] | None = None) -> Ack:
    """An ACK frame acknowledging exactly ``pns`` (ranges built descending, inclusive)."""
    numbers = sorted(set(pns), reverse=True)
    ranges: list[tuple[int, int]] = []
    for pn in numbers:
        if ranges and ranges[-1][0] == pn + 1:
            ranges[-1] = (pn, ranges[-1][1])
        else:
            ranges.append((pn, pn))
    return Ack(ranges=tuple(ranges), ack_delay=ack_delay, ecn=ecn)


def ack_range(smallest: int, largest: int) -> Ack:
    """An ACK frame with one range."""
    return Ack(ranges=((smallest, largest),))


class RecordingController(BaseCongestionController):
    """A fixed-window controller that records which hooks ran."""

    def __init__(self, max_datagram_size: int = 1200) -> None:
        super().__init__(max_datagram_size)
        self.sent: list[int] = []
        self.acked: list[list[int]] = []
        self.lost: list[list[int]] = []
        self.persistent: list[float] = []
        self.ecn: list[int] = []
        self.path_changes = 0

    def on_packet_sent(self, packet: SentPacket, now: float) -> None:
        self.sent.append(packet.packet_number)

    def on_packets_acked(self, packets: list[SentPacket], now: float, rtt: RttEstimator) -> None:
        self.acked.append([p.packet_number for p in packets])

    def on_packets_lost(self, packets: list[SentPacket], now: float) -> None:
        self.lost.append([p.packet_number for p in packets])

    def on_persistent_congestion(self, now: float) -> None:
        self.persistent.append(now)

    def on_ecn_ce(self, count: int, now: float) -> None:
        self.ecn.append(count)

    def on_path_change(self, now: float) -> None:
        self.path_changes += 1
