"""Packet protection keys per encryption level, with 1-RTT key updates (RFC 9001 §4.9, §5, §6).

Owns which :class:`~rudp.crypto.protection.PacketProtection` objects exist for reading and writing at
each level, their installation from TLS secrets and their discard. The key phase logic of RFC 9001 §6
(next read keys precomputed, old read keys kept for a while after an update) lives here too.
"""

from __future__ import annotations

from rudp.crypto.keys import initial_secrets
from rudp.crypto.protection import PacketProtection
from rudp.crypto.suites import CipherSuite
from rudp.quic.key_limits import LOCAL_UPDATE, REMOTE_UPDATE, KeyUsage
from rudp.tls.engine import EncryptionLevel

INITIAL_SUITE = CipherSuite.AES_128_GCM_SHA256


class KeySet:
    """Read and write protection for every level of one connection."""

    def __init__(self, version: int, usage: KeyUsage | None = None) -> None:
        self.version = version
        self.usage = usage if usage is not None else KeyUsage()
        """AEAD usage counters and limits, and the automatic key-update decision (RFC 9001 §6.6)."""
        self.read: dict[EncryptionLevel, PacketProtection] = {}
        self.write: dict[EncryptionLevel, PacketProtection] = {}
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

    def install_initial(self, dcid: bytes, *, is_client: bool) -> None:
        """Derive the Initial keys from the client's first Destination CID (RFC 9001 §5.2)."""
        client_secret, server_secret = initial_secrets(dcid, self.version)
        mine, theirs = (client_secret, server_secret) if is_client else (server_secret, client_secret)
        self.write[EncryptionLevel.INITIAL] = PacketProtection(INITIAL_SUITE, mine, self.version)
        self.read[EncryptionLevel.INITIAL] = PacketProtection(INITIAL_SUITE, theirs, self.version)

    def install(self, level: EncryptionLevel, *, read: bool, suite: CipherSuite, secret: bytes) -> None:
        """Install a secret from TLS for ``level`` in one direction."""
        protection = PacketProtection(suite, secret, self.version)
        self.usage.set_suite(suite)
        if read:
            self.read[level] = protection
            if level == EncryptionLevel.APPLICATION:
                self.next_read = protection.next_generation()
        else:
            self.write[level] = protection

    def on_peer_update(self, keep_previous_until: float) -> None:
        """The peer moved to the next key phase (a packet decrypted with :attr:`next_read`): follow it,
        keeping the old read keys for late packets until ``keep_previous_until`` (RFC 9001 §6.3, §6.5)."""
        self.update(REMOTE_UPDATE)
        self.previous_read_until = keep_previous_until

    def discard_previous(self) -> None:
        """Drop the previous generation's read keys (their time is up, RFC 9001 §6.5)."""
        self.previous_read = None
        self.previous_read_until = None

    def discard(self, level: EncryptionLevel) -> None:
        """Drop both directions of ``level`` (RFC 9001 §4.9)."""
        self.read.pop(level, None)
        self.write.pop(level, None)

    def can_update(self) -> bool:
        """True if a key update may be started now (RFC 9001 §6.1: not before the last one is acked)."""
        return EncryptionLevel.APPLICATION in self.write and not self.update_pending_ack

    def update(self, trigger: str = LOCAL_UPDATE) -> None:
        """Move both directions to the next key generation (initiated locally or by the peer).

        Until a packet of the new phase is acknowledged no further update may start (RFC 9001 §6.1),
        whichever side started this one."""
        current_read = self.read[EncryptionLevel.APPLICATION]
        next_read = self.next_read or current_read.next_generation()
        self.previous_read = current_read
        self.previous_read_until = None  # a stale discard deadline must not take these keys (RFC 9001 §6.5)
        self.read[EncryptionLevel.APPLICATION] = next_read
        self.next_read = next_read.next_generation()
        self.write[EncryptionLevel.APPLICATION] = self.write[EncryptionLevel.APPLICATION].next_generation()
        self.key_phase ^= 1
        self.update_pending_ack = True
        self.first_pn_in_phase = None
        self.key_updates += 1
        self.usage.on_phase_changed(trigger, self.key_updates)
