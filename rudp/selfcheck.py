"""``rudp selfcheck``: recompute the published QUIC packet-protection vectors and report each check.

This module owns the command's checks: for QUIC v1 (RFC 9001 Appendix A) and QUIC v2 (RFC 9369
Appendix A) it derives the Initial keys, protects and unprotects the client and server Initial packets,
verifies the Retry integrity tag and protects the ChaCha20-Poly1305 short-header packet, comparing each
result byte for byte with :mod:`rudp.crypto.vectors`. It prints through an injected ``out`` callable and
holds no vectors of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from rudp.crypto.keys import INITIAL_SUITE, derive_packet_keys, initial_secrets, next_generation_secret
from rudp.crypto.protection import PacketProtection, UnprotectedPacket
from rudp.crypto.retry import retry_integrity_tag, verify_retry_integrity
from rudp.crypto.suites import CipherSuite
from rudp.crypto.vectors import ALL_VECTORS, InitialKeys, InitialPacketVector, VersionVectors

Check = tuple[str, Callable[[], bool]]


def _keys_match(expected: InitialKeys, version: int) -> bool:
    material = derive_packet_keys(INITIAL_SUITE, expected.secret, version)
    return (material.key, material.iv, material.hp) == (expected.key, expected.iv, expected.hp)


def _initial_round_trip(secret: bytes, vector: InitialPacketVector, version: int) -> bool:
    protection = PacketProtection(INITIAL_SUITE, secret, version)
    pn_length = len(vector.header) - vector.pn_offset
    protected = protection.protect(
        vector.header, vector.payload, vector.packet_number, vector.pn_offset, pn_length
    )
    opened = protection.unprotect(vector.packet, vector.pn_offset, 0)
    return (
        protected == vector.packet
        and protection.header_mask(vector.sample) == vector.mask
        and isinstance(opened, UnprotectedPacket)
        and opened.header == vector.header
        and opened.payload == vector.payload
        and opened.packet_number == vector.packet_number
    )


def _retry(vectors: VersionVectors) -> bool:
    packet = vectors.retry_packet
    tag = retry_integrity_tag(packet[:-16], vectors.dcid, vectors.version)
    return tag == packet[-16:] and verify_retry_integrity(packet, vectors.dcid, vectors.version)


def _chacha20(vectors: VersionVectors) -> bool:
    suite = CipherSuite.CHACHA20_POLY1305_SHA256
    vector = vectors.chacha20_short
    material = derive_packet_keys(suite, vector.secret, vectors.version)
    protection = PacketProtection(suite, vector.secret, vectors.version)
    pn_length = len(vector.header) - vector.pn_offset
    protected = protection.protect(
        vector.header, vector.payload, vector.packet_number, vector.pn_offset, pn_length
    )
    opened = protection.unprotect(vector.packet, vector.pn_offset, vector.packet_number)
    return (
        (material.key, material.iv, material.hp) == (vector.key, vector.iv, vector.hp)
        and next_generation_secret(suite, vector.secret, vectors.version) == vector.ku
        and protected == vector.packet
        and isinstance(opened, UnprotectedPacket)
        and opened.payload == vector.payload
    )


def _checks(vectors: VersionVectors) -> list[Check]:
    name, version = vectors.name, vectors.version

    def secrets() -> bool:
        client, server = initial_secrets(vectors.dcid, version)
        return (
            client == vectors.client_keys.secret
            and server == vectors.server_keys.secret
            and _keys_match(vectors.client_keys, version)
            and _keys_match(vectors.server_keys, version)
        )

    return [
        (f"{name} A.1 Initial secrets and keys", secrets),
        (
            f"{name} A.2 client Initial",
            lambda: _initial_round_trip(vectors.client_keys.secret, vectors.client_initial, version),
        ),
        (
            f"{name} A.3 server Initial",
            lambda: _initial_round_trip(vectors.server_keys.secret, vectors.server_initial, version),
        ),
        (f"{name} A.4 Retry integrity tag", lambda: _retry(vectors)),
        (f"{name} A.5 ChaCha20-Poly1305 short header packet", lambda: _chacha20(vectors)),
    ]


def run_selfcheck(out: Callable[[str], None]) -> int:
    """Run every vector check, print one ``ok ...``/``FAIL ...`` line per check; return 0 if all pass.

    A check that raises counts as a failure (its exception is reported on its line) so one broken
    primitive does not hide the others.
    """
    failures = 0
    for vectors in ALL_VECTORS:
        for label, check in _checks(vectors):
            try:
                passed = check()
                detail = ""
            except Exception as exc:  # a crash is reported as a failed check, never propagated
                passed = False
                detail = f" ({type(exc).__name__}: {exc})"
            if not passed:
                failures += 1
            out(f"{'ok' if passed else 'FAIL'} {label}{detail}")
    out(f"{'all checks passed' if failures == 0 else f'{failures} check(s) failed'}")
    return 0 if failures == 0 else 1
