"""QUIC packet-protection key derivation: Initial secrets, packet keys and key-update generations.

This module owns the version-dependent inputs of RFC 9001 §5 (the Initial salt and the HKDF labels of
QUIC v1 and QUIC v2, RFC 9369 §3.3) and turns a traffic secret into the key material of one packet
protection direction. It does not encrypt anything: :mod:`rudp.crypto.protection` builds the AEAD and
header-protection objects from a :class:`PacketKeyMaterial`, and the TLS key schedule
(:mod:`rudp.tls`) produces the Handshake and 1-RTT secrets fed in here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rudp.codec.codes import Version
from rudp.crypto.hkdf import (
    KeyedHmac,
    hash_by_name,
    hkdf_expand_label,
    hkdf_expand_labels,
    hkdf_label,
    hmac_digest,
    hmac_digests,
)
from rudp.crypto.suites import SUITE_HASH, SUITE_KEY_LENGTH, CipherSuite

# RFC 9001 §5.2: the v1 Initial salt.
INITIAL_SALT_V1: Final = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
# RFC 9369 §3.3.1: the v2 Initial salt (first 20 bytes of sha256("QUICv2 salt")).
INITIAL_SALT_V2: Final = bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9")

#: RFC 9001 §5.2: Initial packets always use AEAD_AES_128_GCM with SHA-256.
INITIAL_SUITE: Final = CipherSuite.AES_128_GCM_SHA256

#: RFC 9001 §5.3: every AEAD used by QUIC has a 12-byte nonce, so "quic iv" is 12 bytes.
IV_LENGTH: Final = 12


@dataclass(frozen=True, slots=True)
class Labels:
    """The HKDF-Expand-Label labels of one QUIC version (without the "tls13 " prefix)."""

    key: bytes
    """label of the AEAD key ("quic key")"""
    iv: bytes
    """label of the AEAD IV ("quic iv")"""
    hp: bytes
    """label of the header-protection key ("quic hp")"""
    ku: bytes
    """label of the key-update secret ("quic ku")"""


# RFC 9001 §5.1, §5.4, §6.1
LABELS_V1: Final = Labels(key=b"quic key", iv=b"quic iv", hp=b"quic hp", ku=b"quic ku")
# RFC 9369 §3.3.2: v2 changes every "quic " label to "quicv2 ".
LABELS_V2: Final = Labels(key=b"quicv2 key", iv=b"quicv2 iv", hp=b"quicv2 hp", ku=b"quicv2 ku")


@dataclass(frozen=True, slots=True)
class PacketKeyMaterial:
    """The keys of one direction of packet protection, derived from one traffic secret."""

    key: bytes
    """AEAD key (16 or 32 bytes)"""
    iv: bytes
    """AEAD IV, XORed with the packet number to form the nonce (12 bytes)"""
    hp: bytes
    """header-protection key (same length as the AEAD key)"""


def labels_for(version: int) -> Labels:
    """Return the HKDF labels of ``version`` (QUIC v1 or v2).

    Raises:
        ValueError: ``version`` is neither QUIC v1 nor QUIC v2 (a caller bug: only supported versions
            reach key derivation).
    """
    if version == Version.V1:
        return LABELS_V1
    if version == Version.V2:
        return LABELS_V2
    raise ValueError(f"no packet protection defined for version {version:#010x}")


def initial_salt(version: int) -> bytes:
    """Return the Initial salt of ``version`` (RFC 9001 §5.2, RFC 9369 §3.3.1).

    Raises:
        ValueError: ``version`` is neither QUIC v1 nor QUIC v2.
    """
    if version == Version.V1:
        return INITIAL_SALT_V1
    if version == Version.V2:
        return INITIAL_SALT_V2
    raise ValueError(f"no Initial salt defined for version {version:#010x}")


_RECENT_INITIAL: dict[tuple[bytes, int], tuple[bytes, bytes]] = {}
"""The Initial secrets of the last few DCIDs: a server derives them for its admission check and
again for the connection it creates. They protect nothing secret (anyone who sees the DCID on the wire
derives them, RFC 9001 §5.2, §7), so keeping them beyond a connection leaks nothing."""
_MAX_RECENT_INITIAL: Final = 16


def initial_secrets(dcid: bytes, version: int) -> tuple[bytes, bytes]:
    """Derive ``(client_initial_secret, server_initial_secret)`` from the client's first DCID.

    ``dcid`` is the Destination Connection ID of the client's first Initial packet (or the server's
    chosen one after a Retry). Both secrets are 32 bytes (SHA-256).

    Raises:
        ValueError: ``version`` is neither QUIC v1 nor QUIC v2.
    """
    key = (bytes(dcid), version)
    found = _RECENT_INITIAL.get(key)
    if found is None:
        found = _derive_initial_secrets(key[0], version)
        if len(_RECENT_INITIAL) >= _MAX_RECENT_INITIAL:
            del _RECENT_INITIAL[next(iter(_RECENT_INITIAL))]  # the oldest
        _RECENT_INITIAL[key] = found
    return found


_SALT_HMAC: dict[int, KeyedHmac] = {}
"""The Initial salt of each version as an HMAC key (a public constant, RFC 9001 §5.2), prepared once."""
_INITIAL_LABELS: Final = ((b"client in", 32), (b"server in", 32))
"""RFC 9001 §5.2: the two Initial secrets, of Hash.length (SHA-256)."""


def _derive_initial_secrets(dcid: bytes, version: int) -> tuple[bytes, bytes]:
    # RFC 9001 §5.2: initial_secret = HKDF-Extract(initial_salt, client_dst_connection_id), that is
    # HMAC(initial_salt, dcid) (RFC 5869 §2.2; the salts are not empty)
    salt = _SALT_HMAC.get(version)
    if salt is None:
        salt = _SALT_HMAC[version] = KeyedHmac(SUITE_HASH[INITIAL_SUITE], initial_salt(version))
    algorithm = hash_by_name(SUITE_HASH[INITIAL_SUITE])
    client, server = hkdf_expand_labels(algorithm, salt.digest(dcid), _INITIAL_LABELS)
    return client, server


def derive_packet_keys(suite: CipherSuite, secret: bytes, version: int) -> PacketKeyMaterial:
    """Derive the AEAD key, IV and header-protection key from a traffic ``secret``.

    Raises:
        ValueError: ``version`` is neither QUIC v1 nor QUIC v2.
    """
    key, iv, hp = derive_key_iv_hp(suite, secret, version)
    return PacketKeyMaterial(key=key, iv=iv, hp=hp)


_KEY_IV_HP_INFO: dict[tuple[CipherSuite, int], tuple[str, tuple[tuple[bytes, int], ...]]] = {}
"""(hash name, (HKDF-Expand input block, length) of key, iv and hp) by (suite, version): a few
constants, built once each."""


def derive_key_iv_hp(suite: CipherSuite, secret: bytes, version: int) -> list[bytes]:
    """:func:`derive_packet_keys` as ``[key, iv, hp]``, the labels of the suite and version looked up
    once (every connection installs six or seven keys, RFC 9001 §5.1).

    Raises:
        ValueError: ``version`` is neither QUIC v1 nor QUIC v2.
    """
    found = _KEY_IV_HP_INFO.get((suite, version))
    if found is None:
        labels = _packet_key_labels(suite, version, with_hp=True)  # raises for an unknown version
        # RFC 5869 §2.3: T(1) = HMAC(PRK, HkdfLabel | 0x01), enough as every length <= HashLen.
        blocks = tuple((hkdf_label(label, b"", length) + b"\x01", length) for label, length in labels)
        found = _KEY_IV_HP_INFO[(suite, version)] = (SUITE_HASH[suite], blocks)
    return hmac_digests(found[0], secret, found[1])  # (one call for the three labels)


def derive_aead_key_and_iv(suite: CipherSuite, secret: bytes, version: int) -> tuple[bytes, bytes]:
    """Derive only the AEAD key and IV from a traffic ``secret``: what a key update changes (the
    header-protection key stays, RFC 9001 §6.1).

    Raises:
        ValueError: ``version`` is neither QUIC v1 nor QUIC v2.
    """
    key, iv = hkdf_expand_labels(
        hash_by_name(SUITE_HASH[suite]), secret, _packet_key_labels(suite, version, with_hp=False)
    )
    return key, iv


_NEXT_GENERATION_INFO: dict[tuple[CipherSuite, int], tuple[str, bytes, tuple[tuple[bytes, int], ...]]] = {}
"""(hash name, the "quic ku" HKDF-Expand input block, the (block, length) of key and iv) by (suite,
version): a few constants, built once each."""


def next_generation_keys(suite: CipherSuite, secret: bytes, version: int) -> tuple[bytes, bytes, bytes]:
    """``(secret, key, iv)`` of the next key phase: :func:`next_generation_secret` of ``secret``, then
    :func:`derive_aead_key_and_iv` of that, the labels of the suite and version encoded once.

    Raises:
        ValueError: ``version`` is neither QUIC v1 nor QUIC v2.
    """
    found = _NEXT_GENERATION_INFO.get((suite, version))
    if found is None:
        name = SUITE_HASH[suite]
        size = hash_by_name(name).digest_size
        ku = hkdf_label(labels_for(version).ku, b"", size) + b"\x01"  # raises for an unknown version
        labels = _packet_key_labels(suite, version, with_hp=False)
        blocks = tuple((hkdf_label(label, b"", length) + b"\x01", length) for label, length in labels)
        found = _NEXT_GENERATION_INFO[(suite, version)] = (name, ku, blocks)
    name, ku, blocks = found
    # RFC 9001 §6.1: secret_<n+1> = HKDF-Expand-Label(secret_<n>, "quic ku", "", Hash.length), one
    # block T(1) = HMAC(PRK, HkdfLabel | 0x01) (RFC 5869 §2.3); then its key and iv (§5.1).
    successor = hmac_digest(name, secret, ku)
    key, iv = hmac_digests(name, successor, blocks)
    return successor, key, iv


def _packet_key_labels(suite: CipherSuite, version: int, *, with_hp: bool) -> tuple[tuple[bytes, int], ...]:
    labels = labels_for(version)
    key_length = SUITE_KEY_LENGTH[suite]
    # RFC 9001 §5.1: key and iv use "quic key"/"quic iv"; §5.4: the hp key uses "quic hp" and has
    # the length of the AEAD key.
    if with_hp:
        return ((labels.key, key_length), (labels.iv, IV_LENGTH), (labels.hp, key_length))
    return ((labels.key, key_length), (labels.iv, IV_LENGTH))


def next_generation_secret(suite: CipherSuite, secret: bytes, version: int) -> bytes:
    """Return the traffic secret of the next key phase (key update).

    Raises:
        ValueError: ``version`` is neither QUIC v1 nor QUIC v2.
    """
    # RFC 9001 §6.1: secret_<n+1> = HKDF-Expand-Label(secret_<n>, "quic ku", "", Hash.length)
    algorithm = hash_by_name(SUITE_HASH[suite])
    return hkdf_expand_label(algorithm, secret, labels_for(version).ku, b"", algorithm.digest_size)


__all__ = [
    "INITIAL_SALT_V1",
    "INITIAL_SALT_V2",
    "INITIAL_SUITE",
    "IV_LENGTH",
    "LABELS_V1",
    "LABELS_V2",
    "Labels",
    "PacketKeyMaterial",
    "derive_aead_key_and_iv",
    "derive_packet_keys",
    "initial_salt",
    "initial_secrets",
    "labels_for",
    "next_generation_keys",
    "next_generation_secret",
]
