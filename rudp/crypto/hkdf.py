"""HKDF-Extract and HKDF-Expand-Label (RFC 5869, RFC 8446 §7.1) on ``cryptography`` primitives.

Shared by QUIC packet protection (RFC 9001 §5.1) and the TLS 1.3 key schedule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Final

from cryptography.hazmat.primitives import hashes

HashAlgorithm = hashes.HashAlgorithm

_HASHES: dict[str, hashes.HashAlgorithm] = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384()}


def hash_by_name(name: str) -> hashes.HashAlgorithm:
    """Return the hash algorithm object for ``"sha256"`` or ``"sha384"`` (shared, immutable)."""
    return _HASHES[name]


def hkdf_extract(algorithm: hashes.HashAlgorithm, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract(salt, IKM) = HMAC-Hash(salt, IKM) (RFC 5869 §2.2)."""
    if not salt:
        salt = bytes(algorithm.digest_size)
    return hmac_digest(algorithm.name, salt, ikm)


# RFC 2104 §2: the inner and outer pads, as byte translation tables (key XOR ipad / key XOR opad).
_IPAD: Final = bytes(x ^ 0x36 for x in range(256))
_OPAD: Final = bytes(x ^ 0x5C for x in range(256))
_HASH_NEW: Final[dict[str, tuple[Callable[..., hashlib._Hash], int]]] = {
    "sha256": (hashlib.sha256, 64),
    "sha384": (hashlib.sha384, 128),
}
"""hash constructor and block size (bytes) by name"""


def hmac_digest(name: str, key: bytes, message: bytes) -> bytes:
    """HMAC(key, message) with hash ``name`` (RFC 2104), as ``hmac.digest`` computes it, built on the
    hash objects directly (fewer lookups for the short keys and messages of TLS and QUIC)."""
    new, block = _HASH_NEW[name]
    if len(key) > block:
        key = new(key).digest()  # RFC 2104 §2: longer keys are hashed first
    key = key.ljust(block, b"\x00")
    return new(key.translate(_OPAD) + new(key.translate(_IPAD) + message).digest()).digest()


def _pads(name: str, key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """The hash objects of ``key``'s inner and outer pad blocks (RFC 2104 §2), to be continued by copies."""
    new, block = _HASH_NEW[name]
    if len(key) > block:
        key = new(key).digest()  # RFC 2104 §2: longer keys are hashed first
    key = key.ljust(block, b"\x00")
    return new(key.translate(_IPAD)), new(key.translate(_OPAD))


def _prefixes(
    inner_pad: hashlib._Hash, outer_pad: hashlib._Hash, messages: Iterable[tuple[bytes, int]]
) -> list[bytes]:
    """``HMAC(key, message)[:length]`` for each ``(message, length)``, from the key's :func:`_pads`."""
    out = []
    for message, length in messages:
        inner = inner_pad.copy()
        inner.update(message)
        outer = outer_pad.copy()
        outer.update(inner.digest())
        out.append(outer.digest()[:length])
    return out


def hmac_digests(name: str, key: bytes, messages: tuple[tuple[bytes, int], ...]) -> list[bytes]:
    """``hmac_digest(name, key, message)[:length]`` for each ``(message, length)``, the key's pads
    hashed once, in one call and without an object (HKDF-Expand's single blocks of the labels of one
    secret, RFC 5869 §2.3: a QUIC traffic secret's key, IV and header-protection key, RFC 9001 §5.1)."""
    return _prefixes(*_pads(name, key), messages)


class KeyedHmac:
    """HMAC (RFC 2104) with one key, for several messages: the key's inner and outer pad blocks are
    hashed once and each :meth:`digest` continues copies of them, so a PRK that HKDF-Expand uses for
    several labels (a QUIC traffic secret gives key, IV and header-protection key, RFC 9001 §5.1)
    pads and compresses its key once. Same output as ``hmac.digest(key, message, name)``. Lives as
    long as the caller keeps it; nothing is cached between callers."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, name: str, key: bytes) -> None:
        self._inner, self._outer = _pads(name, key)

    def digest(self, message: bytes) -> bytes:
        """HMAC(key, message)."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def prefixes(self, messages: list[bytes], length: int) -> list[bytes]:
        """``digest(message)[:length]`` for each message, in one call (a server's stateless reset
        tokens of the CIDs it issues at once, RFC 9000 §10.3.2)."""
        return _prefixes(self._inner, self._outer, [(message, length) for message in messages])


def hkdf_expand(algorithm: hashes.HashAlgorithm, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand(PRK, info, L) (RFC 5869 §2.3)."""
    name = algorithm.name
    if length <= algorithm.digest_size:  # one block: T(1) = HMAC(PRK, info | 0x01)
        return hmac_digest(name, prk, info + b"\x01")[:length]
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac_digest(name, prk, block + info + bytes((counter,)))
        out += block
        counter += 1
    return out[:length]


def hkdf_label(label: bytes, context: bytes, length: int) -> bytes:
    """The HkdfLabel structure of RFC 8446 §7.1 (``label`` without "tls13 "): HKDF-Expand's info."""
    return _label_info(label, context, length)


def label_info(label: bytes, context: bytes, length: int) -> bytes:
    """:func:`hkdf_label`, the labels without context encoded once (a few constants)."""
    return _label_info(label, context, length) if context else _constant_info(label, length)


def _label_info(label: bytes, context: bytes, length: int) -> bytes:
    full_label = b"tls13 " + label
    return (
        length.to_bytes(2, "big") + bytes((len(full_label),)) + full_label + bytes((len(context),)) + context
    )


_CONSTANT_INFO: dict[tuple[bytes, int], bytes] = {}
"""HkdfLabel structures without context, by (label, length): the QUIC and TLS labels are a few
constants, so each is encoded once (bounded by _MAX_CONSTANT_INFO)."""
_MAX_CONSTANT_INFO = 64


def _constant_info(label: bytes, length: int) -> bytes:
    info = _CONSTANT_INFO.get((label, length))
    if info is None:
        info = _label_info(label, b"", length)
        if len(_CONSTANT_INFO) < _MAX_CONSTANT_INFO:
            _CONSTANT_INFO[(label, length)] = info
    return info


def hkdf_expand_label(
    algorithm: hashes.HashAlgorithm, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    """HKDF-Expand-Label(Secret, Label, Context, Length) (RFC 8446 §7.1); ``label`` without "tls13 "."""
    info = _label_info(label, context, length) if context else _constant_info(label, length)
    if length <= algorithm.digest_size:  # (hkdf_expand's one block, inline: every TLS and QUIC label)
        return hmac_digest(algorithm.name, secret, info + b"\x01")[:length]
    return hkdf_expand(algorithm, secret, info, length)


def hkdf_expand_labels(
    algorithm: hashes.HashAlgorithm, secret: bytes, labels: tuple[tuple[bytes, int], ...]
) -> list[bytes]:
    """HKDF-Expand-Label(Secret, Label, "", Length) for each ``(label, length)`` of ``labels``, the
    secret's HMAC key prepared once (:class:`KeyedHmac`); each length at most Hash.length."""
    size = algorithm.digest_size
    blocks = []
    for label, length in labels:
        if length > size:
            raise ValueError("hkdf_expand_labels: one output block at most")
        # RFC 5869 §2.3: T(1) = HMAC(PRK, info | 0x01), enough for L <= HashLen
        blocks.append((_constant_info(label, length) + b"\x01", length))
    return hmac_digests(algorithm.name, secret, tuple(blocks))
