"""Varints and buffers (RFC 9000 §16, Appendix A.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rudp.codec.buffer import Reader, Writer
from rudp.codec.varint import VARINT_MAX, decode_varint, encode_varint, varint_size
from rudp.errors import DecodeError, TransportErrorCode
from tests.strategies import varints

# https://www.rfc-editor.org/rfc/rfc9000#appendix-A.1 (and §16's examples)
RFC_EXAMPLES = [
    ("c2197c5eff14e88c", 151_288_809_941_952_652, 8),
    ("9d7f3e7d", 494_878_333, 4),
    ("7bbd", 15_293, 2),
    ("25", 37, 1),
    ("4025", 37, 2),  # the same value in a longer (allowed) encoding
]


@pytest.mark.parametrize(("hex_bytes", "value", "size"), RFC_EXAMPLES)
def test_rfc_examples_decode(hex_bytes: str, value: int, size: int) -> None:
    data = bytes.fromhex(hex_bytes)
    assert decode_varint(data) == (value, size)
    assert Reader(data).pull_varint() == value


@pytest.mark.parametrize(("hex_bytes", "value", "size"), RFC_EXAMPLES)
def test_rfc_examples_encode(hex_bytes: str, value: int, size: int) -> None:
    assert encode_varint(value, size) == bytes.fromhex(hex_bytes)
    writer = Writer()
    writer.push_varint(value, size)
    assert writer.getvalue() == bytes.fromhex(hex_bytes)


@pytest.mark.parametrize(
    ("value", "size"),
    [(0, 1), (63, 1), (64, 2), (16383, 2), (16384, 4), (2**30 - 1, 4), (2**30, 8), (VARINT_MAX, 8)],
)
def test_boundaries(value: int, size: int) -> None:
    assert varint_size(value) == size
    assert len(encode_varint(value)) == size


@pytest.mark.parametrize("value", [-1, VARINT_MAX + 1, 2**64])
def test_out_of_range_rejected(value: int) -> None:
    with pytest.raises(ValueError):
        encode_varint(value)
    with pytest.raises(ValueError):
        Writer().push_varint(value)


def test_value_too_big_for_requested_size() -> None:
    with pytest.raises(ValueError):
        encode_varint(64, 1)
    with pytest.raises(ValueError):
        encode_varint(1, 3)


@given(varints)
def test_round_trip(value: int) -> None:
    writer = Writer()
    writer.push_varint(value)
    data = writer.getvalue()
    assert data == encode_varint(value)
    assert decode_varint(data) == (value, len(data))
    reader = Reader(data)
    assert reader.pull_varint() == value
    assert reader.eof()


@given(varints, st.sampled_from([1, 2, 4, 8]))
def test_round_trip_any_size(value: int, size: int) -> None:
    if varint_size(value) > size:
        return
    assert decode_varint(encode_varint(value, size)) == (value, size)


@given(st.binary(max_size=9))
def test_truncated_raises_decode_error(data: bytes) -> None:
    try:
        value, end = decode_varint(data)
    except DecodeError as exc:
        assert exc.code == TransportErrorCode.FRAME_ENCODING_ERROR
        assert not data or len(data) < 1 << (data[0] >> 6)
    else:
        assert end == 1 << (data[0] >> 6)
        assert 0 <= value <= VARINT_MAX


def test_reader_bounds_raise_decode_error() -> None:
    reader = Reader(b"\x01\x02\x03", error_code=TransportErrorCode.TRANSPORT_PARAMETER_ERROR)
    assert reader.pull_uint16() == 0x0102
    with pytest.raises(DecodeError) as info:
        reader.pull_uint16()
    assert info.value.code == TransportErrorCode.TRANSPORT_PARAMETER_ERROR
    with pytest.raises(DecodeError):
        reader.pull_bytes(-1)


def test_writer_block_patches_length() -> None:
    writer = Writer()
    with writer.block(2):
        writer.push_bytes(b"abc")
    assert writer.getvalue() == b"\x00\x03abc"
    reader = Reader(writer.getvalue())
    assert bytes(reader.pull_block(2)) == b"abc"
    with pytest.raises(ValueError), writer.block(1):
        writer.push_bytes(bytes(300))
