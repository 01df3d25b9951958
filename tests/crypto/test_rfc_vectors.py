"""RFC 9001 Appendix A (QUIC v1) and RFC 9369 Appendix A (QUIC v2) sample packet protection, byte for byte.

The hex constants live in :mod:`rudp.crypto.vectors`, each under the URL of its appendix section:
https://www.rfc-editor.org/rfc/rfc9001#appendix-A and https://www.rfc-editor.org/rfc/rfc9369#appendix-A
"""

from __future__ import annotations

import pytest

from rudp.codec.codes import Version
from rudp.crypto.keys import (
    INITIAL_SUITE,
    derive_packet_keys,
    initial_salt,
    initial_secrets,
    next_generation_secret,
)
from rudp.crypto.protection import PacketProtection, UnprotectedPacket
from rudp.crypto.retry import retry_integrity_tag, verify_retry_integrity
from rudp.crypto.suites import CipherSuite
from rudp.crypto.vectors import (
    ALL_VECTORS,
    RFC9001_VECTORS,
    RFC9369_VECTORS,
    InitialKeys,
    InitialPacketVector,
    VersionVectors,
)

CHACHA = CipherSuite.CHACHA20_POLY1305_SHA256

by_version = pytest.mark.parametrize("vectors", ALL_VECTORS, ids=["rfc9001-v1", "rfc9369-v2"])


def test_vector_sets_name_their_versions() -> None:
    assert RFC9001_VECTORS.version == Version.V1
    assert RFC9369_VECTORS.version == Version.V2


def test_salts_match_the_spec_text() -> None:
    # https://www.rfc-editor.org/rfc/rfc9001#section-5.2
    assert initial_salt(Version.V1) == bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
    # https://www.rfc-editor.org/rfc/rfc9369#section-3.3.1
    assert initial_salt(Version.V2) == bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9")


# --- A.1 Keys ----------------------------------------------------------------------------------------


@by_version
def test_a1_initial_secrets(vectors: VersionVectors) -> None:
    client, server = initial_secrets(vectors.dcid, vectors.version)
    assert client == vectors.client_keys.secret
    assert server == vectors.server_keys.secret


@by_version
@pytest.mark.parametrize("side", ["client", "server"])
def test_a1_packet_keys(vectors: VersionVectors, side: str) -> None:
    expected: InitialKeys = getattr(vectors, f"{side}_keys")
    material = derive_packet_keys(INITIAL_SUITE, expected.secret, vectors.version)
    assert material.key == expected.key
    assert material.iv == expected.iv
    assert material.hp == expected.hp


# --- A.2 Client Initial and A.3 Server Initial --------------------------------------------------------


def _initial_cases() -> list[tuple[VersionVectors, str]]:
    return [(v, side) for v in ALL_VECTORS for side in ("client", "server")]


def _case_id(case: tuple[VersionVectors, str]) -> str:
    vectors, side = case
    return f"{vectors.name.replace(' ', '').lower()}-{side}"


@pytest.fixture(params=_initial_cases(), ids=_case_id)
def initial_case(request: pytest.FixtureRequest) -> tuple[PacketProtection, InitialPacketVector]:
    vectors, side = request.param
    secret = getattr(vectors, f"{side}_keys").secret
    vector = getattr(vectors, f"{side}_initial")
    return PacketProtection(INITIAL_SUITE, secret, vectors.version), vector


def test_a2_a3_protect_gives_the_published_packet(
    initial_case: tuple[PacketProtection, InitialPacketVector],
) -> None:
    protection, v = initial_case
    pn_length = len(v.header) - v.pn_offset
    packet = protection.protect(v.header, v.payload, v.packet_number, v.pn_offset, pn_length)
    assert packet == v.packet
    assert packet[: len(v.protected_header)] == v.protected_header


def test_a2_a3_sample_and_mask(initial_case: tuple[PacketProtection, InitialPacketVector]) -> None:
    protection, v = initial_case
    start = v.pn_offset + 4
    assert v.packet[start : start + 16] == v.sample
    assert protection.header_mask(v.sample) == v.mask


def test_a2_a3_unprotect_gives_back_header_and_payload(
    initial_case: tuple[PacketProtection, InitialPacketVector],
) -> None:
    protection, v = initial_case
    result = protection.unprotect(v.packet, v.pn_offset, 0)
    assert isinstance(result, UnprotectedPacket)
    assert result.header == v.header
    assert result.first_byte == v.header[0]
    assert result.payload == v.payload
    assert result.packet_number == v.packet_number
    assert result.pn_length == len(v.header) - v.pn_offset
    assert result.key_phase == 0


def test_a2_client_initial_is_padded_to_1200_bytes() -> None:
    for vectors in ALL_VECTORS:
        assert len(vectors.client_initial.payload) == 1162
        assert len(vectors.client_initial.packet) == 1200


# --- A.4 Retry ---------------------------------------------------------------------------------------


@by_version
def test_a4_retry_tag(vectors: VersionVectors) -> None:
    packet = vectors.retry_packet
    assert retry_integrity_tag(packet[:-16], vectors.dcid, vectors.version) == packet[-16:]
    assert verify_retry_integrity(packet, vectors.dcid, vectors.version)


# --- A.5 ChaCha20-Poly1305 short header packet -------------------------------------------------------


@by_version
def test_a5_chacha20_keys_and_key_update_secret(vectors: VersionVectors) -> None:
    v = vectors.chacha20_short
    material = derive_packet_keys(CHACHA, v.secret, vectors.version)
    assert (material.key, material.iv, material.hp) == (v.key, v.iv, v.hp)
    assert next_generation_secret(CHACHA, v.secret, vectors.version) == v.ku
    assert PacketProtection(CHACHA, v.secret, vectors.version).next_generation().secret == v.ku


@by_version
def test_a5_chacha20_nonce(vectors: VersionVectors) -> None:
    v = vectors.chacha20_short
    nonce = (int.from_bytes(v.iv, "big") ^ v.packet_number).to_bytes(12, "big")
    assert nonce == v.nonce


@by_version
def test_a5_chacha20_protect(vectors: VersionVectors) -> None:
    v = vectors.chacha20_short
    protection = PacketProtection(CHACHA, v.secret, vectors.version)
    packet = protection.protect(v.header, v.payload, v.packet_number, v.pn_offset, len(v.header) - 1)
    assert packet == v.packet
    assert len(packet) == 21
    assert packet[len(v.header) :] == v.ciphertext
    assert packet[: len(v.header)] == v.protected_header
    assert protection.header_mask(v.sample) == v.mask


@by_version
def test_a5_chacha20_unprotect(vectors: VersionVectors) -> None:
    v = vectors.chacha20_short
    protection = PacketProtection(CHACHA, v.secret, vectors.version)
    result = protection.unprotect(memoryview(v.packet), v.pn_offset, v.packet_number - 1000)
    assert isinstance(result, UnprotectedPacket)
    assert result.packet_number == v.packet_number
    assert result.pn_length == 3
    assert result.header == v.header
    assert result.payload == v.payload
    assert result.key_phase == 0
