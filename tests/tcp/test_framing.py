"""The TCP mux frame codec: hypothesis round trips, incremental decoding, and malformed input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rudp.codec.varint import VARINT_MAX, encode_varint
from rudp.errors import DecodeError, TransportErrorCode
from rudp.tcp import framing as fr

varints = st.integers(min_value=0, max_value=VARINT_MAX)
small = st.integers(min_value=0, max_value=(1 << 30) - 1)
tokens = st.binary(max_size=fr.MAX_TOKEN_BYTES)

frames: st.SearchStrategy[fr.Frame] = st.one_of(
    st.builds(fr.Data, varints, st.binary(max_size=300), st.booleans()),
    st.builds(fr.Reset, varints, varints, varints),
    st.builds(fr.Stop, varints, varints),
    st.builds(fr.Credit, varints, varints),
    st.builds(fr.MaxStreams, st.booleans(), varints),
    st.builds(fr.Ping, tokens),
    st.builds(fr.Pong, tokens),
    st.builds(fr.Datagram, st.binary(max_size=300)),
    st.builds(fr.Close, varints, st.text(max_size=100), st.booleans(), varints),
    st.builds(fr.Hello, small, small, small, small, small, small),
)


@given(frames)
def test_round_trip(frame: fr.Frame) -> None:
    encoded = fr.encode_frame(frame)
    assert fr.decode_frame(encoded) == frame
    assert encoded[0] == fr.frame_kind(frame)


@given(st.lists(frames, max_size=20), st.lists(st.integers(min_value=1, max_value=50), min_size=1))
def test_decoder_any_split(frames_in: list[fr.Frame], cuts: list[int]) -> None:
    """However TCP splits the byte stream, the decoder yields the same frames in order."""
    wire = b"".join(fr.encode_frame(f) for f in frames_in)
    decoder = fr.FrameDecoder()
    out: list[fr.Frame] = []
    pos, i = 0, 0
    while pos < len(wire):
        size = cuts[i % len(cuts)]
        out.extend(decoder.feed(wire[pos : pos + size]))
        pos += size
        i += 1
    assert out == frames_in
    assert decoder.buffered_bytes == 0


@given(frames, st.data())
def test_truncated_frame_raises_decode_error(frame: fr.Frame, data: st.DataObject) -> None:
    encoded = fr.encode_frame(frame)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    with pytest.raises(DecodeError):
        fr.decode_frame(encoded[:cut])
    # the incremental decoder just waits for more
    assert list(fr.FrameDecoder().feed(encoded[:cut])) == []


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    try:
        fr.decode_frame(data)
    except DecodeError as exc:
        assert exc.code == TransportErrorCode.FRAME_ENCODING_ERROR


@given(st.binary(max_size=400))
def test_decoder_on_random_bytes_raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        list(fr.FrameDecoder().feed(data))


def _raw(kind: int, stream_id: int, payload: bytes, length: int | None = None) -> bytes:
    size = len(payload) if length is None else length
    return bytes([kind]) + encode_varint(stream_id) + encode_varint(size) + payload


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (_raw(0x7F, 0, b""), "unknown frame kind"),
        (_raw(fr.FrameKind.PING, 4, b""), "stream ID 0"),
        (_raw(fr.FrameKind.DATA, 0, b"", fr.MAX_PAYLOAD_BYTES + 1), "too long"),
        (_raw(fr.FrameKind.CREDIT, 0, encode_varint(5) + b"x"), "trailing"),
        (_raw(fr.FrameKind.CREDIT, 0, b""), "truncated"),
        (_raw(fr.FrameKind.MAX_STREAMS, 0, encode_varint(2) + encode_varint(1)), "direction"),
        (_raw(fr.FrameKind.CLOSE, 0, encode_varint(0) + encode_varint(2) + encode_varint(0)), "flags"),
        (_raw(fr.FrameKind.PONG, 0, bytes(fr.MAX_TOKEN_BYTES + 1)), "token"),
        (_raw(fr.FrameKind.HELLO, 0, encode_varint(1) * 5), "truncated"),
    ],
)
def test_malformed_frames(wire: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        fr.decode_frame(wire)
    with pytest.raises(DecodeError):
        list(fr.FrameDecoder().feed(wire + bytes(20)))


def test_oversized_length_detected_before_payload_arrives() -> None:
    """A length beyond the limit fails at once: the decoder never buffers a huge frame."""
    header = _raw(fr.FrameKind.DATA, 0, b"", 1 << 40)
    with pytest.raises(DecodeError, match="too long"):
        list(fr.FrameDecoder().feed(header))


def test_extra_bytes_after_frame() -> None:
    with pytest.raises(DecodeError, match="after the frame"):
        fr.decode_frame(fr.encode_frame(fr.Stop(0, 1)) + b"\x00")


def test_frames_after_a_good_one_are_yielded_before_the_error() -> None:
    wire = fr.encode_frame(fr.Close(3, "bye")) + b"\xff\x00\x00"
    decoder = fr.FrameDecoder().feed(wire)
    assert next(decoder) == fr.Close(3, "bye")
    with pytest.raises(DecodeError):
        next(decoder)


@pytest.mark.parametrize(
    "frame",
    [
        fr.Credit(0, VARINT_MAX + 1),
        fr.Ping(bytes(fr.MAX_TOKEN_BYTES + 1)),
        fr.Data(0, bytes(fr.MAX_PAYLOAD_BYTES + 1)),
        fr.Reset(-1, 0, 0),
    ],
)
def test_encoding_out_of_range_values_raises_value_error(frame: fr.Frame) -> None:
    with pytest.raises(ValueError):
        fr.encode_frame(frame)


def test_close_reason_is_truncated_and_decoded_leniently() -> None:
    encoded = fr.encode_frame(fr.Close(1, "é" * 1000))
    decoded = fr.decode_frame(encoded)
    assert isinstance(decoded, fr.Close)
    assert len(decoded.reason.encode()) <= fr.MAX_REASON_BYTES
    assert decoded.reason.startswith("éé")


def test_wire_layout_is_documented_one() -> None:
    assert fr.encode_frame(fr.Data(4, b"ab", fin=True)) == b"\x01\x04\x02ab"
    assert fr.encode_frame(fr.Credit(8, 300)) == b"\x04\x08\x02" + encode_varint(300)
