"""HKDF-Extract and HKDF-Expand-Label (RFC 5869, RFC 8446 §7.1) on ``cryptography`` primitives.

Shared by QUIC packet protection (RFC 9001 §5.1) and the TLS 1.3 key schedule.
"""

from __future__ import annotations

import hmac

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
    return hmac.digest(salt, ikm, algorithm.name)


def hkdf_expand(algorithm: hashes.HashAlgorithm, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand(PRK, info, L) (RFC 5869 §2.3)."""
    name = algorithm.name
    if length <= algorithm.digest_size:  # one block: T(1) = HMAC(PRK, info | 0x01)
        return hmac.digest(prk, info + b"\x01", name)[:length]
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes((counter,)), name)
        out += block
        counter += 1
    return out[:length]


def _label_info(label: bytes, context: bytes, length: int) -> bytes:
    full_label = b"tls13 " + label
    return (
        length.to_bytes(2, "big") + bytes((len(full_label),)) + full_label + bytes((len(context),)) + context
    )


_CONSTANT_INFO: dict[tuple[bytes, int], bytes] = {}
"""HkdfLabel structures without context, by (label, length): the QUIC and TLS labels are a few
constants, so each is encoded once (bounded by _MAX_CONSTANT_INFO)."""
_MAX_CONSTANT_INFO = 64


def hkdf_expand_label(
    algorithm: hashes.HashAlgorithm, secret: bytes, label: bytes, context: bytes, length: int
) -> bytes:
    """HKDF-Expand-Label(Secret, Label, Context, Length) (RFC 8446 §7.1); ``label`` without "tls13 "."""
    if context:
        return hkdf_expand(algorithm, secret, _label_info(label, context, length), length)
    info = _CONSTANT_INFO.get((label, length))
    if info is None:
        info = _label_info(label, b"", length)
        if len(_CONSTANT_INFO) < _MAX_CONSTANT_INFO:
            _CONSTANT_INFO[(label, length)] = info
    return hkdf_expand(algorithm, secret, info, length)
