"""Sent-packet records shared by loss recovery and congestion control.

Owns :class:`PacketSpace` (the three packet number spaces of RFC 9000 §12.3), :class:`SentPacket`
(what the sender remembers about each packet until it is acknowledged, declared lost or its space is
discarded; RFC 9002 Appendix A.1.1) and :class:`SentPackets`, the per-space ledger of outstanding
packets that :mod:`rudp.quic.recovery` drives. It does not own the frames themselves: each frame's
subsystem is represented only by the :data:`~rudp.quic.delivery.DeliveryHandler` it registered.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from enum import IntEnum

from rudp.codec.frames import Ack, AckRange, ConnectionClose, Crypto, Frame, Padding
from rudp.quic.delivery import DeliveryHandler
from rudp.quic.rangeset import RangeSet

_NOT_ACK_ELICITING = (Ack, Padding, ConnectionClose)


class PacketSpace(IntEnum):
    """A packet number space (RFC 9000 §12.3); 0-RTT and 1-RTT packets share ``APPLICATION``."""

    INITIAL = 0
    HANDSHAKE = 1
    APPLICATION = 2


@dataclass(slots=True)
class SentPacket:
    """One sent packet, as tracked by :class:`~rudp.quic.recovery.LossRecovery`.

    The packetizer fills one in per packet it sends and hands it to ``LossRecovery.on_packet_sent``.
    """

    packet_number: int
    """The full (untruncated) packet number."""
    space: PacketSpace
    """The packet number space the packet was sent in."""
    sent_at: float
    """Send time, seconds on the caller's clock."""
    size_bytes: int
    """Size of the QUIC packet including header and AEAD tag (no UDP/IP overhead)."""
    ack_eliciting: bool
    """True if the packet carries any frame other than ACK, PADDING and CONNECTION_CLOSE."""
    in_flight: bool
    """True if the packet counts towards bytes in flight (ack-eliciting or padded; RFC 9002 §2)."""
    handlers: list[DeliveryHandler] = field(default_factory=list)
    """Called once each with ``True`` on acknowledgment or ``False`` on loss."""
    is_crypto: bool = False
    """True if the packet carries CRYPTO frames (useful for handshake probes)."""
    largest_acked_in_ack: int | None = None
    """If the packet carried an ACK frame, that frame's largest acknowledged (for ACK-of-ACK pruning)."""
    is_pmtu_probe: bool = False
    """A PMTU probe: its loss says nothing about congestion (RFC 9000 §14.4)."""
    off_path: bool = False
    """Sent on a path the connection has since left: it still needs acknowledging (or repairing), but it
    no longer counts in the current path's bytes in flight, congestion control or RTT (RFC 9000 §9.4)."""
    ect0: bool = False
    """Sent with the ECT(0) codepoint (RFC 9000 §13.4.2: the ACK_ECN counts are validated against these)."""
    # Delivery-rate sampling state at send time (draft-ietf-ccwg-bbr "Delivery Rate Samples"), filled
    # in by rudp.quic.congestion.delivery_rate only when the controller consumes rate samples.
    delivered: int = 0
    """C.delivered (bytes acknowledged so far) when this packet was sent."""
    delivered_at: float = 0.0
    """C.delivered_time when this packet was sent."""
    first_sent_at: float = 0.0
    """C.first_send_time when this packet was sent (start of its flight's send interval)."""
    is_app_limited: bool = False
    """Sent during an application-limited period."""
    tx_in_flight: int = 0
    """Bytes in flight when this packet was sent, itself included."""
    lost_at_send: int = 0
    """C.lost (bytes declared lost so far) when this packet was sent."""

    def note_frame(self, frame: Frame, handler: DeliveryHandler | None) -> None:
        """Record what a frame written into this packet makes of it (RFC 9002 §2): every frame but
        ACK, PADDING and CONNECTION_CLOSE elicits an ACK and puts the packet in flight, PADDING puts it
        in flight; CRYPTO (handshake probes) and an ACK's largest acknowledged (ACK-of-ACK pruning) are
        remembered; ``handler`` hears of the packet's fate."""
        if isinstance(frame, Crypto):  # (a handshake's usual frame first: one test)
            self.ack_eliciting = self.in_flight = self.is_crypto = True
        elif not isinstance(frame, _NOT_ACK_ELICITING):
            self.ack_eliciting = self.in_flight = True
        elif isinstance(frame, Padding):
            self.in_flight = True
        elif isinstance(frame, Ack):
            self.largest_acked_in_ack = frame.ranges[0][1]  # (Ack.largest, without the property's call)
        if handler is not None:
            self.handlers.append(handler)


_new_object = object.__new__


def open_sent_packet(packet_number: int, space: PacketSpace, sent_at: float) -> SentPacket:
    """``SentPacket(packet_number, space, sent_at, 0, False, False, [])``, the record of a packet
    being written (nothing in it yet), without the class call: a dataclass ``__init__`` called through
    the type costs more than its eighteen stores, and packet trains make one record per packet. Every
    other field has its default (tests hold it to the constructor's record)."""
    packet = _new_object(SentPacket)
    packet.packet_number = packet_number
    packet.space = space
    packet.sent_at = sent_at
    packet.size_bytes = 0
    packet.ack_eliciting = False
    packet.in_flight = False
    packet.handlers = []
    packet.is_crypto = False
    packet.largest_acked_in_ack = None
    packet.is_pmtu_probe = False
    packet.off_path = False
    packet.ect0 = False
    packet.delivered = 0
    packet.delivered_at = 0.0
    packet.first_sent_at = 0.0
    packet.is_app_limited = False
    packet.tx_in_flight = 0
    packet.lost_at_send = 0
    return packet


class SentPackets:
    """The send-side ledger of one packet number space (RFC 9002 Appendix A.1).

    Keeps the packets not yet acknowledged or declared lost in a dict whose insertion order is
    packet-number order, plus the bookkeeping loss recovery needs per space. The policy (thresholds,
    timers, handlers, congestion signals) stays in :class:`~rudp.quic.recovery.LossRecovery`.
    """

    __slots__ = (
        "_covered",
        "ack_eliciting_in_flight",
        "acked",
        "discarded",
        "holes",
        "largest_acked",
        "largest_sent",
        "last_ack_eliciting_at",
        "loss_time",
        "packets",
    )

    def __init__(self) -> None:
        self.packets: dict[int, SentPacket] = {}
        self.largest_sent: int | None = None
        self.largest_acked: int | None = None
        self.loss_time: float | None = None
        """Earliest time an outstanding packet crosses the time threshold, if any (RFC 9002 §6.1.2)."""
        self.last_ack_eliciting_at: float | None = None
        self.ack_eliciting_in_flight = 0
        self.acked = RangeSet()
        """Acknowledged packet numbers at or above the oldest outstanding one (persistent congestion)."""
        self.discarded = False
        self._covered = -1
        """Every packet number up to this one was acknowledged, declared lost, or is in ``holes``."""
        self.holes: list[int] = []
        """Outstanding packet numbers at or below ``_covered``, ascending: the only loss candidates.

        Keeping them apart means no ACK or loss check ever walks the whole ``packets`` dict (whose
        iteration also crosses the slots of every packet removed since its last resize)."""

    def add(self, packet: SentPacket) -> None:
        """Record a sent packet (its number must exceed every earlier one)."""
        self.packets[packet.packet_number] = packet
        self.largest_sent = packet.packet_number
        if packet.in_flight and packet.ack_eliciting:
            self.last_ack_eliciting_at = packet.sent_at
            self.ack_eliciting_in_flight += 1

    def add_train(self, packets: list[SentPacket]) -> None:
        """:meth:`add` for packets in ascending number order, in one call."""
        sent = self.packets
        eliciting = 0
        for packet in packets:
            sent[packet.packet_number] = packet
            if packet.in_flight and packet.ack_eliciting:
                self.last_ack_eliciting_at = packet.sent_at
                eliciting += 1
        self.largest_sent = packets[-1].packet_number
        self.ack_eliciting_in_flight += eliciting

    def _forget(self, packet: SentPacket) -> None:
        if packet.in_flight and packet.ack_eliciting:
            self.ack_eliciting_in_flight -= 1

    def remove_acked(self, ranges: tuple[AckRange, ...]) -> list[SentPacket]:
        """Pop the packets ``ranges`` (descending, inclusive) acknowledge, in ascending order.

        Costs O(late-acknowledged holes + packet numbers newly covered by the ACK): each packet number
        is walked once in its life, whatever the number of packets in flight.
        """
        sent = self.packets
        out: list[SentPacket] = []
        append = out.append
        # The acknowledged numbers go in as runs (one range per run of consecutive numbers, not one
        # add per packet), kept as the packets are popped; _forget inline (counted at the end).
        acked = self.acked
        run_start = run_stop = -1
        eliciting = 0
        had_holes = bool(self.holes)
        if had_holes:
            keep: list[int] = []
            for number in self.holes:
                if any(low <= number <= high for low, high in ranges):
                    packet = sent.pop(number, None)
                    if packet is not None:
                        append(packet)
                        if number != run_stop:
                            if run_stop >= 0:
                                acked.add(run_start, run_stop)
                            run_start = number
                        run_stop = number + 1
                        if packet.in_flight and packet.ack_eliciting:
                            eliciting += 1
                elif number in sent:
                    keep.append(number)
            self.holes = keep
        covered = self._covered
        if ranges[0][1] > covered:
            holes = self.holes
            pop = sent.pop
            for low, high in reversed(ranges):
                if high <= covered:
                    continue
                start = max(low, covered + 1)
                for number in range(covered + 1, start):  # a gap: still outstanding, maybe lost
                    if number in sent:
                        holes.append(number)
                before = len(out)
                for number in range(start, high + 1):
                    packet = pop(number, None)
                    if packet is not None:
                        append(packet)
                        if packet.in_flight and packet.ack_eliciting:
                            eliciting += 1
                if len(out) - before == high + 1 - start:  # all there: the range is one run
                    if start != run_stop:
                        if run_stop >= 0:
                            acked.add(run_start, run_stop)
                        run_start = start
                    run_stop = high + 1
                else:  # numbers missing (declared lost, acknowledged before): the runs one by one
                    for packet in out[before:]:
                        number = packet.packet_number
                        if number != run_stop:
                            if run_stop >= 0:
                                acked.add(run_start, run_stop)
                            run_start = number
                        run_stop = number + 1
                covered = high
            self._covered = covered
        self.ack_eliciting_in_flight -= eliciting
        if self.holes:
            if run_stop >= 0:
                acked.add(run_start, run_stop)
        else:
            # Nothing outstanding at or below what this ACK covered, so nothing to lose: no loss time
            # (remove_lost's answer), and every acknowledged number is below the oldest outstanding
            # packet, where trim_acked keeps none: the caller need not ask either. (The set was
            # already empty, as trim_acked left it, unless there were holes or this ACK added runs:
            # then out is not one run.)
            self.loss_time = None
            if had_holes or len(out) != run_stop - run_start:
                acked.clear()
        return out

    def remove_lost(self, now: float, loss_delay: float, packet_threshold: int) -> list[SentPacket]:
        """Pop and return packets lost by time or packet threshold; recompute :attr:`loss_time`.

        Only packets at or below the largest acknowledged are candidates (RFC 9002 §6.1). The time
        test is written as ``sent_at + loss_delay <= now`` so that a timer armed at exactly
        ``sent_at + loss_delay`` always declares the loss (no float rounding gap, no timer loop).
        """
        self.loss_time = None
        largest_acked = self.largest_acked
        if largest_acked is None:
            return []
        lost: list[SentPacket] = []
        keep: list[int] = []
        sent = self.packets
        for number in self.holes:
            packet = sent.get(number)
            if packet is None:
                continue
            deadline = packet.sent_at + loss_delay
            if deadline <= now or largest_acked >= number + packet_threshold:
                lost.append(packet)
                del sent[number]
                self._forget(packet)
                continue
            keep.append(number)
            if self.loss_time is None or deadline < self.loss_time:
                self.loss_time = deadline
        self.holes = keep
        return lost

    def acked_between(self, low: int, high: int) -> bool:
        """True if any packet number strictly between ``low`` and ``high`` was acknowledged."""
        ranges = self.acked
        index = bisect_right(ranges, low + 1, key=lambda item: item[1])
        return index < len(ranges) and ranges[index][0] < high

    def trim_acked(self) -> None:
        """Forget acknowledged numbers below the oldest outstanding packet (bounded memory)."""
        floor = self.holes[0] if self.holes else self._covered + 1
        self.acked.trim_below(floor)

    def drain(self) -> list[SentPacket]:
        """Forget every outstanding packet and its timers; returns them. Numbering continues."""
        dropped = list(self.packets.values())
        self.packets.clear()
        self.holes = []
        self.ack_eliciting_in_flight = 0
        self.loss_time = None
        self.last_ack_eliciting_at = None
        self.acked.clear()
        return dropped

    def discard(self) -> list[SentPacket]:
        """Drop everything for good (keys discarded); returns the packets that were outstanding."""
        self.discarded = True
        return self.drain()
