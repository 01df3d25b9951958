"""Packet number spaces (RFC 9000 §12.3): the one level/space/packet-type table, and the state of each.

Owns :data:`LEVELS` (the only mapping between encryption level, packet number space and packet type),
:class:`PacketNumberSpace` (one space's keys, next packet number and the numbers skipped on purpose, its
ACK tracker (:mod:`rudp.quic.acks`), its CRYPTO streams in both directions and the PTO probes it owes)
and :class:`PacketSpaces` (the spaces still in use: discarding a level drops its space, keys included,
RFC 9001 §4.9). The Application space holds two levels' keys:
0-RTT (:attr:`PacketNumberSpace.keys`) and 1-RTT with its key phases (:attr:`PacketNumberSpace.phase`,
RFC 9001 §6). It does not own the send side of the space (:mod:`rudp.quic.recovery`: packets in
flight, largest acknowledged, PTO).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Final

from rudp.codec.codes import PacketType
from rudp.codec.frames import AckRange
from rudp.crypto.keys import INITIAL_SUITE
from rudp.crypto.protection import PacketProtection
from rudp.crypto.suites import AEAD_LIMITS, CipherSuite
from rudp.quic.acks import DEFAULT_MAX_ACK_DELAY, AckTracker
from rudp.quic.crypto_streams import CryptoReceiveBuffer, CryptoSendBuffer
from rudp.quic.key_limits import KeyUsage
from rudp.quic.keys import KeyPair, KeyPhase
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


# Enum members bound once (read on every flush): in Python 3.11 the enum metaclass's __getattr__
# makes each ``PacketSpace.X`` lookup cost about four global loads.
_INITIAL, _HANDSHAKE, _APPLICATION = PacketSpace.INITIAL, PacketSpace.HANDSHAKE, PacketSpace.APPLICATION
_APPLICATION_LEVEL = EncryptionLevel.APPLICATION

SKIP_MIN_DISTANCE: Final = 256
SKIP_SPREAD: Final = 768
"""A packet number is skipped every 256-1024 packets (random) to detect optimistic ACKs."""
SKIPPED_REMEMBERED: Final = 16
"""Skipped packet numbers remembered (the most recent ones)."""
_NO_SKIPS: Final[deque[int]] = deque(maxlen=0)
"""The skipped numbers of a space that skipped none yet: shared, as it can hold nothing (maxlen 0)."""
_NO_KEYS: Final = KeyPair()
"""The keys of a space before any are installed (shared: :class:`KeyPair` objects are replaced, never
changed)."""


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
        phase: KeyPhase | None = None,
    ) -> None:
        self.id = space
        self.keys = _NO_KEYS
        """The level's keys (Initial, Handshake; 0-RTT in the Application space); a pair is never
        changed in place (installing a key makes a new one), so every space starts with one shared."""
        self.phase = phase
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
        self.skipped: deque[int] = _NO_SKIPS
        """Packet numbers deliberately never sent (RFC 9000 §21.4), most recent last: the shared empty
        record until the first skip (64 to 319 packets in), then the space's own, bounded."""
        self._randbytes = randbytes
        self._next_skip = 64 + randbytes(1)[0] if skip_numbers else None

    def advance(self) -> None:
        """Move past the packet number just used; now and then skip one (RFC 9000 §21.4).

        A peer acknowledging a number never sent is lying about what it received (optimistic ACK,
        inflating our congestion window): :meth:`never_sent_in` lets the receive path notice.
        """
        number = self.next_pn + 1
        if self._next_skip is not None and number >= self._next_skip:
            skipped = self.skipped
            if skipped is _NO_SKIPS:  # (the first skip: most handshakes never get this far)
                skipped = self.skipped = deque(maxlen=SKIPPED_REMEMBERED)
            skipped.append(number)
            number += 1
            gap = int.from_bytes(self._randbytes(2), "big") % SKIP_SPREAD
            self._next_skip = number + SKIP_MIN_DISTANCE + gap
        self.next_pn = number

    def take_numbers(self, count: int) -> list[int]:
        """The next ``count`` packet numbers, used at once (a packet train's run): :attr:`next_pn` and
        :meth:`advance` ``count`` times, skips included (RFC 9000 §21.4)."""
        start = self.next_pn
        skip = self._next_skip
        if skip is None or start + count < skip:  # (the usual run: no skip falls inside it)
            self.next_pn = start + count
            return list(range(start, start + count))
        numbers = []
        for _ in range(count):
            numbers.append(self.next_pn)
            self.advance()
        return numbers

    def never_sent_in(self, ranges: tuple[AckRange, ...]) -> int | None:
        """A skipped packet number that ``ranges`` acknowledge, if any."""
        lowest, highest = ranges[-1][0], ranges[0][1]  # (ranges descend)
        for number in self.skipped:  # plain loops: asked for every ACK, usually of a few numbers
            if lowest <= number <= highest:  # (most are older than what an ACK covers)
                for low, high in ranges:
                    if low <= number <= high:
                        return number
        return None

    def owe_probes(self, count: int) -> None:
        """The PTO fired: send ``count`` ack-eliciting probe packets in this space (RFC 9002 §6.2.4)."""
        self.probes = count

    def use_keys(self, keys: KeyPair) -> None:
        """Both directions' keys at once (the Initial keys, again after a Retry, RFC 9001 §5.2)."""
        self.keys = keys

    def take_probe(self) -> bool:
        """Use up one owed probe; True if there was one."""
        if self.probes <= 0:
            return False
        self.probes -= 1
        return True


class PacketSpaces:
    """The packet number spaces whose keys are still in use, each holding its keys (RFC 9001 §4.9)."""

    __slots__ = ("_spaces", "_suite", "application", "phase", "usage", "version")

    def __init__(
        self,
        version: int,
        randbytes: Callable[[int], bytes],
        *,
        max_ack_delay: float,
        ack_delay_exponent: int,
        usage: KeyUsage | None = None,
    ) -> None:
        self.version = version
        self.usage = usage if usage is not None else KeyUsage()
        """AEAD usage across every level's keys: limits, forged packets, automatic updates (RFC 9001 §6.6)."""
        exponent = ack_delay_exponent
        self.phase = KeyPhase(self.usage)
        """The 1-RTT keys and key phase of the Application space (RFC 9001 §6)."""
        application = PacketNumberSpace(
            _APPLICATION,
            randbytes,
            max_ack_delay=max_ack_delay,
            skip_numbers=True,
            ack_delay_exponent=exponent,
            phase=self.phase,
        )
        self._spaces: dict[PacketSpace, PacketNumberSpace] = {
            _INITIAL: PacketNumberSpace(_INITIAL, randbytes, ack_delay_exponent=exponent),
            _HANDSHAKE: PacketNumberSpace(_HANDSHAKE, randbytes, ack_delay_exponent=exponent),
            _APPLICATION: application,
        }
        self.application = application
        """The Application space (never discarded: a plain attribute, read for every datagram)."""
        # The last suite the usage was told of: a usage holding the Initial suite's limits (a new one)
        # counts as told of it, as telling it changes nothing (the usual negotiated suite: no call).
        self._suite: CipherSuite | None = (
            INITIAL_SUITE if self.usage.limits is AEAD_LIMITS[INITIAL_SUITE] else None
        )

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

    # -- keys (RFC 9001 §4, §5) -------------------------------------------------------------------------

    def _pair(self, level: EncryptionLevel) -> KeyPair | None:
        space = self._spaces.get(SPACE_OF_LEVEL[level])
        return None if space is None else space.keys

    def read_keys(self, level: EncryptionLevel) -> PacketProtection | None:
        """The keys that open packets of ``level`` (the current 1-RTT generation), or None."""
        if level == _APPLICATION_LEVEL:
            return self.phase.read
        space = self._spaces.get(SPACE_OF_LEVEL[level])  # (_pair, inline: asked per long header packet)
        return None if space is None else space.keys.read

    def write_keys(self, level: EncryptionLevel) -> PacketProtection | None:
        """The keys that protect packets of ``level`` (the current 1-RTT generation), or None."""
        if level == _APPLICATION_LEVEL:
            return self.phase.write
        pair = self._pair(level)
        return None if pair is None else pair.write

    def one_rtt_only(self) -> bool:
        """True once only 1-RTT keys are left for writing (the steady state after the handshake)."""
        spaces = self._spaces
        return (
            _INITIAL not in spaces
            and _HANDSHAKE not in spaces
            and self.phase.write is not None
            and self.application.keys.write is None
        )

    def install_initial(self, dcid: bytes, *, is_client: bool, read: PacketProtection | None = None) -> None:
        """Initial keys from the client's first Destination CID (RFC 9001 §5.2; again after a Retry);
        ``read``: the peer's Initial keys if already built (used only if they match ``dcid``)."""
        space = self._spaces.get(_INITIAL)
        if space is not None:
            space.keys = KeyPair.initial(dcid, self.version, is_client=is_client, read=read)  # (use_keys)

    def switch_version(self, version: int, initial: KeyPair) -> None:
        """Move to another compatible QUIC version (RFC 9368 §2.3) with its Initial keys: every key
        installed from now on is of ``version`` (RFC 9369 §3.3)."""
        self.version = version
        space = self._spaces.get(PacketSpace.INITIAL)
        if space is not None:
            space.use_keys(initial)
        early = self.application.keys
        if early.write is not None:
            # RFC 9369 §4.1: a client sends no 0-RTT packet in the Negotiated Version (the server
            # rejects early data when it switches, RFC 9368 §7.3; the data goes again in 1-RTT).
            self.application.use_keys(KeyPair(early.read, None))

    def install(self, level: EncryptionLevel, *, read: bool, suite: CipherSuite, secret: bytes) -> None:
        """Install a secret from TLS for ``level`` in one direction (ignored for a discarded level)."""
        protection = PacketProtection(suite, secret, self.version)
        if suite is not self._suite:  # (the usage's limits follow the suite alone: told once per suite)
            self._suite = suite
            self.usage.set_suite(suite)
        if level == _APPLICATION_LEVEL:
            self.phase.install(protection, read=read)
            return
        space = self._spaces.get(SPACE_OF_LEVEL[level])
        if space is not None:  # (a new pair: pairs are shared, never changed in place)
            keys = space.keys
            space.keys = KeyPair(protection, keys.write) if read else KeyPair(keys.read, protection)

    def discard(self, space: PacketSpace) -> bool:
        """Drop a space with its keys, ACK tracker, CRYPTO streams and probes (RFC 9001 §4.9); False if
        it was gone already. The Application space is never discarded."""
        if space is _APPLICATION:
            return False
        return self._spaces.pop(space, None) is not None
