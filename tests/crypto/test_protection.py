"""PacketProtection properties: round trips for every suite and header form, tampering and truncation
yield DecryptFailed (never an exception), key update generations, and sender-misuse errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.codec.codes import Version
from rudp.crypto.keys import derive_packet_keys, initial_secrets, labels_for, next_generation_secret
from rudp.crypto.protection import (
    AUTHENTICATION_FAILED,
    TOO_SHORT,
    DecryptFailed,
    PacketProtection,
    UnprotectedPacket,
    encode_packet_number,
    min_payload_length,
)
from rudp.crypto.suites import SUITE_HASH, CipherSuite

SUITES = list(CipherSuite)
VERSIONS = [Version.V1, Version.V2]
SECRET_LENGTH = {"sha256": 32, "sha384": 48}


def _secret(suite: CipherSuite, fill: int = 0x5A) -> bytes:
    return bytes([fill]) * SECRET_LENGTH[SUITE_HASH[suite]]


def _long_header(pn: int, pn_length: int, dcid: bytes, payload_length: int) -> tuple[bytes, int]:
    """A Handshake-like long header ending with the truncated packet number; returns (header, pn_offset)."""
    length = pn_length + payload_length + 16
    head = (
        bytes([0xE0 | (pn_length - 1)])
        + Version.V1.to_bytes(4, "big")
        + bytes([len(dcid)])
        + dcid
        + b"\x00"  # empty SCID
        + (0x4000 | length).to_bytes(2, "big")  # 2-byte varint Length
    )
    return head + pn.to_bytes(pn_length, "big"), len(head)


def _short_header(pn: int, pn_length: int, dcid: bytes, key_phase: int) -> tuple[bytes, int]:
    head = bytes([0x40 | (key_phase << 2) | (pn_length - 1)]) + dcid
    return head + pn.to_bytes(pn_length, "big"), len(head)


packet_cases = st.fixed_dictionaries(
    {
        "suite": st.sampled_from(SUITES),
        "version": st.sampled_from(VERSIONS),
        "long": st.booleans(),
        "key_phase": st.integers(0, 1),
        "dcid": st.binary(min_size=0, max_size=20),
        "pn_length": st.integers(1, 4),
        "packet_number": st.integers(0, (1 << 62) - 1),
        "extra_payload": st.binary(max_size=64),
    }
)


def _build(case: dict[str, object]) -> tuple[PacketProtection, bytes, bytes, bytes, int, int, int]:
    """Protect one packet; return (protection, header, payload, packet, pn_offset, pn, expected_pn)."""
    suite = case["suite"]
    version = case["version"]
    pn_length = case["pn_length"]
    pn = case["packet_number"]
    dcid = case["dcid"]
    assert isinstance(suite, CipherSuite) and isinstance(version, int)
    assert isinstance(pn_length, int) and isinstance(pn, int) and isinstance(dcid, bytes)
    extra = case["extra_payload"]
    assert isinstance(extra, bytes)
    payload = b"\x01" * min_payload_length(pn_length) + extra
    truncated = pn & ((1 << (8 * pn_length)) - 1)
    if case["long"]:
        header, pn_offset = _long_header(truncated, pn_length, dcid, len(payload))
    else:
        key_phase = case["key_phase"]
        assert isinstance(key_phase, int)
        header, pn_offset = _short_header(truncated, pn_length, dcid, key_phase)
    protection = PacketProtection(suite, _secret(suite), version)
    packet = protection.protect(header, payload, pn, pn_offset, pn_length)
    # the receiver's expected_pn: anything within half the window of the real number works
    expected = max(0, pn - (1 << (8 * pn_length - 2)))
    return protection, header, payload, packet, pn_offset, pn, expected


@settings(max_examples=200)
@given(case=packet_cases)
def test_round_trip(case: dict[str, object]) -> None:
    protection, header, payload, packet, pn_offset, pn, expected = _build(case)
    assert len(packet) == len(header) + len(payload) + 16
    assert packet[1:pn_offset] == header[1:pn_offset]  # only the first byte and the PN are masked
    result = protection.unprotect(packet, pn_offset, expected)
    assert isinstance(result, UnprotectedPacket)
    assert result.header == header
    assert result.first_byte == header[0]
    assert result.payload == payload
    assert result.packet_number == pn
    assert result.pn_length == case["pn_length"]
    assert result.key_phase == (0 if case["long"] else case["key_phase"])


@given(case=packet_cases, data=st.data())
def test_round_trip_from_memoryview_inside_a_datagram(case: dict[str, object], data: st.DataObject) -> None:
    protection, _, payload, packet, pn_offset, pn, expected = _build(case)
    before = data.draw(st.binary(max_size=40))
    after = data.draw(st.binary(max_size=40))
    view = memoryview(before + packet + after)[len(before) : len(before) + len(packet)]
    result = protection.unprotect(view, pn_offset, expected)
    assert isinstance(result, UnprotectedPacket)
    assert (result.payload, result.packet_number) == (payload, pn)


@settings(max_examples=300)
@given(case=packet_cases, data=st.data())
def test_any_flipped_byte_fails(case: dict[str, object], data: st.DataObject) -> None:
    protection, _, _, packet, pn_offset, _, expected = _build(case)
    index = data.draw(st.integers(0, len(packet) - 1))
    flip = data.draw(st.integers(1, 255))
    tampered = bytearray(packet)
    tampered[index] ^= flip
    result = protection.unprotect(bytes(tampered), pn_offset, expected)
    assert isinstance(result, DecryptFailed)


@given(case=packet_cases, data=st.data())
def test_truncated_packet_fails(case: dict[str, object], data: st.DataObject) -> None:
    protection, _, _, packet, pn_offset, _, expected = _build(case)
    cut = data.draw(st.integers(0, len(packet) - 1))
    result = protection.unprotect(packet[:cut], pn_offset, expected)
    assert isinstance(result, DecryptFailed)
    if cut < pn_offset + 20:
        assert result is TOO_SHORT


@settings(max_examples=300)
@given(
    suite=st.sampled_from(SUITES),
    packet=st.binary(max_size=80),
    pn_offset=st.integers(-5, 90),
    expected=st.integers(0, (1 << 62) - 1),
)
def test_random_bytes_never_raise(suite: CipherSuite, packet: bytes, pn_offset: int, expected: int) -> None:
    protection = PacketProtection(suite, _secret(suite), Version.V1)
    assert isinstance(protection.unprotect(packet, pn_offset, expected), DecryptFailed)


def test_wrong_keys_fail_authentication() -> None:
    client_secret, server_secret = initial_secrets(b"\x01" * 8, Version.V1)
    sender = PacketProtection(CipherSuite.AES_128_GCM_SHA256, client_secret, Version.V1)
    other = PacketProtection(CipherSuite.AES_128_GCM_SHA256, server_secret, Version.V1)
    header, pn_offset = _short_header(7, 1, b"", 0)
    packet = sender.protect(header, b"\x01\x00\x00\x00", 7, pn_offset, 1)
    assert other.unprotect(packet, pn_offset, 0) is AUTHENTICATION_FAILED


def test_v1_and_v2_keys_differ() -> None:
    secret = _secret(CipherSuite.AES_128_GCM_SHA256)
    v1 = derive_packet_keys(CipherSuite.AES_128_GCM_SHA256, secret, Version.V1)
    v2 = derive_packet_keys(CipherSuite.AES_128_GCM_SHA256, secret, Version.V2)
    assert v1.key != v2.key and v1.iv != v2.iv and v1.hp != v2.hp


# --- key update (RFC 9001 §6) ------------------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("version", VERSIONS)
def test_key_update_generations(suite: CipherSuite, version: int) -> None:
    gen0 = PacketProtection(suite, _secret(suite), version)
    gen1 = gen0.next_generation()
    gen2 = gen1.next_generation()
    assert gen1.secret == next_generation_secret(suite, gen0.secret, version)
    assert gen2.secret == next_generation_secret(suite, gen1.secret, version)
    # RFC 9001 §6: the header-protection key is not updated, although the new secret would derive
    # a different one; every generation keeps masking with the original key.
    assert (
        derive_packet_keys(suite, gen1.secret, version).hp
        != derive_packet_keys(suite, gen0.secret, version).hp
    )
    sample = bytes(range(16))
    assert gen1.header_mask(sample) == gen0.header_mask(sample) == gen2.header_mask(sample)

    header, pn_offset = _short_header(9, 2, b"\xaa" * 8, 1)
    payload = b"\x01" * 20
    packet = gen1.protect(header, payload, 9, pn_offset, 2)
    # Header protection still comes off with the old generation, but the payload does not decrypt.
    assert gen0.unprotect(packet, pn_offset, 0) is AUTHENTICATION_FAILED
    assert gen2.unprotect(packet, pn_offset, 0) is AUTHENTICATION_FAILED
    opened = gen1.unprotect(packet, pn_offset, 0)
    assert isinstance(opened, UnprotectedPacket)
    assert (opened.payload, opened.key_phase) == (payload, 1)
    # The old generation stays usable for late packets of its own phase.
    old = gen0.protect(header, payload, 9, pn_offset, 2)
    assert isinstance(gen0.unprotect(old, pn_offset, 0), UnprotectedPacket)


def test_ku_label_depends_on_version() -> None:
    assert labels_for(Version.V1).ku == b"quic ku"
    assert labels_for(Version.V2).ku == b"quicv2 ku"


# --- misuse ------------------------------------------------------------------------------------------


def test_unknown_version_is_rejected() -> None:
    with pytest.raises(ValueError):
        initial_secrets(b"\x00" * 8, 0xFF00001D)
    with pytest.raises(ValueError):
        PacketProtection(CipherSuite.AES_128_GCM_SHA256, bytes(32), 0x0A0A0A0A)


def test_protect_refuses_a_payload_too_short_to_sample() -> None:
    protection = PacketProtection(CipherSuite.AES_128_GCM_SHA256, bytes(32), Version.V1)
    header, pn_offset = _short_header(1, 1, b"", 0)
    with pytest.raises(ValueError):
        protection.protect(header, b"\x01\x00", 1, pn_offset, 1)
    assert len(protection.protect(header, b"\x01\x00\x00", 1, pn_offset, 1)) == 2 + 3 + 16


def test_protect_refuses_a_header_not_ending_with_the_pn() -> None:
    protection = PacketProtection(CipherSuite.AES_128_GCM_SHA256, bytes(32), Version.V1)
    header, pn_offset = _short_header(1, 2, b"", 0)
    with pytest.raises(ValueError):
        protection.protect(header + b"\x00", b"\x01" * 4, 1, pn_offset, 2)


def test_encoded_pn_length_fits_the_first_byte() -> None:
    truncated, length = encode_packet_number(0xACE8FE, 0xABE8B3)
    header, pn_offset = _short_header(truncated, length, b"\x01\x02", 0)
    protection = PacketProtection(CipherSuite.CHACHA20_POLY1305_SHA256, bytes(32), Version.V2)
    packet = protection.protect(header, b"\x01", 0xACE8FE, pn_offset, length)
    result = protection.unprotect(packet, pn_offset, 0xABE8B4)
    assert isinstance(result, UnprotectedPacket)
    assert result.packet_number == 0xACE8FE


@settings(max_examples=100)
@given(case=packet_cases, data=st.data())
def test_a_kept_opened_packet_serves_only_the_same_bytes_once(
    case: dict[str, object], data: st.DataObject
) -> None:
    """open_and_keep (a server's admission check) hands its result to the next unprotect of the very
    same bytes only: once, and never for other bytes (a flipped byte still fails authentication)."""
    protection, _, payload, packet, pn_offset, _pn, expected = _build(case)
    kept = protection.open_and_keep(memoryview(packet), pn_offset, expected)
    assert isinstance(kept, UnprotectedPacket) and kept.payload == payload
    index = data.draw(st.integers(0, len(packet) - 1))
    tampered = bytearray(packet)
    tampered[index] ^= data.draw(st.integers(1, 255))
    assert isinstance(protection.unprotect(bytes(tampered), pn_offset, expected), DecryptFailed)
    # the tampered packet consumed the kept result: the genuine one is opened afresh (equal, not kept)
    again = protection.unprotect(packet, pn_offset, expected)
    assert again == kept and again is not kept
    kept_again = protection.open_and_keep(packet, pn_offset, expected)
    first = protection.unprotect(memoryview(packet), pn_offset, expected)  # (a view of the same bytes)
    second = protection.unprotect(packet, pn_offset, expected)
    assert first is kept_again and second == kept and first is not second
    # a view of other bytes never gets the kept result either
    protection.open_and_keep(memoryview(packet), pn_offset, expected)
    assert isinstance(protection.unprotect(memoryview(tampered), pn_offset, expected), DecryptFailed)


def test_a_failed_open_keeps_nothing() -> None:
    protection = PacketProtection(CipherSuite.AES_128_GCM_SHA256, _secret(CipherSuite.AES_128_GCM_SHA256), 1)
    other = PacketProtection(CipherSuite.AES_128_GCM_SHA256, _secret(CipherSuite.AES_128_GCM_SHA256, 1), 1)
    header, pn_offset = _short_header(7, 1, b"\x01" * 8, 0)
    packet = other.protect(header, bytes(20), 7, pn_offset, 1)
    assert protection.open_and_keep(packet, pn_offset, 0) is AUTHENTICATION_FAILED
    assert protection.unprotect(packet, pn_offset, 0) is AUTHENTICATION_FAILED


def test_a_kept_packet_keeps_its_parsed_frames_and_a_failed_parse_keeps_nothing() -> None:
    from rudp.codec.frame_codec import parse_frames
    from rudp.errors import DecodeError

    suite = CipherSuite.AES_128_GCM_SHA256
    protection = PacketProtection(suite, _secret(suite), 1)
    header, pn_offset = _short_header(7, 1, b"\x01" * 8, 0)
    packet = protection.protect(header, b"\x01" + bytes(19), 7, pn_offset, 1)
    kept = protection.open_and_keep(packet, pn_offset, 0, parse_frames)
    assert isinstance(kept, UnprotectedPacket) and kept.frames == parse_frames(kept.payload)
    assert protection.unprotect(packet, pn_offset, 0) is kept
    fresh = protection.unprotect(packet, pn_offset, 0)
    assert isinstance(fresh, UnprotectedPacket) and fresh.frames is None and fresh.payload == kept.payload

    def failing(payload: bytes) -> list[tuple[int, object]]:
        raise DecodeError("bad frames")

    with pytest.raises(DecodeError):
        protection.open_and_keep(packet, pn_offset, 0, failing)  # type: ignore[arg-type]
    again = protection.unprotect(packet, pn_offset, 0)
    assert isinstance(again, UnprotectedPacket) and again.frames is None  # nothing was kept


def _short_case(case: dict[str, object]) -> dict[str, object]:
    return {**case, "long": False}


@settings(max_examples=300)
@given(case=packet_cases.map(_short_case), data=st.data())
def test_open_short_matches_unprotect(case: dict[str, object], data: st.DataObject) -> None:
    """The receive fast path's opener gives what the general one gives for a 1-RTT packet (every packet
    number length, any expected packet number, bytes or a view inside a datagram), and None whenever
    the general one fails: tampered, truncated or random bytes."""
    protection, _, _, packet, pn_offset, _, expected = _build(case)
    expected = data.draw(st.sampled_from([expected, data.draw(st.integers(0, (1 << 62) - 1))]))
    tampered = bytearray(packet)
    if data.draw(st.booleans()):
        tampered[data.draw(st.integers(0, len(packet) - 1))] ^= data.draw(st.integers(1, 255))
    cut = data.draw(st.sampled_from([len(packet), data.draw(st.integers(0, len(packet)))]))
    candidate = bytes(tampered[:cut])
    before = data.draw(st.binary(max_size=8))
    for form in (candidate, memoryview(before + candidate)[len(before) :]):
        result = protection.unprotect(form, pn_offset, expected)
        opened = protection.open_short(form, pn_offset, expected)
        if isinstance(result, DecryptFailed):
            assert opened is None
        else:
            assert opened == (result.first_byte, result.packet_number, result.payload)


@settings(max_examples=300)
@given(
    suite=st.sampled_from(SUITES),
    packet=st.binary(max_size=80),
    pn_offset=st.integers(-5, 90),
    expected=st.integers(0, (1 << 62) - 1),
)
def test_open_short_on_random_bytes_gives_none(
    suite: CipherSuite, packet: bytes, pn_offset: int, expected: int
) -> None:
    protection = PacketProtection(suite, _secret(suite), Version.V1)
    assert protection.open_short(packet, pn_offset, expected) is None


@settings(max_examples=200)
@given(case=packet_cases.map(_short_case), data=st.data())
def test_open_short_with_a_batch_mask_equals_its_own(case: dict[str, object], data: st.DataObject) -> None:
    """A receive batch's header-protection masks, computed in one call over every datagram's sample
    (header_masks, as Receiver._batch_masks does), open each packet exactly as open_short's own mask
    does, for every suite, packet number length and position in the batch; and the key update keeps
    the header-protection key (RFC 9001 §6): the next generation reads with the same masks. Fails if
    a mask came from the wrong offset or the wrong sample."""
    protection, _, _, packet, pn_offset, _, expected = _build(case)
    others = [bytes(data.draw(st.binary(min_size=pn_offset + 20, max_size=pn_offset + 40))) for _ in range(2)]
    position = data.draw(st.integers(0, len(others)))
    batch = [*others[:position], packet, *others[position:]]
    start = pn_offset + 4
    masks = protection.header_masks(b"".join(d[start : start + 16] for d in batch))
    own = protection.open_short(packet, pn_offset, expected)
    assert own is not None
    assert protection.open_short(packet, pn_offset, expected, masks, 16 * position) == own
    for index, other in enumerate(batch):
        if other is not packet:  # (random bytes: both fail the same way)
            assert protection.open_short(other, pn_offset, expected, masks, 16 * index) is None
    successor = protection.next_generation()
    assert successor.header_masks(b"".join(d[start : start + 16] for d in batch)) == masks
