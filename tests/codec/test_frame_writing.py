"""The frame writers (:mod:`rudp.codec.frame_writing`) against the reference encoder they replaced.

Every frame class has its own writer, looked up by exact class; the bytes must be those of the former
encoder (one chain of class patterns), for every frame the strategies draw, with the same refusals,
and subclasses of frame classes take the general path (:func:`append_frame`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rudp.codec.buffer import Writer
from rudp.codec.codes import FrameType
from rudp.codec.frame_writing import FRAME_WRITERS, append_frame, encode_frames, write_frame
from rudp.codec.frames import (
    Ack,
    AckFrequency,
    ConnectionClose,
    Crypto,
    DataBlocked,
    Datagram,
    Frame,
    HandshakeDone,
    ImmediateAck,
    MaxData,
    MaxStreamData,
    MaxStreams,
    NewConnectionId,
    NewToken,
    Padding,
    PathChallenge,
    PathResponse,
    Ping,
    ResetStream,
    RetireConnectionId,
    StopSending,
    Stream,
    StreamDataBlocked,
    StreamsBlocked,
)
from tests.strategies import frames_last, frames_with_length, varints

_ACK_TYPE, _ACK_ECN_TYPE = int(FrameType.ACK), int(FrameType.ACK_ECN)
_NCID_TYPE = int(FrameType.NEW_CONNECTION_ID)
STREAM_OFF, STREAM_LEN, STREAM_FIN = 0x04, 0x02, 0x01


def _reference_write_frame(writer: Writer, frame: Frame) -> None:
    """The encoder the writers table replaced (a chain of class patterns), kept as the reference."""
    push = writer.push_varint
    match frame:
        case Stream(stream_id, offset, data, fin, explicit_length):
            push(
                FrameType.STREAM
                | (STREAM_OFF if offset else 0)
                | (STREAM_LEN if explicit_length else 0)
                | (STREAM_FIN if fin else 0)
            )
            push(stream_id)
            if offset:
                push(offset)
            if explicit_length:
                push(len(data))
            writer.push_bytes(data)
        case Ack():
            _write_ack(writer, frame)
        case Padding(length):
            writer.push_bytes(bytes(length))
        case Ping():
            push(FrameType.PING)
        case Crypto(offset, data):
            push(FrameType.CRYPTO)
            push(offset)
            writer.push_block(0, data)
        case MaxData(maximum):
            push(FrameType.MAX_DATA)
            push(maximum)
        case MaxStreamData(stream_id, maximum):
            push(FrameType.MAX_STREAM_DATA)
            push(stream_id)
            push(maximum)
        case _:
            _write_rare_frame(writer, frame)


def _write_ack(writer: Writer, frame: Ack) -> None:
    push = writer.push_varint
    if not frame.ranges:
        raise ValueError("an ACK frame needs at least one range")
    push(_ACK_TYPE if frame.ecn is None else _ACK_ECN_TYPE)
    smallest, largest = frame.ranges[0]
    push(largest)
    push(frame.ack_delay)
    push(len(frame.ranges) - 1)
    push(largest - smallest)
    for low, high in frame.ranges[1:]:
        gap = smallest - high - 2
        if gap < 0 or high < low:
            raise ValueError("ACK ranges must be descending, disjoint and non-adjacent")
        push(gap)
        push(high - low)
        smallest = low
    if frame.ecn is not None:
        for count in frame.ecn:
            push(count)


def _write_rare_frame(writer: Writer, frame: Frame) -> None:
    push = writer.push_varint
    match frame:
        case ResetStream(stream_id, error_code, final_size):
            for value in (FrameType.RESET_STREAM, stream_id, error_code, final_size):
                push(value)
        case StopSending(stream_id, error_code):
            for value in (FrameType.STOP_SENDING, stream_id, error_code):
                push(value)
        case NewToken(token):
            push(FrameType.NEW_TOKEN)
            writer.push_block(0, token)
        case MaxStreams(bidirectional, maximum):
            push(FrameType.MAX_STREAMS_BIDI if bidirectional else FrameType.MAX_STREAMS_UNI)
            push(maximum)
        case DataBlocked(limit):
            push(FrameType.DATA_BLOCKED)
            push(limit)
        case StreamDataBlocked(stream_id, limit):
            for value in (FrameType.STREAM_DATA_BLOCKED, stream_id, limit):
                push(value)
        case StreamsBlocked(bidirectional, limit):
            push(FrameType.STREAMS_BLOCKED_BIDI if bidirectional else FrameType.STREAMS_BLOCKED_UNI)
            push(limit)
        case NewConnectionId(sequence, retire_prior_to, cid, token):
            if not 1 <= len(cid) <= 20 or len(token) != 16:
                raise ValueError("NEW_CONNECTION_ID needs a 1..20-byte CID and a 16-byte token")
            if 0 <= retire_prior_to <= sequence <= 0x3F:  # (a server's first few: one-byte varints)
                writer.push_bytes(bytes((_NCID_TYPE, sequence, retire_prior_to, len(cid))) + cid + token)
                return
            for value in (FrameType.NEW_CONNECTION_ID, sequence, retire_prior_to):
                push(value)
            writer.push_block(1, cid)
            writer.push_bytes(token)
        case RetireConnectionId(sequence):
            push(FrameType.RETIRE_CONNECTION_ID)
            push(sequence)
        case PathChallenge(data) | PathResponse(data):
            if len(data) != 8:
                raise ValueError("path challenge data is 8 bytes")
            push(FrameType.PATH_CHALLENGE if isinstance(frame, PathChallenge) else FrameType.PATH_RESPONSE)
            writer.push_bytes(data)
        case ConnectionClose(error_code, reason, frame_type, application):
            push(FrameType.CONNECTION_CLOSE_APP if application else FrameType.CONNECTION_CLOSE)
            push(error_code)
            if not application:
                push(frame_type)
            writer.push_block(0, reason)
        case HandshakeDone():
            push(FrameType.HANDSHAKE_DONE)
        case AckFrequency(sequence, threshold, max_ack_delay, reordering):
            for value in (FrameType.ACK_FREQUENCY, sequence, threshold, max_ack_delay, reordering):
                push(value)
        case ImmediateAck():
            push(FrameType.IMMEDIATE_ACK)
        case Datagram(data, explicit_length):
            if explicit_length:
                push(FrameType.DATAGRAM_LEN)
                writer.push_block(0, data)
            else:
                push(FrameType.DATAGRAM)
                writer.push_bytes(data)
        case _:
            raise TypeError(f"not a frame: {frame!r}")


def _reference(frame: Frame) -> bytes:
    writer = Writer()
    _reference_write_frame(writer, frame)
    return writer.getvalue()


def _outcome(write: object, frame: Frame) -> bytes | type[Exception]:
    try:
        if write is _reference_write_frame:
            return _reference(frame)
        buf = bytearray()
        FRAME_WRITERS[type(frame)](buf, frame)
        return bytes(buf)
    except (ValueError, OverflowError) as exc:
        return type(exc)


@given(frames_with_length | frames_last)
def test_writers_match_the_reference_encoder(frame: Frame) -> None:
    expected = _reference(frame)
    buf = bytearray()
    FRAME_WRITERS[type(frame)](buf, frame)
    assert bytes(buf) == expected
    writer = Writer(b"head")
    write_frame(writer, frame)
    assert writer.getvalue() == b"head" + expected
    assert encode_frames([frame, frame]) == expected * 2


def test_every_frame_class_has_a_writer() -> None:
    classes = set(Frame.__args__)  # type: ignore[attr-defined]
    assert set(FRAME_WRITERS) == classes


@given(varints | st.integers(min_value=-3, max_value=-1) | st.integers(min_value=1 << 62, max_value=1 << 64))
def test_fields_of_any_size_and_out_of_range(value: int) -> None:
    # Each varint field, at every size, and the values no varint holds (both refuse with ValueError).
    for frame in (
        Stream(value, value, b"x", True, True),
        Stream(value, 0, b"", False, False),
        Ack(((0, value),), value, (value, 0, value)),
        Crypto(value, b"x"),
        NewConnectionId(value, 0, b"12345678", bytes(16)),
        NewConnectionId(value, value, b"12345678", bytes(16)),
        MaxData(value),
        MaxStreamData(value, value),
        MaxStreams(True, value),
        DataBlocked(value),
        StreamDataBlocked(value, value),
        StreamsBlocked(False, value),
        ResetStream(value, value, value),
        StopSending(value, value),
        RetireConnectionId(value),
        ConnectionClose(value, b"why", value, False),
        ConnectionClose(value, b"", 0, True),
        AckFrequency(value, value, value, value),
    ):
        assert _outcome(FRAME_WRITERS, frame) == _outcome(_reference_write_frame, frame), frame


@pytest.mark.parametrize(
    "frame",
    [
        Ack(()),
        Ack(((0, 1), (5, 6))),
        Ack(((5, 6), (4, 4))),  # adjacent ranges
        NewConnectionId(1, 0, b"", bytes(16)),
        NewConnectionId(1, 0, bytes(21), bytes(16)),
        NewConnectionId(1, 0, b"1", bytes(15)),
        NewConnectionId(1, 2, b"1", bytes(16)),  # (retire_prior_to above the sequence: the long form)
        PathChallenge(b"short"),
        PathResponse(bytes(9)),
        Padding(-1),
    ],
)
def test_refusals_and_edge_forms_match_the_reference(frame: Frame) -> None:
    assert _outcome(FRAME_WRITERS, frame) == _outcome(_reference_write_frame, frame)


def test_subclasses_take_the_general_path_and_non_frames_are_refused() -> None:
    @dataclass(frozen=True, slots=True)
    class TaggedPing(Ping):
        pass

    buf = bytearray()
    append_frame(buf, TaggedPing())
    assert bytes(buf) == b"\x01"
    assert TaggedPing not in FRAME_WRITERS
    with pytest.raises(TypeError):
        append_frame(buf, "PING")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode_frames([HandshakeDone(), object()])  # type: ignore[list-item]


def test_usual_sender_frames() -> None:
    assert encode_frames([HandshakeDone(), ImmediateAck(), Ping()]) == b"\x1e\x1f\x01"
    assert encode_frames([NewToken(b"tok")]) == b"\x07\x03tok"
    assert encode_frames([Datagram(b"ab"), Datagram(b"c", False)]) == b"\x31\x02ab\x30c"


@pytest.mark.parametrize("length", [0, 1, 63, 64, 1000, 16383, 16384, 20000])
@pytest.mark.parametrize("offset", [0, 63, 64, 16383, 16384, 1 << 30])
def test_lengths_of_every_width_match_the_reference(length: int, offset: int) -> None:
    """The inline 1- and 2-byte forms (CRYPTO offset and length, NEW_TOKEN length, ACK_ECN counts) at
    their boundaries give the reference's shortest encoding."""
    data = bytes(range(256)) * (length // 256) + bytes(length % 256)
    for frame in (
        Crypto(offset, data),
        NewToken(data),
        Ack(((0, 5),), 0, (length, offset, length)),
    ):
        assert _outcome(FRAME_WRITERS, frame) == _outcome(_reference_write_frame, frame), (frame, length)
