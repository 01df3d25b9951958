"""Retry packet integrity (RFC 9001 §5.8, RFC 9369 §3.3.3) and address-validation tokens (RFC 9000 §8.1).

This module owns the fixed Retry integrity keys of QUIC v1 and v2, the Retry Integrity Tag computation
and check, and :class:`TokenSealer`, which seals the tokens a server hands out in Retry and NEW_TOKEN
frames so it can validate a client's address statelessly later. It does not build or parse Retry
packets (that is :mod:`rudp.codec.packet`) and it does not decide when to send a Retry (the endpoint
does). Time and randomness are injected: callers pass ``now`` and may pass ``randbytes``.
"""

from __future__ import annotations

import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from rudp.codec.codes import Version

#: RFC 9001 §5.8: the Retry Integrity Tag is a 128-bit AEAD_AES_128_GCM tag.
RETRY_TAG_LENGTH: Final = 16

# RFC 9001 §5.8: K and N are HKDF-Expand-Label("quic key"/"quic iv") of this fixed secret.
RETRY_SECRET_V1: Final = bytes.fromhex("d9c9943e6101fd200021506bcc02814c73030f25c79d71ce876eca876e6fca8e")
RETRY_KEY_V1: Final = bytes.fromhex("be0c690b9f66575a1d766b54e368c84e")
RETRY_NONCE_V1: Final = bytes.fromhex("461599d35d632bf2239825bb")
# RFC 9369 §3.3.3: v2 derives them from sha256("QUICv2 retry secret") with the "quicv2" labels.
RETRY_SECRET_V2: Final = bytes.fromhex("c4dd2484d681aefa4ff4d69c2c20299984a765a5d3c31982f38fc74162155e9f")
RETRY_KEY_V2: Final = bytes.fromhex("8fb4b01b56ac48e260fbcbcead7ccc92")
RETRY_NONCE_V2: Final = bytes.fromhex("d86969bc2d7c6d9990efb04a")

_RETRY_AEAD: Final[dict[int, tuple[AESGCM, bytes]]] = {
    Version.V1: (AESGCM(RETRY_KEY_V1), RETRY_NONCE_V1),
    Version.V2: (AESGCM(RETRY_KEY_V2), RETRY_NONCE_V2),
}


def retry_integrity_tag(retry_without_tag: bytes, original_dcid: bytes, version: int) -> bytes:
    """Compute the 16-byte Retry Integrity Tag of a Retry packet (everything but the tag).

    ``original_dcid`` is the Destination Connection ID of the client Initial the Retry answers.

    Raises:
        ValueError: ``version`` is neither QUIC v1 nor QUIC v2, or ``original_dcid`` exceeds 255 bytes.
    """
    entry = _RETRY_AEAD.get(version)
    if entry is None:
        raise ValueError(f"no Retry integrity key for version {version:#010x}")
    if len(original_dcid) > 255:
        raise ValueError("original DCID too long")
    aead, nonce = entry
    # RFC 9001 §5.8: the AAD is the Retry Pseudo-Packet: ODCID Length, ODCID, then the Retry packet
    # without its tag; the plaintext is empty, so the AEAD output is the tag alone.
    pseudo_packet = bytes((len(original_dcid),)) + original_dcid + retry_without_tag
    return aead.encrypt(nonce, b"", pseudo_packet)


def verify_retry_integrity(retry_packet: bytes, original_dcid: bytes, version: int) -> bool:
    """True if the last 16 bytes of ``retry_packet`` are its valid Retry Integrity Tag.

    Never raises: a packet too short to hold a tag, an unknown version or an over-long
    ``original_dcid`` is simply not valid (RFC 9000 §17.2.5.2: the client discards it).
    """
    if len(retry_packet) <= RETRY_TAG_LENGTH or version not in _RETRY_AEAD or len(original_dcid) > 255:
        return False
    body, tag = retry_packet[:-RETRY_TAG_LENGTH], retry_packet[-RETRY_TAG_LENGTH:]
    expected = retry_integrity_tag(bytes(body), original_dcid, version)
    return hmac.compare_digest(expected, bytes(tag))


@dataclass(slots=True)
class AddressToken:
    """The validated contents of an address-validation token (read-only by convention: a frozen
    dataclass sets each field through ``object.__setattr__``, and a server opens one per connection
    that presents a token)."""

    retry: bool
    """True for a token sent in a Retry packet, False for one sent in a NEW_TOKEN frame"""
    original_dcid: bytes
    """the client's original Destination Connection ID (Retry tokens; empty for NEW_TOKEN ones)"""
    issued_at: float
    """when the token was sealed, on the server's clock (seconds)"""


_NONCE_LENGTH: Final = 12
_TOKEN_HEADER: Final = struct.Struct("!Bd")  # flags, issued_at
_FLAG_RETRY: Final = 0x01
_TOKEN_CONTEXT: Final = b"rudp address token\x00"
_MAX_CONTEXTS: Final = 4


class TokenSealer:
    """Seals and opens the address-validation tokens of one server (RFC 9000 §8.1.2, §8.1.3).

    A token is ``nonce || AES-GCM(key, nonce, flags || issued_at || odcid, aad=version || address)``:
    the QUIC version and the client address are bound as associated data rather than carried, so a
    token replayed from another address, or in an Initial of another QUIC version, fails
    authentication (RFC 9369 §5: tokens are specific to the version they were issued for). What
    ``address`` holds is the caller's choice: IP and port for Retry tokens, usually the IP alone for
    NEW_TOKEN tokens (the client's port changes between connections).

    Raises:
        ValueError: ``key`` is not 16, 24 or 32 bytes long.
    """

    __slots__ = ("_aead", "_contexts", "_encrypt", "_randbytes")

    def __init__(self, key: bytes, randbytes: Callable[[int], bytes] = os.urandom) -> None:
        self._aead = AESGCM(key)
        self._encrypt = self._aead.encrypt
        self._randbytes = randbytes
        self._contexts: dict[int, bytes] = {}
        """The associated data's prefix (context and version) by version, for :meth:`seal_new_token`:
        at most :data:`_MAX_CONTEXTS` (the versions a server speaks)."""

    def seal(
        self, address: bytes, original_dcid: bytes, issued_at: float, *, retry: bool, version: int
    ) -> bytes:
        """Return a token for ``address`` carrying ``original_dcid`` and the issue time ``issued_at``,
        valid only in Initials of QUIC ``version``."""
        # RFC 9000 §8.1.4: a token must be unforgeable and hard to link to the connection; a random
        # nonce per token keeps two tokens for the same client distinct.
        nonce = self._randbytes(_NONCE_LENGTH)
        plaintext = _TOKEN_HEADER.pack(_FLAG_RETRY if retry else 0, issued_at) + original_dcid
        # (_associated_data, inline: one call less per token)
        aad = b"".join((_TOKEN_CONTEXT, version.to_bytes(4, "big"), address))
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def seal_new_token(self, address: bytes, issued_at: float, version: int) -> bytes:
        """:meth:`seal` of a NEW_TOKEN token (no original DCID, not a Retry's): the same bytes, sealed
        once per connection a server completes, with fewer steps."""
        context = self._contexts.get(version)
        if context is None:
            context = _TOKEN_CONTEXT + version.to_bytes(4, "big")
            if len(self._contexts) < _MAX_CONTEXTS:
                self._contexts[version] = context
        nonce = self._randbytes(_NONCE_LENGTH)  # RFC 9000 §8.1.4: a random nonce, as seal's
        return nonce + self._encrypt(nonce, _TOKEN_HEADER.pack(0, issued_at), context + address)

    def open(
        self, token: bytes, address: bytes, now: float, lifetime: float, *, version: int
    ) -> AddressToken | None:
        """Validate ``token`` for ``address`` at time ``now``, in an Initial of QUIC ``version``;
        return its contents or None.

        None means the token is not usable: malformed, sealed under another key, tampered with,
        presented from a different address or in another version's Initial (RFC 9369 §5), issued in
        the future, or ``lifetime`` seconds old or older. Never raises for bad input (RFC 9000 §8.1.3:
        an invalid token is treated as no token).
        """
        if len(token) < _NONCE_LENGTH + _TOKEN_HEADER.size + 16 or not 0 <= version <= 0xFFFFFFFF:
            return None
        nonce, sealed = token[:_NONCE_LENGTH], token[_NONCE_LENGTH:]
        try:
            aad = _TOKEN_CONTEXT + version.to_bytes(4, "big") + address  # (as seal's)
            plaintext = self._aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            return None
        if len(plaintext) < _TOKEN_HEADER.size:
            return None
        flags, issued_at = _TOKEN_HEADER.unpack_from(plaintext)
        age = now - issued_at
        # NaN ages (a NaN issued_at) fail both comparisons and are rejected too.
        if not 0.0 <= age < lifetime:
            return None
        return AddressToken(bool(flags & _FLAG_RETRY), plaintext[_TOKEN_HEADER.size :], issued_at)


__all__ = [
    "RETRY_KEY_V1",
    "RETRY_KEY_V2",
    "RETRY_NONCE_V1",
    "RETRY_NONCE_V2",
    "RETRY_SECRET_V1",
    "RETRY_SECRET_V2",
    "RETRY_TAG_LENGTH",
    "AddressToken",
    "TokenSealer",
    "retry_integrity_tag",
    "verify_retry_integrity",
]
