"""Packet headers, coalescing and packet numbers (RFC 9000 §17, §12.2, Appendix A.2/A.3; RFC 9369)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rudp.codec.codes import PacketType, Version
from rudp.codec.packet import (
    KEY_PHASE_BIT,
    PacketHeader,
    decode_packet_number,
    encode_long_header,
    encode_packet_number,
    encode_retry,
    encode_short_header,
    encode_version_negotiation,
    iter_packets,
    parse_header,
)
from rudp.errors import DecodeError, TransportErrorCode
from tests.strategies import cids

LONG_TYPES = [PacketType.INITIAL, PacketType.ZERO_RTT, PacketType.HANDSHAKE]


@given(
    packet_type=st.sampled_from(LONG_TYPES),
    version=st.sampled_from([Version.V1, Version.V2]),
    dcid=cids,
    scid=cids,
    token=st.binary(max_size=64),
    pn_length=st.integers(min_value=1, max_value=4),
    body=st.binary(min_size=0, max_size=100),
)
def test_long_header_round_trip(
    packet_type: PacketType, version: int, dcid: bytes, scid: bytes, token: bytes, pn_length: int, body: bytes
) -> None:
    pn = 0x01020304 & ((1 << (8 * pn_length)) - 1)
    header = encode_long_header(
        packet_type,
        version,
        dcid,
        scid,
        token=token,
        length=pn_length + len(body) + 16,
        packet_number=pn,
        pn_length=pn_length,
    )
    packet = header + body + bytes(16)
    parsed = parse_header(packet)
    assert parsed.is_long and parsed.version == version and parsed.packet_type is packet_type
    assert (parsed.dcid, parsed.scid) == (dcid, scid)
    assert parsed.token == (token if packet_type is PacketType.INITIAL else b"")
    assert parsed.pn_offset == len(header) - pn_length
    assert parsed.end == len(packet)
    assert parsed.first_byte & 0x03 == pn_length - 1
    assert int.from_bytes(packet[parsed.pn_offset : parsed.pn_offset + pn_length], "big") == pn
    # built in C (tuple.__new__): the same value, field by field, as the NamedTuple's own constructor
    general = PacketHeader(
        packet[0], True, version, packet_type, dcid, scid, parsed.token, 0, parsed.pn_offset, len(packet)
    )
    assert type(parsed) is PacketHeader and parsed == general and parsed._asdict() == general._asdict()


def test_long_header_type_bits_differ_between_v1_and_v2() -> None:
    # RFC 9369 §3.2: Initial is 0b01 in v2, 0b00 in v1.
    v1 = encode_long_header(PacketType.INITIAL, Version.V1, b"", b"", length=17, packet_number=0, pn_length=1)
    v2 = encode_long_header(PacketType.INITIAL, Version.V2, b"", b"", length=17, packet_number=0, pn_length=1)
    assert (v1[0] >> 4) & 3 == 0 and (v2[0] >> 4) & 3 == 1
    retry_v2 = encode_retry(Version.V2, b"a", b"b", b"token", bytes(16))
    assert (retry_v2[0] >> 4) & 3 == 0
    assert parse_header(retry_v2).packet_type is PacketType.RETRY


@given(
    dcid=cids,
    pn_length=st.integers(1, 4),
    spin=st.booleans(),
    key_phase=st.booleans(),
    body=st.binary(min_size=1, max_size=50),
)
def test_short_header_round_trip(
    dcid: bytes, pn_length: int, spin: bool, key_phase: bool, body: bytes
) -> None:
    header = encode_short_header(
        dcid, packet_number=5, pn_length=pn_length, spin_bit=spin, key_phase=key_phase
    )
    packet = header + body
    parsed = parse_header(packet, short_dcid_length=len(dcid))
    assert not parsed.is_long and parsed.packet_type is PacketType.ONE_RTT
    assert parsed.dcid == dcid and parsed.pn_offset == 1 + len(dcid) and parsed.end == len(packet)
    assert parsed.spin_bit is spin
    assert bool(parsed.first_byte & KEY_PHASE_BIT) is key_phase
    general = PacketHeader(
        packet[0], False, None, PacketType.ONE_RTT, dcid, b"", b"", 0, 1 + len(dcid), len(packet)
    )
    assert type(parsed) is PacketHeader and parsed == general and parsed._asdict() == general._asdict()


@given(
    dcid=cids,
    scid=cids,
    token=st.binary(min_size=1, max_size=80),
    tag=st.binary(min_size=16, max_size=16),
    version=st.sampled_from([Version.V1, Version.V2]),
)
def test_retry_round_trip(dcid: bytes, scid: bytes, token: bytes, tag: bytes, version: int) -> None:
    parsed = parse_header(encode_retry(version, dcid, scid, token, tag))
    assert parsed.packet_type is PacketType.RETRY
    assert (parsed.dcid, parsed.scid, parsed.token, parsed.integrity_tag) == (dcid, scid, token, tag)


@given(
    dcid=st.binary(max_size=255),
    scid=st.binary(max_size=255),
    versions=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=10),
)
def test_version_negotiation_round_trip(dcid: bytes, scid: bytes, versions: list[int]) -> None:
    packet = encode_version_negotiation(dcid, scid, versions, unused_bits=0x55)
    parsed = parse_header(packet)
    assert parsed.packet_type is PacketType.VERSION_NEGOTIATION and parsed.version == 0
    assert (parsed.dcid, parsed.scid, parsed.supported_versions) == (dcid, scid, tuple(versions))


def test_unsupported_version_exposes_invariant_fields() -> None:
    # RFC 8999 §5.1: an unknown version's CIDs can be up to 255 bytes and are still readable.
    packet = (
        bytes([0xC0])
        + (0x1A2A3A4A).to_bytes(4, "big")
        + bytes([30])
        + bytes(30)
        + bytes([3])
        + b"abc"
        + bytes(1200)
    )
    parsed = parse_header(packet)
    assert parsed.packet_type is None and parsed.version == 0x1A2A3A4A
    assert parsed.dcid == bytes(30) and parsed.scid == b"abc"


def test_cid_over_20_bytes_in_v1_rejected() -> None:
    packet = bytes([0xC0]) + (1).to_bytes(4, "big") + bytes([21]) + bytes(21) + bytes(30)
    with pytest.raises(DecodeError) as info:
        parse_header(packet)
    assert info.value.code == TransportErrorCode.PROTOCOL_VIOLATION


def test_fixed_bit_zero_rejected() -> None:
    with pytest.raises(DecodeError):
        parse_header(bytes([0x00, 1, 2, 3]))
    header = bytearray(
        encode_long_header(PacketType.HANDSHAKE, 1, b"", b"", length=20, packet_number=0, pn_length=1)
    )
    header[0] &= ~0x40
    with pytest.raises(DecodeError):
        parse_header(bytes(header) + bytes(19))


def test_length_beyond_datagram_rejected() -> None:
    header = encode_long_header(PacketType.HANDSHAKE, 1, b"x", b"y", length=100, packet_number=0, pn_length=1)
    with pytest.raises(DecodeError):
        parse_header(header + bytes(10))


def test_coalesced_datagram_is_split_by_length() -> None:
    initial = encode_long_header(
        PacketType.INITIAL, 1, b"d", b"s", token=b"t", length=21, packet_number=0, pn_length=1
    )
    initial += bytes(20)
    handshake = encode_long_header(
        PacketType.HANDSHAKE, 1, b"d", b"s", length=31, packet_number=1, pn_length=1
    )
    handshake += bytes(30)
    short = encode_short_header(b"d", packet_number=2, pn_length=1) + bytes(40)
    datagram = initial + handshake + short
    headers = list(iter_packets(datagram, short_dcid_length=1))
    assert [h.packet_type for h in headers] == [PacketType.INITIAL, PacketType.HANDSHAKE, PacketType.ONE_RTT]
    assert [(h.start, h.end) for h in headers] == [
        (0, len(initial)),
        (len(initial), len(initial) + len(handshake)),
        (len(initial) + len(handshake), len(datagram)),
    ]

    # The first header handed in (parsed by the caller already) is yielded as it is, the rest parsed:
    # the same headers as parsing them all.
    first = parse_header(datagram, short_dcid_length=1)
    handed = list(iter_packets(datagram, short_dcid_length=1, first=first))
    assert handed == headers and handed[0] is first


def test_packet_header_is_an_immutable_value() -> None:
    """PacketHeader is a NamedTuple (cheaper to build than a frozen dataclass): still immutable, equal
    by value, with its defaults and the spin bit of a short header."""
    datagram = encode_short_header(b"d", packet_number=2, pn_length=1) + bytes(40)
    header = parse_header(datagram, short_dcid_length=1)
    with pytest.raises(AttributeError):
        header.dcid = b"x"  # type: ignore[misc]
    assert header == parse_header(bytes(datagram), short_dcid_length=1) and header is not None
    assert (header.scid, header.token, header.integrity_tag, header.supported_versions) == (b"", b"", b"", ())
    assert header.spin_bit is False and header._replace(first_byte=header.first_byte | 0x20).spin_bit is True


# https://www.rfc-editor.org/rfc/rfc9000#appendix-A.2 and #appendix-A.3
def test_rfc9000_packet_number_examples() -> None:
    assert encode_packet_number(0xAC5C02, 0xABE8B3)[1] == 2
    assert encode_packet_number(0xACE8FE, 0xABE8B3)[1] == 3
    assert encode_packet_number(0xACE8FE, 0xABE8B3)[0] == 0xACE8FE
    assert decode_packet_number(0x9B32, 16, 0xA82F30EA + 1) == 0xA82F9B32


@given(largest=st.integers(0, 2**40), delta=st.integers(1, 2**30))
def test_packet_number_round_trip(largest: int, delta: int) -> None:
    pn = largest + delta
    truncated, length = encode_packet_number(pn, largest)
    # The receiver may have seen anything up to the largest acknowledged packet.
    assert decode_packet_number(truncated, 8 * length, largest + 1) == pn


def test_packet_number_length_follows_rfc_9000_appendix_a2() -> None:
    # The length as Appendix A.2 writes it (min_bits, then whole bytes), for every distance up to
    # three bytes' worth and around each power of two beyond.
    def reference(packet_number: int, largest: int | None) -> int:
        unacked = packet_number + 1 if largest is None else packet_number - largest
        min_bits = max(1, (2 * unacked).bit_length())
        return max(1, (min_bits + 7) // 8)

    distances = list(range(0, 70_000)) + [2**k + d for k in range(16, 31) for d in (-1, 0, 1)]
    for distance in distances:
        assert encode_packet_number(1000 + distance, 1000)[1] == reference(1000 + distance, 1000)
        if distance < 2**31:
            assert encode_packet_number(distance, None)[1] == reference(distance, None)


def test_packet_number_first_packet() -> None:
    assert encode_packet_number(0, None) == (0, 1)
    assert decode_packet_number(0, 8, 0) == 0


def test_packet_number_too_far_ahead() -> None:
    with pytest.raises(ValueError):
        encode_packet_number(2**40, 0)


@pytest.mark.parametrize("packet_type", LONG_TYPES)
def test_every_truncation_of_a_long_header_is_rejected(packet_type: PacketType) -> None:
    # The index-based reader of Initial/0-RTT/Handshake headers checks each field against the end.
    header = encode_long_header(
        packet_type, Version.V1, b"d" * 8, b"s" * 5, token=b"tok" if packet_type is PacketType.INITIAL
        else b"", length=300, packet_number=7, pn_length=2
    )
    packet = header + bytes(298)
    parsed = parse_header(packet)
    assert (parsed.dcid, parsed.scid, parsed.pn_offset, parsed.end) == (
        b"d" * 8, b"s" * 5, len(header) - 2, len(packet)
    )
    for cut in range(1, len(packet)):
        with pytest.raises(DecodeError):
            parse_header(packet[:cut])
    # a packet that starts later in a datagram is read from its offset
    assert parse_header(b"xyz" + packet, 3).end == 3 + len(packet)


def _varint_of_width(value: int, width: int) -> bytes:
    prefix = {1: 0x00, 2: 0x40, 4: 0x80, 8: 0xC0}[width]
    return (value | (prefix << (8 * width - 8))).to_bytes(width, "big")


@given(
    version=st.sampled_from([Version.V1, Version.V2]),
    packet_type=st.sampled_from([PacketType.INITIAL, PacketType.HANDSHAKE]),
    dcid=cids,
    scid=cids,
    token=st.binary(max_size=70),
    token_width=st.sampled_from([1, 2, 4, 8]),
    length_width=st.sampled_from([1, 2, 4, 8]),
    body=st.integers(1, 200),
    extra=st.integers(-3, 3),
)
def test_long_header_varints_of_every_width_parse_alike(
    version: int,
    packet_type: PacketType,
    dcid: bytes,
    scid: bytes,
    token: bytes,
    token_width: int,
    length_width: int,
    body: int,
    extra: int,
) -> None:
    """The index-based reading of a long header's token length and Length (one- and two-byte varints
    read inline, the others by the general varint reader) gives what a Reader gives, for bytes and
    for a view, and refuses the same truncated headers."""
    from rudp.codec.buffer import Reader
    from rudp.codec.packet import long_type_bits

    if length_width == 1 and body > 63:
        body = 63
    bits = long_type_bits(packet_type, version)
    head = bytes([0xC0 | bits << 4]) + version.to_bytes(4, "big")
    head += bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
    if packet_type is PacketType.INITIAL:
        head += _varint_of_width(len(token), token_width) + token
    datagram = head + _varint_of_width(body, length_width) + bytes(max(0, body + extra))
    reader = Reader(datagram)
    reader.pull_bytes(7 + len(dcid) + len(scid))
    expected_token = reader.pull_bytes(reader.pull_varint()) if packet_type is PacketType.INITIAL else b""
    length = reader.pull_varint()
    start = reader.position
    expected = (expected_token, start, start + length) if length <= reader.remaining else None
    for data in (datagram, memoryview(datagram)):
        if expected is None:
            with pytest.raises(DecodeError):
                parse_header(data)
            continue
        header = parse_header(data)
        assert (header.token, header.pn_offset, header.end) == expected
        assert (header.dcid, header.scid) == (dcid, scid) and type(header.dcid) is bytes is type(header.token)
