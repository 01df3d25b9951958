"""TLS 1.3 cipher suites usable with QUIC (RFC 9001 §5.3) and their parameters, AEAD usage limits
(RFC 9001 §6.6) included."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class CipherSuite(IntEnum):
    """TLS 1.3 cipher suite code points (RFC 8446 Appendix B.4)."""

    AES_128_GCM_SHA256 = 0x1301
    AES_256_GCM_SHA384 = 0x1302
    CHACHA20_POLY1305_SHA256 = 0x1303


#: hash name of each suite's HKDF ("sha256" or "sha384")
SUITE_HASH: dict[CipherSuite, str] = {
    CipherSuite.AES_128_GCM_SHA256: "sha256",
    CipherSuite.AES_256_GCM_SHA384: "sha384",
    CipherSuite.CHACHA20_POLY1305_SHA256: "sha256",
}

#: AEAD key length in bytes of each suite (also the header-protection key length)
SUITE_KEY_LENGTH: dict[CipherSuite, int] = {
    CipherSuite.AES_128_GCM_SHA256: 16,
    CipherSuite.AES_256_GCM_SHA384: 32,
    CipherSuite.CHACHA20_POLY1305_SHA256: 32,
}


@dataclass(frozen=True, slots=True)
class AeadLimits:
    """Usage limits of one AEAD (RFC 9001 §6.6), in packets."""

    confidentiality: int
    """Packets that may be protected with one key; a key update must come before it is reached."""
    integrity: int
    """Packets that may fail authentication over a connection's lifetime, across all its keys; one
    more closes the connection with AEAD_LIMIT_REACHED."""


#: RFC 9001 §6.6: AES-GCM may protect 2^23 packets per key and see 2^52 forgeries. ChaCha20-Poly1305's
#: confidentiality limit exceeds the number of possible packets (2^62), so it is given as 2^62; its
#: integrity limit is 2^36. (AEAD_AES_128_CCM is not offered by rudp.)
AEAD_LIMITS: dict[CipherSuite, AeadLimits] = {
    CipherSuite.AES_128_GCM_SHA256: AeadLimits(confidentiality=1 << 23, integrity=1 << 52),
    CipherSuite.AES_256_GCM_SHA384: AeadLimits(confidentiality=1 << 23, integrity=1 << 52),
    CipherSuite.CHACHA20_POLY1305_SHA256: AeadLimits(confidentiality=1 << 62, integrity=1 << 36),
}
