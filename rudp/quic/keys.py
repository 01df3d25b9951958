"""Packet protection keys (RFC 9001 §4.9, §5, §6): a level's read and write keys, and the 1-RTT key
phase with its updates.

Owns :class:`KeyPair` (the keys of one encryption level; Initial and Handshake keys live in their
packet number space, 0-RTT keys in the Application space) and :class:`KeyPhase` (the 1-RTT keys of the
Application space: the current generation both ways, the next read keys precomputed, the previous
read keys kept for a while after an update, and the key phase bit). It does not decide when a level is
discarded (:mod:`rudp.quic.handshake` does; the space and its keys are then dropped together,
:class:`~rudp.quic.spaces.PacketSpaces`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rudp.crypto.keys import INITIAL_SUITE, initial_secrets
from rudp.crypto.protection import SAMPLE_LENGTH, DecryptFailed, PacketProtection, UnprotectedPacket
from rudp.errors import TransportError, TransportErrorCode
from rudp.quic.key_limits import LOCAL_UPDATE, REMOTE_UPDATE, KeyUsage


@dataclass(frozen=True, slots=True)
class KeyPair:
    """Read and write protection of one encryption level (either may be missing for a while).

    Immutable: installing a key makes a new pair, so one empty pair serves every space that has none."""

    read: PacketProtection | None = None
    write: PacketProtection | None = None

    @classmethod
    def initial(
        cls, dcid: bytes, version: int, *, is_client: bool, read: PacketProtection | None = None
    ) -> KeyPair:
        """The Initial keys from the client's first Destination CID (RFC 9001 §5.2). ``read``: the
        peer's Initial keys already built elsewhere (a server's admission check), taken only when
        they were derived from the same secret, version and suite; otherwise derived here."""
        client_secret, server_secret = initial_secrets(dcid, version)
        mine, theirs = (client_secret, server_secret) if is_client else (server_secret, client_secret)
        if read is None or read.secret != theirs or read.version != version or read.suite != INITIAL_SUITE:
            read = PacketProtection(INITIAL_SUITE, theirs, version)
        return cls(read, PacketProtection(INITIAL_SUITE, mine, version))


class KeyPhase:
    """The 1-RTT keys and their generations (RFC 9001 §6)."""

    __slots__ = (
        "first_pn_in_phase",
        "key_phase",
        "key_updates",
        "next_read",
        "previous_read",
        "previous_read_until",
        "read",
        "update_pending_ack",
        "usage",
        "write",
    )

    def __init__(self, usage: KeyUsage | None = None) -> None:
        self.usage = usage if usage is not None else KeyUsage()
        """The AEAD limits and the automatic key-update decision (RFC 9001 §6.6), told of each update."""
        self.read: PacketProtection | None = None
        self.write: PacketProtection | None = None
        self.key_phase = 0
        """Our current 1-RTT key phase bit."""
        self.next_read: PacketProtection | None = None
        self.previous_read: PacketProtection | None = None
        self.previous_read_until: float | None = None
        """When :attr:`previous_read` may be dropped (RFC 9001 §6.5), after the peer updated keys."""
        self.update_pending_ack = False
        """True after we moved to a new key phase until a packet in it is acknowledged (§6.1)."""
        self.first_pn_in_phase: int | None = None
        self.key_updates = 0

    def install(self, protection: PacketProtection, *, read: bool) -> None:
        """The first 1-RTT secret of one direction arrived from TLS."""
        if read:
            self.read = protection
            self.next_read = protection.next_generation()
        else:
            self.write = protection

    def unprotect(
        self, packet: memoryview, pn_offset: int, expected: int, keep_previous_until: float
    ) -> UnprotectedPacket | DecryptFailed:
        """Remove the protection of a 1-RTT packet with whichever generation it uses (RFC 9001 §6.3):
        the current one, the previous one (a late packet) or the next one (the peer updated its keys;
        we follow, keeping the old read keys until ``keep_previous_until``, §6.5).

        Raises:
            TransportError: KEY_UPDATE_ERROR when the current keys open a packet of the other phase.
        """
        current = self.read
        if current is None:
            return DecryptFailed("no 1-RTT keys")
        result = current.unprotect(packet, pn_offset, expected)
        if isinstance(result, UnprotectedPacket):
            if result.key_phase != self.key_phase:
                raise TransportError(TransportErrorCode.KEY_UPDATE_ERROR, "key phase bit does not match keys")
            return result
        if self.previous_read is not None:
            late = self.previous_read.unprotect(packet, pn_offset, expected)
            if isinstance(late, UnprotectedPacket):
                return late
        if self.next_read is not None:
            updated = self.next_read.unprotect(packet, pn_offset, expected)
            if isinstance(updated, UnprotectedPacket):
                self._on_peer_update(keep_previous_until)
                return updated
        return result

    def batch_masks(self, datagrams: list[bytes | memoryview], start: int) -> bytes | None:
        """The header-protection masks (RFC 9001 §5.4.1) of a receive batch's datagrams as 1-RTT packets
        under the current read keys, from one call, not one per packet: the ``i``-th at ``16 * i``, its
        sample at ``start`` in the ``i``-th datagram. None without read keys, or when a datagram is too
        short for a sample (the fast path does not open such a packet anyway)."""
        keys = self.read
        if keys is None:
            return None
        stop = start + SAMPLE_LENGTH
        samples = b"".join([datagram[start:stop] for datagram in datagrams])
        if len(samples) != SAMPLE_LENGTH * len(datagrams):
            return None
        return keys.header_masks(samples)

    def _on_peer_update(self, keep_previous_until: float) -> None:
        # The peer moved to the next key phase: follow it (RFC 9001 §6.3, §6.5); no further update
        # until a packet of this phase is acknowledged (§6.1), whichever side started it.
        self.update(REMOTE_UPDATE)
        self.previous_read_until = keep_previous_until

    def on_packet_sent(self, packet_number: int) -> None:
        """A 1-RTT packet left: the first one of a phase marks where the phase starts."""
        if self.first_pn_in_phase is None:
            self.first_pn_in_phase = packet_number

    def on_packet_acked(self, packet_number: int, now: float, pto: float) -> None:
        """A 1-RTT packet was acknowledged at ``now``: one of the current phase ends the update (RFC 9001
        §6.1), and the next automatic one waits three PTOs (§6.5)."""
        first = self.first_pn_in_phase
        if self.update_pending_ack and first is not None and packet_number >= first:
            self.update_pending_ack = False
            self.usage.on_phase_acked(now, pto)

    def discard_previous(self) -> None:
        """Drop the previous generation's read keys (their time is up, RFC 9001 §6.5)."""
        self.previous_read = None
        self.previous_read_until = None

    def can_update(self) -> bool:
        """True if a key update may be started now (RFC 9001 §6.1: not before the last one is acked)."""
        return self.write is not None and self.read is not None and not self.update_pending_ack

    def update(self, trigger: str = LOCAL_UPDATE) -> None:
        """Move both directions to the next key generation (initiated locally or by the peer).

        Until a packet of the new phase is acknowledged no further update may start (RFC 9001 §6.1),
        whichever side started this one."""
        current_read, current_write = self.read, self.write
        if current_read is None or current_write is None:
            return
        next_read = self.next_read or current_read.next_generation()
        self.previous_read = current_read
        self.previous_read_until = None  # a stale discard deadline must not take these keys (RFC 9001 §6.5)
        self.read = next_read
        self.next_read = next_read.next_generation()
        self.write = current_write.next_generation()
        self.key_phase ^= 1
        self.update_pending_ack = True
        self.first_pn_in_phase = None
        self.key_updates += 1
        self.usage.on_phase_changed(trigger, self.key_updates)
