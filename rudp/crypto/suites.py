"""TLS 1.3 cipher suites usable with QUIC (RFC 9001 §5.3) and their parameters."""

from __future__ import annotations

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
