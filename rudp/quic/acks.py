"""Acknowledging what we receive (RFC 9000 §13.2): the ACK tracker of one packet number space.

Owns :class:`AckTracker`: duplicate detection, the received ranges, the ACK timer (RFC 9000 §13.2.1,
§13.2.2), building ACK frames (also as the packetizer's frame source) and ACK-of-ACK pruning (RFC 9000
§13.2.4). It lives in its :class:`~rudp.quic.spaces.PacketNumberSpace` and goes with it.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar, Final

from rudp.codec.frames import Ack
from rudp.quic.delivery import DeliveryHandler, PacketSink
from rudp.quic.rangeset import RangeSet
from rudp.quic.sent import PacketSpace

DEFAULT_MAX_ACK_DELAY: Final = 0.025
"""Our max_ack_delay when none is configured (RFC 9000 §18.2 default, 25 ms)."""

MAX_ACK_RANGES: Final = 32
"""Ranges written into one ACK frame, newest first (older ones are omitted; RFC 9000 §13.2.3)."""

MAX_TRACKED_RANGES: Final = 128
"""Ranges remembered at most; beyond that the oldest are forgotten and treated as duplicates."""

ACK_ELICITING_THRESHOLD: Final = 2
"""Acknowledge after this many ack-eliciting packets without waiting (RFC 9000 §13.2.2)."""

_APPLICATION = PacketSpace.APPLICATION  # bound once: enum member lookups are slow in 3.11 (per packet)


class AckTracker:
    """Received packet numbers of one space and the decision of when to send an ACK.

    Usage by the connection: call :meth:`is_duplicate` before processing a decrypted packet and
    :meth:`on_packet_received` after; the packetizer sends an ACK-only packet when
    :meth:`ack_needed` is true, piggybacks one whenever :attr:`ack_pending` is true and it is sending
    anyway, then calls :meth:`on_ack_sent`. Arm a timer at :meth:`ack_deadline`. When a sent packet
    that carried an ACK is acknowledged, call :meth:`on_ack_acked` with that ACK's largest.

    Initial and Handshake packets are acknowledged immediately; Application packets within
    ``max_ack_delay`` (RFC 9000 §13.2.1).
    """

    __slots__ = (
        "_deadline",
        "_floor",
        "_immediate",
        "_largest_ack_eliciting",
        "_largest_received_at",
        "_largest_reported",
        "_last_sent_largest",
        "_pending",
        "_received",
        "_resend",
        "_unacked_eliciting",
        "_unacked_flow",
        "ack_delay_exponent",
        "ack_eliciting_threshold",
        "ecn_counts",
        "largest_received",
        "max_ack_delay",
        "max_ack_ranges",
        "reordering_threshold",
        "report_ecn",
        "space",
    )

    in_order_fast_path: ClassVar[bool] = True
    """Take the next in-order data packet in one pass (:meth:`on_packet_received`); a subclass that
    turns it off is the reference the tests compare the shortcut with."""

    def __init__(
        self,
        space: PacketSpace,
        *,
        max_ack_delay: float = DEFAULT_MAX_ACK_DELAY,
        max_ack_ranges: int = MAX_ACK_RANGES,
        report_ecn: bool = False,
        ack_delay_exponent: int = 3,
    ) -> None:
        self.space = space
        self.ack_delay_exponent = ack_delay_exponent
        """Our ack_delay_exponent transport parameter: the unit of the ACK Delay field (RFC 9000 §18.2)."""
        self.max_ack_delay = max_ack_delay
        self.max_ack_ranges = max(1, max_ack_ranges)
        self.report_ecn = report_ecn
        self.ecn_counts: tuple[int, int, int] = (0, 0, 0)
        """ECT(0), ECT(1), ECN-CE counts; carried in ACK_ECN when ``report_ecn`` (not measured yet)."""
        self.largest_received: int | None = None
        """The largest packet number processed in this space (kept even after pruning)."""
        self._received = RangeSet()
        self._floor = 0  # packet numbers below this were pruned and count as duplicates
        self._largest_received_at = 0.0
        self._largest_ack_eliciting: int | None = None
        self._unacked_eliciting = 0
        self._unacked_flow = 0  # of those, packets without a PING (data, not a peer's keep-alive)
        self._pending = False
        self._immediate = False
        self._deadline: float | None = None
        self._resend = False  # the latest ACK of ack-eliciting packets was lost: send a new one now
        self._last_sent_largest: int | None = None
        self._largest_reported = -1  # the largest packet number of the last ACK sent
        self.ack_eliciting_threshold = ACK_ELICITING_THRESHOLD - 1
        """Ack-eliciting packets received without an ACK before one is due at once: 1 (RFC 9000
        §13.2.2), or what the peer asked (draft-ietf-quic-ack-frequency §4)."""
        self.reordering_threshold = 1
        """Out-of-order distance that makes an ACK due at once: 1 is RFC 9000 §13.2.1's behaviour, 0
        ignores reordering (draft-ietf-quic-ack-frequency §6.2)."""

    # -- receiving ------------------------------------------------------------------------------------

    def is_duplicate(self, packet_number: int) -> bool:
        """True if ``packet_number`` was already processed (or is too old to be tracked)."""
        largest = self.largest_received
        if largest is None or packet_number > largest:
            return False  # (in order, the usual case: the floor is never above largest + 1)
        return packet_number < self._floor or packet_number in self._received

    def on_packet_received(
        self,
        packet_number: int,
        *,
        ack_eliciting: bool,
        now: float,
        immediate: bool = False,
        flow: bool | None = None,
    ) -> None:
        """Record a processed packet and update the ACK timer.

        ``immediate`` asks for an ACK without delay (the caller passes it for packets carrying a PING or
        an IMMEDIATE_ACK: a peer probing or measuring the round trip wants the answer now). ``flow``:
        the packet is part of the peer's flow (data, or a PMTU probe), not a lone keep-alive PING
        (default: not ``immediate``; see :attr:`answers_flow`).
        Duplicates are ignored (the caller should have dropped them with :meth:`is_duplicate`).
        """
        if ack_eliciting and not immediate and flow is not False:
            self.on_data_packets(packet_number, packet_number, now, False)  # (data: part of the flow)
        else:
            self._record(packet_number, ack_eliciting, now, immediate, flow)

    def on_data_packet(self, packet_number: int, now: float, immediate: bool) -> None:
        """:meth:`on_packet_received` for a packet of the peer's flow that elicits an ACK (one with
        data: ``ack_eliciting`` and ``flow``), with positional arguments: the receive fast path's
        usual packet."""
        self.on_data_packets(packet_number, packet_number, now, immediate)

    def on_data_packets(self, first: int, last: int, now: float, immediate: bool) -> None:
        """:meth:`on_data_packet` for each of the consecutive packets ``first..last`` in turn, all
        received at ``now`` (a run of a receive batch)."""
        largest_received = self.largest_received
        if (
            not immediate
            and (
                largest_received is None  # (the first packet of the space: nothing to be out of order with)
                or (first == largest_received + 1 and self._largest_ack_eliciting == largest_received)
            )
            and self.reordering_threshold <= 1
            and self.in_order_fast_path
        ):
            # The common case of a transfer, in one pass: the next data packets in order (or the first
            # ones). They extend the newest range, or make the only one (no new range past the first:
            # the memory bound holds), and open no gap (RFC 9000 §13.2.1); what follows is the general
            # path's bookkeeping for such packets.
            self._received.add(first, last + 1)
            self.largest_received = self._largest_ack_eliciting = last
            self._largest_received_at = now
            self._pending = True
            count = last - first + 1
            self._unacked_eliciting += count
            self._unacked_flow += count
            if self._unacked_eliciting > self.ack_eliciting_threshold or self.space != _APPLICATION:
                self._immediate = True  # RFC 9000 §13.2.1, §13.2.2 (see _record)
            deadline = self._deadline
            if deadline is None:
                self._deadline = deadline = now + self.max_ack_delay
            if self._immediate and now < deadline:
                self._deadline = now
        elif first == last:
            self._record(first, True, now, immediate, True)
        else:
            for packet_number in range(first, last + 1):
                self._record(packet_number, True, now, immediate, True)

    def _record(
        self, packet_number: int, ack_eliciting: bool, now: float, immediate: bool, flow: bool | None
    ) -> None:
        # on_packet_received's general case: any packet, in any order.
        largest_received = self.largest_received
        in_order = largest_received is None or packet_number > largest_received
        if not in_order and self.is_duplicate(packet_number):
            return
        largest_eliciting = self._largest_ack_eliciting
        if (
            ack_eliciting
            and self.reordering_threshold == 1
            and largest_eliciting is not None
            and packet_number != largest_eliciting + 1  # in order: the common case
            and self._out_of_order(packet_number)
        ):
            self._immediate = True
        if ack_eliciting and (largest_eliciting is None or packet_number > largest_eliciting):
            self._largest_ack_eliciting = packet_number
        self._received.add(packet_number)
        if in_order:
            self.largest_received = packet_number
            self._largest_received_at = now
        if ack_eliciting and self.reordering_threshold > 1 and self._missing_beyond_threshold():
            self._immediate = True
        if largest_received is not None and (not in_order or packet_number != largest_received + 1):
            self._bound_memory()  # only a new range can pass the bound (never the first one)
        self._pending = True
        if not ack_eliciting:
            return
        self._unacked_eliciting += 1
        if (not immediate) if flow is None else flow:
            self._unacked_flow += 1
        if immediate or self.space != _APPLICATION or self._unacked_eliciting > self.ack_eliciting_threshold:
            # RFC 9000 §13.2.1: Initial/Handshake immediately; §13.2.2: every second ack-eliciting packet,
            # or every (threshold + 1)th as the peer asked (draft-ietf-quic-ack-frequency §6.1).
            self._immediate = True
        if self._deadline is None:
            self._deadline = now + self.max_ack_delay
        if self._immediate and now < self._deadline:
            self._deadline = now

    def _out_of_order(self, packet_number: int) -> bool:
        """RFC 9000 §13.2.1: an ack-eliciting packet (not recorded yet) that arrives out of order, or
        opens a gap above the largest ack-eliciting packet so far, is acknowledged at once."""
        largest = self._largest_ack_eliciting
        if largest is None or packet_number == largest + 1:
            return False
        return packet_number < largest or not self._covers(largest, packet_number)

    def _missing_beyond_threshold(self) -> bool:
        """draft-ietf-quic-ack-frequency §6.2 (reordering threshold above 1): a packet not reported in
        an ACK yet is missing at least ``reordering_threshold`` below the largest received."""
        top = (self.largest_received or 0) - self.reordering_threshold
        low = max(self._largest_reported + 1, self._floor)
        return top >= low and not self._received.covers(low, top + 1)

    def configure(self, *, threshold: int, max_ack_delay: float, reordering_threshold: int) -> None:
        """Acknowledge as the peer asked in an ACK_FREQUENCY frame (draft-ietf-quic-ack-frequency §4):
        after more than ``threshold`` ack-eliciting packets, within ``max_ack_delay`` seconds, and at
        once when reordering reaches ``reordering_threshold``."""
        self.ack_eliciting_threshold = threshold
        self.max_ack_delay = max_ack_delay
        self.reordering_threshold = reordering_threshold
        if self._unacked_eliciting > threshold:
            self._immediate = True

    def _covers(self, low: int, high: int) -> bool:
        # True if every packet number strictly between low and high was received (no gap). Numbers
        # below the floor were received and trimmed once the peer saw them acknowledged (on_ack_acked):
        # they are no gap (else every packet after such a trim looked out of order and was ACKed at
        # once, with a PING when nothing else was in flight: two extra datagrams per request).
        return self._received.covers(max(low + 1, self._floor), high)

    def _bound_memory(self) -> None:
        while len(self._received) > MAX_TRACKED_RANGES:
            _, stop = self._received.shift()
            self._floor = max(self._floor, stop)

    # -- deciding ---------------------------------------------------------------------------------------

    @property
    def ack_pending(self) -> bool:
        """True if packets arrived since the last ACK was sent (worth piggybacking an ACK)."""
        return self._pending

    def ack_needed(self, now: float) -> bool:
        """True if an ACK must be sent now, even in an ACK-only packet.

        That is: an ack-eliciting packet is unacknowledged and either an immediate-ack condition
        holds or the ack delay has expired. Never true for non-ack-eliciting packets alone
        (RFC 9000 §13.2.1 forbids answering them with ACK-only packets).
        """
        if self._resend:
            return True
        if self._unacked_eliciting == 0 or self._deadline is None:
            return False
        return self._immediate or now >= self._deadline

    @property
    def eliciting_unacknowledged(self) -> int:
        """Ack-eliciting packets received since the last ACK was sent (what the next ACK answers)."""
        return self._unacked_eliciting

    @property
    def answers_flow(self) -> bool:
        """True if the next ACK answers a flow: two ack-eliciting packets or more, or one without a
        PING (data) or a padded one (a PMTU probe), or it replaces a lost ACK or PING. A lone PING (a
        peer's keep-alive, or its §13.2.4 PING) is not a flow."""
        return self._resend or self._unacked_eliciting >= ACK_ELICITING_THRESHOLD or self._unacked_flow > 0

    def ack_deadline(self) -> float | None:
        """When the delayed-ACK timer fires (already past when an immediate ACK is due), or None."""
        if self._unacked_eliciting == 0:
            return None
        return self._deadline

    # -- sending ----------------------------------------------------------------------------------------

    def build_ack(self, now: float, ack_delay_exponent: int) -> Ack | None:
        """The ACK frame to send now, or None if nothing was received (or everything was pruned).

        Holds at most ``max_ack_ranges`` ranges, newest first; ``ack_delay`` is the time since the
        largest packet arrived in units of ``2**ack_delay_exponent`` microseconds (RFC 9000 §19.3).
        """
        ranges = self._received.newest_inclusive(self.max_ack_ranges)
        if not ranges:
            return None
        delay_us = round((now - self._largest_received_at) * 1_000_000)
        if delay_us < 0:  # (comparisons, not max(): one builtin call less each)
            delay_us = 0
        # (Positional: a frozen dataclass built by keyword costs twice as much.)
        return Ack(ranges, delay_us >> ack_delay_exponent, self.ecn_counts if self.report_ecn else None)

    def take_encoded_ack(self, now: float) -> tuple[bytes, int, DeliveryHandler] | None:
        """The ACK frame :meth:`write_frames` would write now, encoded (RFC 9000 §19.3: ACK_ECN with
        the counts when ``report_ecn``), with its largest acknowledged and its delivery handler, for a
        packet builder that needs no frame object (:mod:`rudp.quic.ack_only`); the ACK then counts as
        sent, as after :meth:`write_frames`. None, with nothing changed, if nothing is left to
        acknowledge. Same fields as :meth:`build_ack`: at most ``max_ack_ranges`` ranges, newest first,
        the delay since the largest arrived in units of ``2**ack_delay_exponent`` microseconds."""
        received = self._received
        count = len(received)
        if not count:
            return None
        start, stop = received[count - 1]
        largest = stop - 1
        delay_us = round((now - self._largest_received_at) * 1_000_000)
        if delay_us < 0:  # (comparisons, not max(): one builtin call less each)
            delay_us = 0
        last = count - self.max_ack_ranges  # the oldest range reported
        if last < 0:
            last = 0
        # Largest Acknowledged, ACK Delay, ACK Range Count, First ACK Range, then per older range Gap
        # and ACK Range Length (RFC 9000 §19.3.1: both count one less than the numbers they span).
        report_ecn = self.report_ecn
        delay = delay_us >> self.ack_delay_exponent
        fields: tuple[int, ...] = (largest, delay, count - 1 - last, largest - start)
        if count > 1:
            older: list[int] = []
            smallest = start
            for index in range(count - 2, last - 1, -1):
                low, high = received[index]
                older += (smallest - high - 1, high - 1 - low)
                smallest = low
            fields += tuple(older)
        if report_ecn:
            fields += self.ecn_counts  # RFC 9000 §19.3.2: ECT(0), ECT(1), ECN-CE
        encoded = bytearray(b"\x03" if report_ecn else b"\x02")
        append = encoded.append
        for value in fields:  # RFC 9000 §16: shortest varints (every field is below 2**62)
            if value <= 0x3F:
                append(value)
            elif value <= 0x3FFF:
                encoded += (0x4000 | value).to_bytes(2, "big")
            elif value <= 0x3FFFFFFF:
                encoded += (0x80000000 | value).to_bytes(4, "big")
            else:
                encoded += (0xC000000000000000 | value).to_bytes(8, "big")
        self._last_sent_largest = largest
        self.on_ack_sent(now)
        return bytes(encoded), largest, partial(self._on_ack_delivery, largest)

    def report_ecn_counts(self, counts: tuple[int, int, int]) -> None:
        """The ECT(0), ECT(1) and CE counts the next ACK_ECN carries (RFC 9000 §13.4.1, §19.3.2)."""
        self.ecn_counts = counts

    def has_data(self) -> bool:
        """True if an ACK is worth piggybacking (the packetizer's ``FrameSource`` question)."""
        return self._pending

    def write_frames(self, sink: PacketSink) -> None:
        """Write the ACK frame of this space into the packet being built."""
        now = sink.now
        ack = self.build_ack(now, self.ack_delay_exponent)
        if ack is not None:
            largest = ack.ranges[0][1]  # (Ack.largest without the property's call)
            sink.push_frame(ack, partial(self._on_ack_delivery, largest))
            self._last_sent_largest = largest
            self.on_ack_sent(now)

    def _on_ack_delivery(self, largest: int, acked: bool) -> None:
        """Our ACK up to ``largest`` was delivered or lost. RFC 9000 §13.2.1: ack-eliciting packets are
        acknowledged at least once; ACK frames are not retransmitted as such (§13.3), so when the
        newest ACK sent, the one that acknowledged ack-eliciting packets the peer has not seen
        acknowledged yet, is lost, a new ACK (with the current ranges) goes out at once. Otherwise a
        receiver with nothing else to send leaves the sender waiting for its PTO, and a sender at a
        small congestion window stalls for it. Only a loss, which only an ACK from the peer reveals,
        triggers this: it cannot feed a loop of ACK-only packets."""
        if acked or self._last_sent_largest is None or largest < self._last_sent_largest:
            return
        eliciting = self._largest_ack_eliciting
        if eliciting is not None and self._floor <= eliciting <= largest:
            self._resend = True
            self._pending = True

    def on_keepalive_delivery(self, acked: bool) -> None:
        """The PING of a packet that had nothing else to elicit an ACK (a PTO probe's, or the one an
        ACK-only packet carries, RFC 9000 §13.2.4, ``Sender.ack_only_needs_ping``) was delivered or
        lost. Lost, it is replaced at once by an ACK, with a PING again if nothing of ours is in
        flight: otherwise a receiver whose packets after a NAT rebinding were all lost is left with
        nothing in flight, so no PTO, and never speaks from its new address again."""
        if not acked:
            self._resend = True
            self._pending = True

    def on_probe(self) -> None:
        """A PTO probe is about to be sent in this space (RFC 9002 §6.2.4): it carries an ACK frame
        when there are acknowledgments the peer has not confirmed, so a lost ACK (the likely reason a
        receiver's PTO fired at all) is repaired by the probe, not by the peer's own PTO."""
        if self._received:
            self._pending = True

    def on_ack_sent(self, now: float) -> None:
        """An ACK built by :meth:`build_ack` was sent: clear the pending state and the timer."""
        self._pending = False
        self._resend = False
        self._unacked_eliciting = 0
        self._unacked_flow = 0
        self._immediate = False
        self._deadline = None
        if self.largest_received is not None:
            self._largest_reported = self.largest_received

    def on_ack_acked(self, largest_acked_in_ack: int) -> None:
        """A packet carrying our ACK up to ``largest_acked_in_ack`` was acknowledged by the peer.

        The peer has seen those acknowledgments, so stop reporting packet numbers at or below it
        (RFC 9000 §13.2.4); later packets with such numbers are treated as duplicates.
        """
        floor = largest_acked_in_ack + 1
        if floor <= self._floor:
            return
        self._floor = floor
        self._received.trim_below(floor)
