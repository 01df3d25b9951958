"""Packet-number truncation and reconstruction (RFC 9000 §17.1, Appendix A.2 and A.3) as used by
packet protection (re-exported from :mod:`rudp.crypto.protection`)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rudp.crypto.protection import decode_packet_number, encode_packet_number, min_payload_length

MAX_PN = (1 << 62) - 1


# https://www.rfc-editor.org/rfc/rfc9000#appendix-A.2
@pytest.mark.parametrize(
    ("packet_number", "largest_acked", "length"),
    [(0xAC5C02, 0xABE8B3, 2), (0xACE8FE, 0xABE8B3, 3)],
)
def test_rfc9000_a2_encoding_examples(packet_number: int, largest_acked: int, length: int) -> None:
    truncated, got_length = encode_packet_number(packet_number, largest_acked)
    assert got_length == length
    assert truncated == packet_number & ((1 << (8 * length)) - 1)


# https://www.rfc-editor.org/rfc/rfc9000#appendix-A.3
def test_rfc9000_a3_decoding_example() -> None:
    assert decode_packet_number(0x9B32, 16, 0xA82F30EA + 1) == 0xA82F9B32


def test_first_packets_use_one_byte() -> None:
    assert encode_packet_number(0, None) == (0, 1)
    assert encode_packet_number(63, None) == (63, 1)
    # 201 unacknowledged packet numbers: twice that needs 9 bits.
    assert encode_packet_number(200, None) == (200, 2)


def test_too_far_ahead_is_a_sender_bug() -> None:
    with pytest.raises(ValueError):
        encode_packet_number(1 << 40, 0)


def test_min_payload_leaves_room_for_the_sample() -> None:
    # RFC 9001 §5.4.2: 3 bytes of frames with a 1-byte PN, 2 bytes with a 2-byte PN.
    assert [min_payload_length(n) for n in (1, 2, 3, 4)] == [3, 2, 1, 0]


@given(
    packet_number=st.integers(0, MAX_PN),
    gap=st.integers(1, (1 << 30) - 1),
    receiver_lag=st.integers(0, (1 << 30) - 1),
    acked=st.booleans(),
)
def test_truncate_then_reconstruct(packet_number: int, gap: int, receiver_lag: int, acked: bool) -> None:
    if acked and packet_number >= gap:
        largest_acked: int | None = packet_number - gap
    else:
        # With nothing acknowledged the whole range counts, so keep it encodable in 4 bytes.
        packet_number %= 1 << 30
        largest_acked = None
    truncated, length = encode_packet_number(packet_number, largest_acked)
    # The receiver has seen at least everything acknowledged, at most everything before this packet.
    lowest_expected = 0 if largest_acked is None else largest_acked + 1
    expected = max(lowest_expected, packet_number + 1 - receiver_lag)
    assert decode_packet_number(truncated, 8 * length, expected) == packet_number
