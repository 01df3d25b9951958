"""(EC)DHE key shares for x25519, secp256r1 and secp384r1 (RFC 8446 §4.2.8, §7.4.2).

Owns key share generation (private keys drawn from the engine's injectable ``randbytes``, so tests
can be deterministic) and the shared-secret computation with the peer checks the RFC requires:
uncompressed points of the right length on the curve, and no all-zero X25519 result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

from rudp.tls.alerts import AlertDescription, alert
from rudp.tls.extensions import NamedGroup

RandBytes = Callable[[int], bytes]

_CURVES: Final = {
    NamedGroup.secp256r1: (
        ec.SECP256R1,
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        65,
    ),
    NamedGroup.secp384r1: (
        ec.SECP384R1,
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
        97,
    ),
}

SUPPORTED_GROUPS: Final = frozenset({NamedGroup.x25519, *_CURVES})
_X25519: Final = int(NamedGroup.x25519)
_X25519_ZERO: Final = bytes(32)

try:  # what X25519's public classmethods call after their backend check (fewer Python frames)
    from cryptography.hazmat.bindings._rust import openssl as _rust_openssl

    _x25519_private: Callable[[bytes], x25519.X25519PrivateKey] = _rust_openssl.x25519.from_private_bytes
    _x25519_public: Callable[[bytes], x25519.X25519PublicKey] = _rust_openssl.x25519.from_public_bytes
except (ImportError, AttributeError):  # a cryptography release without them: the public API
    _x25519_private = x25519.X25519PrivateKey.from_private_bytes
    _x25519_public = x25519.X25519PublicKey.from_public_bytes


class KeyShare:
    """One ephemeral key pair of ``group``; :attr:`public` is the key_exchange field."""

    __slots__ = ("_ec", "_x25519", "group", "public")

    def __init__(self, group: int, randbytes: RandBytes) -> None:
        self.group = group
        self._x25519: x25519.X25519PrivateKey | None = None
        self._ec: ec.EllipticCurvePrivateKey | None = None
        if group == _X25519:
            key = self._x25519 = _x25519_private(randbytes(32))
            self.public = key.public_key().public_bytes_raw()
        elif group in _CURVES:
            curve, order, length = _CURVES[NamedGroup(group)]
            scalar = int.from_bytes(randbytes(length // 2 + 8), "big") % (order - 1) + 1
            ec_key = self._ec = ec.derive_private_key(scalar, curve())
            self.public = ec_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        else:
            raise ValueError(f"unsupported group {group:#06x}")

    def exchange(self, peer_public: bytes) -> bytes:
        """The shared secret with ``peer_public``; invalid peer keys -> illegal_parameter (§4.2.8.2)."""
        try:
            if self._x25519 is not None:
                secret = self._x25519.exchange(_x25519_public(peer_public))
                if secret == _X25519_ZERO:  # RFC 8446 §7.4.2
                    raise ValueError("all-zero X25519 shared secret")
                return secret
            curve, _, length = _CURVES[NamedGroup(self.group)]
            if len(peer_public) != length or peer_public[0] != 4:
                raise ValueError("not an uncompressed point")
            ec_peer = ec.EllipticCurvePublicKey.from_encoded_point(curve(), peer_public)
            if self._ec is None:
                raise ValueError("no private key")  # (unreachable: __init__ made one of the two)
            return self._ec.exchange(ec.ECDH(), ec_peer)
        except ValueError as exc:
            raise alert(AlertDescription.illegal_parameter, f"invalid key share: {exc}") from None
