"""DatagramBuilder's frame sink: ``remaining`` is an attribute kept by push_frame (no property per
question), equal to the open packet's budget less the bytes written, 0 with no packet open."""

from __future__ import annotations

import pytest

from rudp.codec.frame_codec import encode_frames
from rudp.codec.frames import Crypto, HandshakeDone, NewConnectionId, Ping
from rudp.crypto.protection import TAG_LENGTH, CipherSuite, PacketProtection
from rudp.quic.packetizer import DatagramBuilder
from rudp.quic.sent import PacketSpace

PROTECTION = PacketProtection(CipherSuite.AES_128_GCM_SHA256, bytes(32), 1)


def _open(builder: DatagramBuilder, number: int = 0, *, is_long: bool = False) -> bool:
    return builder.start_packet(
        space=PacketSpace.HANDSHAKE if is_long else PacketSpace.APPLICATION,
        protection=PROTECTION,
        first_byte=0xE0 if is_long else 0x40,
        prefix=b"\xaa" * 8,
        is_long=is_long,
        packet_number=number,
        largest_acked=None,
    )


def test_remaining_follows_every_frame_and_is_zero_between_packets() -> None:
    builder = DatagramBuilder(1200, 1.0)
    assert builder.remaining == 0
    assert _open(builder)
    budget = 1200 - (1 + 8 + 1 + TAG_LENGTH)  # first byte, DCID, 1-byte packet number, tag
    assert builder.remaining == budget
    written = 0
    for frame in (HandshakeDone(), NewConnectionId(1, 0, b"12345678", bytes(16)), Crypto(0, b"x" * 300)):
        builder.push_frame(frame)
        written += len(encode_frames([frame]))
        assert builder.remaining == budget - written
    with pytest.raises(ValueError):
        builder.push_frame(Crypto(0, b"y" * builder.remaining))  # one header too many: refused, undone
    assert builder.remaining == budget - written
    assert builder.end_packet() is not None
    assert builder.remaining == 0
    assert _open(builder, 1, is_long=True)
    second = 1200 - builder.size - (1 + 8 + 2 + 1 + TAG_LENGTH)  # and the Length field
    assert builder.remaining == second
    builder.push_frame(Ping())
    assert builder.remaining == second - 1
    builder.push_frame(Crypto(0, b"y" * (builder.remaining - 4)))  # 1 + 1 + 2 header bytes: fills it
    assert builder.remaining == 0
    assert len(builder.finish()) == 1200
    assert builder.remaining == 0


def test_a_packet_too_small_for_a_frame_is_not_opened() -> None:
    builder = DatagramBuilder(1 + 8 + 1 + TAG_LENGTH + 7, 1.0)
    assert not _open(builder)
    assert builder.remaining == 0
    with pytest.raises(ValueError):
        builder.push_frame(Ping())


@pytest.mark.parametrize("token", [None, b"", b"t" * 63, b"t" * 64, b"t" * 300])
@pytest.mark.parametrize(("dcid", "scid"), [(b"", b""), (b"d" * 8, b"s" * 8), (b"d" * 20, b"")])
def test_long_header_prefix_is_the_fields_back_to_back(dcid: bytes, scid: bytes, token: bytes | None) -> None:
    from rudp.codec.varint import encode_varint
    from rudp.quic.packetizer import long_header_prefix

    for version in (1, 0x6B3343CF):
        expected = version.to_bytes(4, "big") + bytes((len(dcid),)) + dcid + bytes((len(scid),)) + scid
        if token is not None:
            expected += encode_varint(len(token)) + token
        assert long_header_prefix(version, dcid, scid, token) == expected


def test_long_first_byte_is_the_form_fixed_and_type_bits() -> None:
    from rudp.codec.codes import PacketType
    from rudp.codec.packet import FIXED_BIT, HEADER_FORM_LONG, long_type_bits
    from rudp.quic.packetizer import long_first_byte

    for version in (1, 0x6B3343CF):
        for packet_type in (PacketType.INITIAL, PacketType.ZERO_RTT, PacketType.HANDSHAKE):
            expected = HEADER_FORM_LONG | FIXED_BIT | (long_type_bits(packet_type, version) << 4)
            assert long_first_byte(packet_type, version) == expected
    with pytest.raises(ValueError):
        long_first_byte(PacketType.INITIAL, 0x0A0A0A0A)  # no such version: refused, not cached
