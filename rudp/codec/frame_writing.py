"""Frame encoding (RFC 9000 §19; RFC 9221 §4; draft-ietf-quic-ack-frequency §4, §5).

:data:`FRAME_WRITERS` maps each frame class to the function that appends its encoding to a bytearray:
one dictionary lookup per frame instead of a chain of class patterns (a sender writes several frames
per packet: ACK, CRYPTO, HANDSHAKE_DONE, NEW_TOKEN, NEW_CONNECTION_IDs...). :func:`append_frame` and
:func:`write_frame` (re-exported by :mod:`rudp.codec.frame_codec`) are the general entry points; they
also serve subclasses of the frame classes. Values that cannot be encoded raise ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rudp.codec.buffer import Writer
from rudp.codec.codes import FrameType
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
from rudp.codec.varint import VARINT_MAX

# Frame types as plain ints, bound once (enum lookups are slow in 3.11).
_PING, _ACK, _ACK_ECN = int(FrameType.PING), int(FrameType.ACK), int(FrameType.ACK_ECN)
_RESET_STREAM, _STOP_SENDING = int(FrameType.RESET_STREAM), int(FrameType.STOP_SENDING)
_CRYPTO, _NEW_TOKEN, _STREAM = int(FrameType.CRYPTO), int(FrameType.NEW_TOKEN), int(FrameType.STREAM)
_MAX_DATA, _MAX_STREAM_DATA = int(FrameType.MAX_DATA), int(FrameType.MAX_STREAM_DATA)
_MAX_STREAMS_BIDI, _MAX_STREAMS_UNI = int(FrameType.MAX_STREAMS_BIDI), int(FrameType.MAX_STREAMS_UNI)
_DATA_BLOCKED, _STREAM_DATA_BLOCKED = int(FrameType.DATA_BLOCKED), int(FrameType.STREAM_DATA_BLOCKED)
_STREAMS_BLOCKED_BIDI = int(FrameType.STREAMS_BLOCKED_BIDI)
_STREAMS_BLOCKED_UNI = int(FrameType.STREAMS_BLOCKED_UNI)
_NEW_CONNECTION_ID = int(FrameType.NEW_CONNECTION_ID)
_RETIRE_CONNECTION_ID = int(FrameType.RETIRE_CONNECTION_ID)
_PATH_CHALLENGE, _PATH_RESPONSE = int(FrameType.PATH_CHALLENGE), int(FrameType.PATH_RESPONSE)
_CONNECTION_CLOSE = int(FrameType.CONNECTION_CLOSE)
_CONNECTION_CLOSE_APP = int(FrameType.CONNECTION_CLOSE_APP)
_HANDSHAKE_DONE, _IMMEDIATE_ACK = int(FrameType.HANDSHAKE_DONE), int(FrameType.IMMEDIATE_ACK)
_DATAGRAM, _DATAGRAM_LEN = int(FrameType.DATAGRAM), int(FrameType.DATAGRAM_LEN)
_ACK_FREQUENCY = b"\x40\xaf"  # 0xaf as a 2-byte varint
STREAM_OFF = 0x04
STREAM_LEN = 0x02
STREAM_FIN = 0x01
_ONE_BYTE = tuple(bytes((value,)) for value in range(0x40))
"""The one-byte varints (0..63), built once: ``bytes((value,))`` costs a tuple and a call per field."""


def _varint(value: int) -> bytes:
    """RFC 9000 §16: the shortest encoding of ``value``.

    Raises:
        ValueError: ``value`` is outside 0..2**62-1.
    """
    if 0 <= value <= 0x3F:
        return _ONE_BYTE[value]
    if 0 <= value <= 0x3FFF:
        return (0x4000 | value).to_bytes(2, "big")
    if 0 <= value <= 0x3FFFFFFF:
        return (0x80000000 | value).to_bytes(4, "big")
    if 0 <= value <= VARINT_MAX:
        return (0xC000000000000000 | value).to_bytes(8, "big")
    raise ValueError(f"varint out of range: {value}")


def _write_stream(buf: bytearray, frame: Stream) -> None:
    offset, data, explicit_length = frame.offset, frame.data, frame.explicit_length
    buf.append(
        _STREAM
        | (STREAM_OFF if offset else 0)
        | (STREAM_LEN if explicit_length else 0)
        | (STREAM_FIN if frame.fin else 0)
    )
    stream_id = frame.stream_id
    if 0 <= stream_id <= 0x3F:
        buf.append(stream_id)
    else:
        buf += _varint(stream_id)
    if offset:
        buf += _varint(offset)
    if explicit_length:
        buf += _varint(len(data))
    buf += data


def _write_ack(buf: bytearray, frame: Ack) -> None:
    ranges = frame.ranges
    if not ranges:
        raise ValueError("an ACK frame needs at least one range")
    ecn = frame.ecn
    smallest, largest = ranges[0]
    buf.append(_ACK if ecn is None else _ACK_ECN)
    for value in (largest, frame.ack_delay, len(ranges) - 1, largest - smallest):
        if 0 <= value <= 0x3F:  # (the one-byte varints inline: most fields of a usual ACK)
            buf.append(value)
        else:
            buf += _varint(value)
    for low, high in ranges[1:]:
        gap = smallest - high - 2
        if gap < 0 or high < low:
            raise ValueError("ACK ranges must be descending, disjoint and non-adjacent")
        buf += _varint(gap)
        buf += _varint(high - low)
        smallest = low
    if ecn is not None:
        for count in ecn:
            if 0 <= count <= 0x3F:  # (inline, as above)
                buf.append(count)
            else:
                buf += _varint(count)


def _write_padding(buf: bytearray, frame: Padding) -> None:
    buf += bytes(frame.length)


def _write_ping(buf: bytearray, frame: Ping) -> None:
    buf.append(_PING)


def _write_crypto(buf: bytearray, frame: Crypto) -> None:
    data = frame.data
    offset, length = frame.offset, len(data)
    buf.append(_CRYPTO)
    # (the usual fields of a handshake, inline: a 1-byte offset (0, the first frame of a level) and
    # a 2-byte length; anything else the shortest way _varint encodes it)
    if 0 <= offset <= 0x3F:
        buf.append(offset)
    else:
        buf += _varint(offset)
    if 0x3F < length <= 0x3FFF:
        buf += (0x4000 | length).to_bytes(2, "big")
    else:
        buf += _varint(length)
    buf += data


def _write_new_token(buf: bytearray, frame: NewToken) -> None:
    token = frame.token
    length = len(token)
    buf.append(_NEW_TOKEN)
    if length <= 0x3F:
        buf.append(length)
    else:
        buf += _varint(length)
    buf += token


def _write_new_connection_id(buf: bytearray, frame: NewConnectionId) -> None:
    sequence, retire_prior_to = frame.sequence, frame.retire_prior_to
    cid, token = frame.connection_id, frame.stateless_reset_token
    if not 1 <= len(cid) <= 20 or len(token) != 16:
        raise ValueError("NEW_CONNECTION_ID needs a 1..20-byte CID and a 16-byte token")
    if 0 <= retire_prior_to <= sequence <= 0x3F:  # (a server's first few: one-byte varints)
        buf += bytes((_NEW_CONNECTION_ID, sequence, retire_prior_to, len(cid)))
    else:
        buf.append(_NEW_CONNECTION_ID)
        buf += _varint(sequence)
        buf += _varint(retire_prior_to)
        buf.append(len(cid))
    buf += cid
    buf += token


def _write_handshake_done(buf: bytearray, frame: HandshakeDone) -> None:
    buf.append(_HANDSHAKE_DONE)


def _write_max_data(buf: bytearray, frame: MaxData) -> None:
    buf.append(_MAX_DATA)
    buf += _varint(frame.maximum)


def _write_max_stream_data(buf: bytearray, frame: MaxStreamData) -> None:
    buf.append(_MAX_STREAM_DATA)
    buf += _varint(frame.stream_id)
    buf += _varint(frame.maximum)


def _write_max_streams(buf: bytearray, frame: MaxStreams) -> None:
    buf.append(_MAX_STREAMS_BIDI if frame.bidirectional else _MAX_STREAMS_UNI)
    buf += _varint(frame.maximum)


def _write_data_blocked(buf: bytearray, frame: DataBlocked) -> None:
    buf.append(_DATA_BLOCKED)
    buf += _varint(frame.limit)


def _write_stream_data_blocked(buf: bytearray, frame: StreamDataBlocked) -> None:
    buf.append(_STREAM_DATA_BLOCKED)
    buf += _varint(frame.stream_id)
    buf += _varint(frame.limit)


def _write_streams_blocked(buf: bytearray, frame: StreamsBlocked) -> None:
    buf.append(_STREAMS_BLOCKED_BIDI if frame.bidirectional else _STREAMS_BLOCKED_UNI)
    buf += _varint(frame.limit)


def _write_reset_stream(buf: bytearray, frame: ResetStream) -> None:
    buf.append(_RESET_STREAM)
    buf += _varint(frame.stream_id)
    buf += _varint(frame.error_code)
    buf += _varint(frame.final_size)


def _write_stop_sending(buf: bytearray, frame: StopSending) -> None:
    buf.append(_STOP_SENDING)
    buf += _varint(frame.stream_id)
    buf += _varint(frame.error_code)


def _write_retire_connection_id(buf: bytearray, frame: RetireConnectionId) -> None:
    buf.append(_RETIRE_CONNECTION_ID)
    buf += _varint(frame.sequence)


def _path_data(data: bytes) -> bytes:
    if len(data) != 8:
        raise ValueError("path challenge data is 8 bytes")
    return data


def _write_path_challenge(buf: bytearray, frame: PathChallenge) -> None:
    data = _path_data(frame.data)
    buf.append(_PATH_CHALLENGE)
    buf += data


def _write_path_response(buf: bytearray, frame: PathResponse) -> None:
    data = _path_data(frame.data)
    buf.append(_PATH_RESPONSE)
    buf += data


def _write_connection_close(buf: bytearray, frame: ConnectionClose) -> None:
    application, reason = frame.application, frame.reason
    buf.append(_CONNECTION_CLOSE_APP if application else _CONNECTION_CLOSE)
    buf += _varint(frame.error_code)
    if not application:
        buf += _varint(frame.frame_type)
    buf += _varint(len(reason))
    buf += reason


def _write_ack_frequency(buf: bytearray, frame: AckFrequency) -> None:
    buf += _ACK_FREQUENCY
    buf += _varint(frame.sequence)
    buf += _varint(frame.ack_eliciting_threshold)
    buf += _varint(frame.request_max_ack_delay)
    buf += _varint(frame.reordering_threshold)


def _write_immediate_ack(buf: bytearray, frame: ImmediateAck) -> None:
    buf.append(_IMMEDIATE_ACK)


def _write_datagram(buf: bytearray, frame: Datagram) -> None:
    data = frame.data
    if frame.explicit_length:
        buf.append(_DATAGRAM_LEN)
        buf += _varint(len(data))
    else:
        buf.append(_DATAGRAM)
    buf += data


FrameWriter = Callable[[bytearray, Any], None]
"""Appends the encoding of one frame (of the class it is registered for) to a bytearray."""

FRAME_WRITERS: dict[type, FrameWriter] = {
    Stream: _write_stream,
    Ack: _write_ack,
    Padding: _write_padding,
    Ping: _write_ping,
    Crypto: _write_crypto,
    NewToken: _write_new_token,
    NewConnectionId: _write_new_connection_id,
    HandshakeDone: _write_handshake_done,
    MaxData: _write_max_data,
    MaxStreamData: _write_max_stream_data,
    MaxStreams: _write_max_streams,
    DataBlocked: _write_data_blocked,
    StreamDataBlocked: _write_stream_data_blocked,
    StreamsBlocked: _write_streams_blocked,
    ResetStream: _write_reset_stream,
    StopSending: _write_stop_sending,
    RetireConnectionId: _write_retire_connection_id,
    PathChallenge: _write_path_challenge,
    PathResponse: _write_path_response,
    ConnectionClose: _write_connection_close,
    AckFrequency: _write_ack_frequency,
    ImmediateAck: _write_immediate_ack,
    Datagram: _write_datagram,
}
"""The writer of each frame class, by exact class (:func:`append_frame` serves subclasses too)."""


def append_frame(buf: bytearray, frame: Frame) -> None:
    """Append the encoding of ``frame`` to ``buf``.

    Raises:
        ValueError: for values that cannot be encoded (out-of-range integers, wrong-size fields).
        TypeError: ``frame`` is not a frame.
    """
    write = FRAME_WRITERS.get(type(frame))
    if write is None:
        for cls in type(frame).__mro__[1:]:  # a subclass of a frame class
            write = FRAME_WRITERS.get(cls)
            if write is not None:
                break
        else:
            raise TypeError(f"not a frame: {frame!r}")
    write(buf, frame)


def write_frame(writer: Writer, frame: Frame) -> None:
    """Append the encoding of ``frame`` to ``writer`` (see :func:`append_frame`)."""
    append_frame(writer.buffer, frame)


def encode_frames(frames: Iterable[Frame]) -> bytes:
    """Encode ``frames`` back to back and return the bytes."""
    buf = bytearray()
    for frame in frames:
        append_frame(buf, frame)
    return bytes(buf)


__all__ = ["FRAME_WRITERS", "FrameWriter", "append_frame", "encode_frames", "write_frame"]
