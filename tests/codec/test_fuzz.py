"""Decoders given random or truncated bytes raise only rudp's DecodeError (never IndexError etc.)."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.codec.codes import PacketType
from rudp.codec.frame_codec import encode_frames, parse_frames
from rudp.codec.frames import Frame
from rudp.codec.packet import iter_packets, parse_header
from rudp.codec.transport_params import (
    TransportParameters,
    decode_transport_parameters,
    encode_transport_parameters,
)
from rudp.codec.varint import decode_varint
from rudp.errors import DecodeError
from tests.strategies import frames_with_length, transport_parameters

Decoder = Callable[[bytes], object]

DECODERS: list[Decoder] = [
    decode_varint,
    lambda data: parse_header(data, short_dcid_length=8),
    lambda data: list(iter_packets(data, short_dcid_length=4)),
    parse_frames,
    lambda data: parse_frames(data, PacketType.INITIAL),
    lambda data: decode_transport_parameters(data, from_server=True),
    lambda data: decode_transport_parameters(data, from_server=False),
]


def _only_decode_errors(data: bytes) -> None:
    for decoder in DECODERS:
        try:
            decoder(data)
        except DecodeError as exc:
            assert exc.code > 0
            assert str(exc)


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    _only_decode_errors(data)


@given(st.lists(frames_with_length, min_size=1, max_size=5), st.data())
def test_truncated_frames(frames: list[Frame], data: st.DataObject) -> None:
    encoded = encode_frames(frames)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    _only_decode_errors(encoded[:cut])
    flip = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    mutated = bytearray(encoded)
    mutated[flip] ^= data.draw(st.integers(min_value=1, max_value=255))
    _only_decode_errors(bytes(mutated))


@given(transport_parameters, st.data())
def test_truncated_transport_parameters(params: TransportParameters, data: st.DataObject) -> None:
    encoded = encode_transport_parameters(params)
    if not encoded:
        return
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    _only_decode_errors(encoded[:cut])


@given(st.binary(min_size=1, max_size=60))
def test_long_header_prefixes(tail: bytes) -> None:
    for first in (0xC0, 0xD0, 0xE0, 0xF0, 0x80):
        for version in (b"\x00\x00\x00\x01", b"\x6b\x33\x43\xcf", b"\x00\x00\x00\x00"):
            _only_decode_errors(bytes([first]) + version + tail)
