"""Packet number spaces (RFC 9000 §12.3): the one level/space/packet-type table, and the state of each.

Owns :data:`LEVELS` (the only mapping between encryption level, packet number space and packet type),
:class:`PacketNumberSpace` (one space's keys, next packet number and the numbers skipped on purpose, its
ACK tracker, its CRYPTO streams in both directions and the PTO probes it owes), :class:`PacketSpaces`
(the spaces still in use: discarding a level drops its space, keys included, RFC 9001 §4.9) and
:class:`AckTracker`: duplicate detection, the received ranges, the ACK timer (RFC 9000 §13.2), building
ACK frames and ACK-of-ACK pruning (RFC 9000 §13.2.4). The Application space holds two levels' keys:
0-RTT (:attr:`PacketNumberSpace.keys`) and 1-RTT with its key phases (:attr:`PacketNumberSpace.phase`,
RFC 9001 §6). It does not own the send side of the space (:mod:`rudp.quic.recovery`: packets in
flight, largest acknowledged, PTO).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Final

from rudp.codec.codes import PacketType
from rudp.codec.frames import Ack, AckRange
from rudp.crypto.protection import PacketProtection
from rudp.crypto.suites import CipherSuite
from rudp.quic.crypto_streams import CryptoReceiveBuffer, CryptoSendBuffer
from rudp.quic.delivery import PacketSink
from rudp.quic.keys import KeyPair, KeyPhase
from rudp.quic.rangeset import RangeSet
from rudp.quic.sent import PacketSpace
from rudp.tls.engine import EncryptionLevel

# -- the one table: encryption level <-> packet number space <-> packet type (RFC 9000 §12.3, §17;
# RFC 9001 §4). Every other mapping in rudp.quic is derived from it.
LEVELS: Final[tuple[tuple[EncryptionLevel, PacketSpace, PacketType], ...]] = (
    (EncryptionLevel.INITIAL, PacketSpace.INITIAL, PacketType.INITIAL),
    (EncryptionLevel.HANDSHAKE, PacketSpace.HANDSHAKE, PacketType.HANDSHAKE),
    (EncryptionLevel.EARLY_DATA, PacketSpace.APPLICATION, PacketType.ZERO_RTT),
    (EncryptionLevel.APPLICATION, PacketSpace.APPLICATION, PacketType.ONE_RTT),
)
"""(level, space, packet type), in the order levels are written into a datagram (RFC 9000 §12.2)."""
SEND_ORDER: Final[tuple[EncryptionLevel, ...]] = tuple(level for level, _, _ in LEVELS)
SPACE_OF_LEVEL: Final[dict[EncryptionLevel, PacketSpace]] = {level: space for level, space, _ in LEVELS}
LEVEL_OF_TYPE: Final[dict[PacketType, EncryptionLevel]] = {kind: level for level, _, kind in LEVELS}
TYPE_OF_LEVEL: Final[dict[EncryptionLevel, PacketType]] = {level: kind for level, _, kind in LEVELS}
CRYPTO_LEVEL_OF_SPACE: Final[dict[PacketSpace, EncryptionLevel]] = {
    space: level for level, space, _ in LEVELS if level != EncryptionLevel.EARLY_DATA
}
"""The level whose CRYPTO stream and keys a space uses (0-RTT has no CRYPTO stream, RFC 9001 §4.1.4)."""
CRYPTO_LEVELS: Final[tuple[EncryptionLevel, ...]] = tuple(CRYPTO_LEVEL_OF_SPACE.values())

DEFAULT_MAX_ACK_DELAY: Final = 0.025
"""Our max_ack_delay when none is configured (RFC 9000 §18.2 default, 25 ms)."""

MAX_ACK_RANGES: Final = 32
"""Ranges written into one ACK frame, newest first (older ones are omitted; RFC 9000 §13.2.3)."""

MAX_TRACKED_RANGES: Final = 128
"""Ranges remembered at most; beyond that the oldest are forgotten and treated as duplicates."""

ACK_ELICITING_THRESHOLD: Final = 2
"""Acknowledge after this many ack-eliciting packets without waiting (RFC 9000 §13.2.2)."""

SKIP_MIN_DISTANCE: Final = 256
SKIP_SPREAD: Final = 768
"""A packet number is skipped every 256-1024 packets (random) to detect optimistic ACKs."""
SKIPPED_REMEMBERED: Final = 16
"""Skipped packet numbers remembered (the most recent ones)."""


class PacketNumberSpace:
    """The state of one packet number space that lives and dies with its keys (RFC 9001 §4.9).

    The send side of the space (packets in flight) belongs to loss recovery, which forgets it at the
    same moment (RFC 9002 §6.4).
    """

    __slots__ = (
        "_next_skip",
        "_randbytes",
        "ack",
        "crypto_recv",
        "crypto_send",
        "id",
        "keys",
        "next_pn",
        "phase",
        "probes",
        "skipped",
    )

    def __init__(
        self,
        space: PacketSpace,
        randbytes: Callable[[int], bytes],
        *,
        max_ack_delay: float = DEFAULT_MAX_ACK_DELAY,
        skip_numbers: bool = False,
        ack_delay_exponent: int = 3,
    ) -> None:
        self.id = space
        self.keys = KeyPair()
        """The level's keys (Initial, Handshake; 0-RTT in the Application space)."""
        self.phase: KeyPhase | None = KeyPhase() if space is PacketSpace.APPLICATION else None
        """The 1-RTT keys and key phase (Application space only, RFC 9001 §6)."""
        # ACK_ECN frames carry the ECN counts (all zero: rudp does not read ECN marks yet), so a peer that
        # marks ECT sees them not grow and turns ECN off, as RFC 9000 §13.4.2.1 validates.
        self.ack = AckTracker(
            space, max_ack_delay=max_ack_delay, report_ecn=True, ack_delay_exponent=ack_delay_exponent
        )
        self.crypto_send = CryptoSendBuffer()
        self.crypto_recv = CryptoReceiveBuffer()
        self.next_pn = 0
        """The number the next packet of this space carries."""
        self.probes = 0
        """Ack-eliciting probe packets owed after a PTO (RFC 9002 §6.2.4)."""
        self.skipped: deque[int] = deque(maxlen=SKIPPED_REMEMBERED)
        """Packet numbers deliberately never sent (RFC 9000 §21.4), most recent last."""
        self._randbytes = randbytes
        self._next_skip = 64 + randbytes(1)[0] if skip_numbers else None

    def advance(self) -> None:
        """Move past the packet number just used; now and then skip one (RFC 9000 §21.4).

        A peer acknowledging a number never sent is lying about what it received (optimistic ACK,
        inflating our congestion window): :meth:`never_sent_in` lets the receive path notice.
        """
        number = self.next_pn + 1
        if self._next_skip is not None and number >= self._next_skip:
            self.skipped.append(number)
            number += 1
            gap = int.from_bytes(self._randbytes(2), "big") % SKIP_SPREAD
            self._next_skip = number + SKIP_MIN_DISTANCE + gap
        self.next_pn = number

    def never_sent_in(self, ranges: tuple[AckRange, ...]) -> int | None:
        """A skipped packet number that ``ranges`` acknowledge, if any."""
        for number in self.skipped:
            if any(low <= number <= high for low, high in ranges):
                return number
        return None

    def owe_probes(self, count: int) -> None:
        """The PTO fired: send ``count`` ack-eliciting probe packets in this space (RFC 9002 §6.2.4)."""
        self.probes = count

    def use_keys(self, keys: KeyPair) -> None:
        """Both directions' keys at once (the Initial keys, again after a Retry, RFC 9001 §5.2)."""
        self.keys = keys

    def install_keys(self, protection: PacketProtection, *, read: bool) -> None:
        """A secret of this space's level arrived from TLS for one direction (RFC 9001 §4.1.4)."""
        if read:
            self.keys = KeyPair(protection, self.keys.write)
        else:
            self.keys = KeyPair(self.keys.read, protection)

    def take_probe(self) -> bool:
        """Use up one owed probe; True if there was one."""
        if self.probes <= 0:
            return False
        self.probes -= 1
        return True


class PacketSpaces:
    """The packet number spaces whose keys are still in use, each holding its keys (RFC 9001 §4.9)."""

    __slots__ = ("_spaces", "phase", "version")

    def __init__(
        self,
        version: int,
        randbytes: Callable[[int], bytes],
        *,
        max_ack_delay: float,
        ack_delay_exponent: int,
    ) -> None:
        self.version = version
        exponent = ack_delay_exponent
        application = PacketNumberSpace(
            PacketSpace.APPLICATION,
            randbytes,
            max_ack_delay=max_ack_delay,
            skip_numbers=True,
            ack_delay_exponent=exponent,
        )
        self.phase: KeyPhase = application.phase or KeyPhase()
        """The 1-RTT keys and key phase of the Application space (RFC 9001 §6)."""
        self._spaces: dict[PacketSpace, PacketNumberSpace] = {
            PacketSpace.INITIAL: PacketNumberSpace(
                PacketSpace.INITIAL, randbytes, ack_delay_exponent=exponent
            ),
            PacketSpace.HANDSHAKE: PacketNumberSpace(
                PacketSpace.HANDSHAKE, randbytes, ack_delay_exponent=exponent
            ),
            PacketSpace.APPLICATION: application,
        }

    def __iter__(self) -> Iterator[PacketNumberSpace]:
        return iter(list(self._spaces.values()))

    def __contains__(self, space: PacketSpace) -> bool:
        return space in self._spaces

    def __getitem__(self, space: PacketSpace) -> PacketNumberSpace:
        return self._spaces[space]

    def get(self, space: PacketSpace) -> PacketNumberSpace | None:
        """The space, or None once discarded."""
        return self._spaces.get(space)

    def values(self) -> list[PacketNumberSpace]:
        """The spaces in use, Initial first."""
        return list(self._spaces.values())

    @property
    def application(self) -> PacketNumberSpace:
        """The Application space (never discarded)."""
        return self._spaces[PacketSpace.APPLICATION]

    # -- keys (RFC 9001 §4, §5) -------------------------------------------------------------------------

    def _pair(self, level: EncryptionLevel) -> KeyPair | None:
        space = self._spaces.get(SPACE_OF_LEVEL[level])
        return None if space is None else space.keys

    def read_keys(self, level: EncryptionLevel) -> PacketProtection | None:
        """The keys that open packets of ``level`` (the current 1-RTT generation), or None."""
        if level == EncryptionLevel.APPLICATION:
            return self.phase.read
        pair = self._pair(level)
        return None if pair is None else pair.read

    def write_keys(self, level: EncryptionLevel) -> PacketProtection | None:
        """The keys that protect packets of ``level`` (the current 1-RTT generation), or None."""
        if level == EncryptionLevel.APPLICATION:
            return self.phase.write
        pair = self._pair(level)
        return None if pair is None else pair.write

    def one_rtt_only(self) -> bool:
        """True once only 1-RTT keys are left for writing (the steady state after the handshake)."""
        spaces = self._spaces
        return (
            PacketSpace.INITIAL not in spaces
            and PacketSpace.HANDSHAKE not in spaces
            and self.phase.write is not None
            and self.application.keys.write is None
        )

    def install_initial(self, dcid: bytes, *, is_client: bool) -> None:
        """Initial keys from the client's first Destination CID (RFC 9001 §5.2; again after a Retry)."""
        space = self._spaces.get(PacketSpace.INITIAL)
        if space is not None:
            space.use_keys(KeyPair.initial(dcid, self.version, is_client=is_client))

    def install(self, level: EncryptionLevel, *, read: bool, suite: CipherSuite, secret: bytes) -> None:
        """Install a secret from TLS for ``level`` in one direction (ignored for a discarded level)."""
        protection = PacketProtection(suite, secret, self.version)
        if level == EncryptionLevel.APPLICATION:
            self.phase.install(protection, read=read)
            return
        space = self._spaces.get(SPACE_OF_LEVEL[level])
        if space is not None:
            space.install_keys(protection, read=read)

    def discard(self, space: PacketSpace) -> bool:
        """Drop a space with its keys, ACK tracker, CRYPTO streams and probes (RFC 9001 §4.9); False if
        it was gone already. The Application space is never discarded."""
        if space is PacketSpace.APPLICATION:
            return False
        return self._spaces.pop(space, None) is not None


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
        self._pending = False
        self._immediate = False
        self._deadline: float | None = None

    # -- receiving ------------------------------------------------------------------------------------

    def is_duplicate(self, packet_number: int) -> bool:
        """True if ``packet_number`` was already processed (or is too old to be tracked)."""
        return packet_number < self._floor or packet_number in self._received

    def on_packet_received(
        self, packet_number: int, *, ack_eliciting: bool, now: float, immediate: bool = False
    ) -> None:
        """Record a processed packet and update the ACK timer.

        ``immediate`` asks for an ACK without delay (the caller passes it for packets carrying a PING:
        a peer probing or measuring the round trip wants the answer now).
        Duplicates are ignored (the caller should have dropped them with :meth:`is_duplicate`).
        """
        if self.is_duplicate(packet_number):
            return
        if ack_eliciting:
            largest = self._largest_ack_eliciting
            # RFC 9000 §13.2.1: acknowledge at once when the packet arrives out of order, or opens a
            # gap above the largest ack-eliciting packet so far.
            if largest is not None and (
                packet_number < largest
                or (packet_number > largest + 1 and not self._covers(largest, packet_number))
            ):
                self._immediate = True
            if largest is None or packet_number > largest:
                self._largest_ack_eliciting = packet_number
        self._received.add(packet_number)
        if self.largest_received is None or packet_number > self.largest_received:
            self.largest_received = packet_number
            self._largest_received_at = now
        self._pending = True
        self._bound_memory()
        if not ack_eliciting:
            return
        self._unacked_eliciting += 1
        if (
            immediate
            or self.space != PacketSpace.APPLICATION
            or self._unacked_eliciting >= ACK_ELICITING_THRESHOLD
        ):
            # RFC 9000 §13.2.1: Initial/Handshake immediately; §13.2.2: every second ack-eliciting packet.
            self._immediate = True
        if self._deadline is None:
            self._deadline = now + self.max_ack_delay
        if self._immediate:
            self._deadline = min(self._deadline, now)

    def _covers(self, low: int, high: int) -> bool:
        # True if every packet number strictly between low and high was received (no gap).
        return self._received.covers(low + 1, high)

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
        if self._unacked_eliciting == 0 or self._deadline is None:
            return False
        return self._immediate or now >= self._deadline

    @property
    def eliciting_unacknowledged(self) -> int:
        """Ack-eliciting packets received since the last ACK was sent (what the next ACK answers)."""
        return self._unacked_eliciting

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
        if not self._received:
            return None
        ranges: list[AckRange] = []
        for index in range(len(self._received) - 1, -1, -1):
            start, stop = self._received[index]
            ranges.append((start, stop - 1))
            if len(ranges) >= self.max_ack_ranges:
                break
        delay_us = max(0, round((now - self._largest_received_at) * 1_000_000))
        ecn = self.ecn_counts if self.report_ecn else None
        return Ack(ranges=tuple(ranges), ack_delay=delay_us >> ack_delay_exponent, ecn=ecn)

    def report_ecn_counts(self, counts: tuple[int, int, int]) -> None:
        """The ECT(0), ECT(1) and CE counts the next ACK_ECN carries (RFC 9000 §13.4.1, §19.3.2)."""
        self.ecn_counts = counts

    def has_data(self) -> bool:
        """True if an ACK is worth piggybacking (the packetizer's ``FrameSource`` question)."""
        return self._pending

    def write_frames(self, sink: PacketSink) -> None:
        """Write the ACK frame of this space into the packet being built."""
        ack = self.build_ack(sink.now, self.ack_delay_exponent)
        if ack is not None:
            sink.push_frame(ack)
            self.on_ack_sent(sink.now)

    def on_ack_sent(self, now: float) -> None:
        """An ACK built by :meth:`build_ack` was sent: clear the pending state and the timer."""
        self._pending = False
        self._unacked_eliciting = 0
        self._immediate = False
        self._deadline = None

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
