"""Frame encoding and decoding (RFC 9000 §12.4, §19; RFC 9221 §4).

``parse_frames`` turns a decrypted packet payload into frame values, checking each frame against the
packet types allowed to carry it (RFC 9000 Table 3, kept here as data). ``write_frame`` appends one
frame to a :class:`~rudp.codec.buffer.Writer` (:mod:`rudp.codec.frame_writing`, re-exported here).
Malformed input raises only :class:`~rudp.errors.DecodeError` with FRAME_ENCODING_ERROR or
PROTOCOL_VIOLATION.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from rudp.codec.buffer import BytesLike, Reader
from rudp.codec.codes import FrameType, PacketType
from rudp.codec.frame_writing import STREAM_FIN, STREAM_LEN, STREAM_OFF, append_frame
from rudp.codec.frame_writing import encode_frames as encode_frames  # (re-exported: the codec's API)
from rudp.codec.frame_writing import write_frame as write_frame
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
from rudp.codec.varint import VARINT_MAX, varint_size
from rudp.errors import DecodeError, TransportErrorCode

_FEE = TransportErrorCode.FRAME_ENCODING_ERROR
_PV = TransportErrorCode.PROTOCOL_VIOLATION
MAX_STREAMS_LIMIT: Final = 1 << 60  # RFC 9000 §4.6, §19.11

_I, _Z, _H, _O = PacketType.INITIAL, PacketType.ZERO_RTT, PacketType.HANDSHAKE, PacketType.ONE_RTT
_IH01: Final = frozenset((_I, _Z, _H, _O))
_IH_1: Final = frozenset((_I, _H, _O))
_01: Final = frozenset((_Z, _O))
_1: Final = frozenset((_O,))

# RFC 9000 §12.4 Table 3 (and RFC 9221 §4 for DATAGRAM): which packet types may carry each frame.
# RFC 9000 §12.5 also rules out RETIRE_CONNECTION_ID in 0-RTT (Table 3 says __01): it can only answer a
# NEW_CONNECTION_ID, which a client receives in 1-RTT packets only; a server MAY refuse it there.
ALLOWED_PACKET_TYPES: Final[dict[int, frozenset[PacketType]]] = {
    FrameType.PADDING: _IH01,
    FrameType.PING: _IH01,
    FrameType.ACK: _IH_1,
    FrameType.ACK_ECN: _IH_1,
    FrameType.RESET_STREAM: _01,
    FrameType.STOP_SENDING: _01,
    FrameType.CRYPTO: _IH_1,
    FrameType.NEW_TOKEN: _1,
    **{t: _01 for t in range(FrameType.STREAM, FrameType.STREAM_MAX + 1)},
    FrameType.MAX_DATA: _01,
    FrameType.MAX_STREAM_DATA: _01,
    FrameType.MAX_STREAMS_BIDI: _01,
    FrameType.MAX_STREAMS_UNI: _01,
    FrameType.DATA_BLOCKED: _01,
    FrameType.STREAM_DATA_BLOCKED: _01,
    FrameType.STREAMS_BLOCKED_BIDI: _01,
    FrameType.STREAMS_BLOCKED_UNI: _01,
    FrameType.NEW_CONNECTION_ID: _01,
    FrameType.RETIRE_CONNECTION_ID: _1,
    FrameType.PATH_CHALLENGE: _01,
    FrameType.PATH_RESPONSE: _1,
    FrameType.CONNECTION_CLOSE: _IH01,
    FrameType.CONNECTION_CLOSE_APP: _01,
    FrameType.HANDSHAKE_DONE: _1,
    FrameType.DATAGRAM: _01,
    FrameType.DATAGRAM_LEN: _01,
    # draft-ietf-quic-ack-frequency §4, §5: application data packets only.
    FrameType.ACK_FREQUENCY: _01,
    FrameType.IMMEDIATE_ACK: _01,
}


_ZEROS: Final = bytes(1500)
"""Zero bytes to compare a PADDING run with (a longer run takes the byte-by-byte way)."""


def _pull_padding(reader: Reader, _: int) -> Frame:
    # A run of PADDING bytes is one frame (RFC 9000 §19.1); count the zero bytes in C, not one by one
    # (a client's Initial carries ~1000 of them).
    # The usual run goes to the end of the payload: one memcmp (lstrip tests byte by byte, ~2 us).
    pos = reader.position
    rest = bytes(reader.data[pos : pos + reader.remaining])
    zeros = len(rest) if rest == _ZEROS[: len(rest)] else len(rest) - len(rest.lstrip(b"\x00"))
    reader.seek(pos + zeros)
    return Padding(zeros + 1)


def _pull_ping(reader: Reader, _: int) -> Frame:
    return Ping()


def _pull_ack(reader: Reader, frame_type: int) -> Frame:
    largest = reader.pull_varint()
    delay = reader.pull_varint()
    count = reader.pull_varint()
    first = reader.pull_varint()
    smallest = largest - first
    if smallest < 0:
        raise DecodeError("ACK range below zero", _FEE, frame_type)
    ranges = [(smallest, largest)]
    for _ in range(count):
        gap = reader.pull_varint()
        length = reader.pull_varint()
        largest = smallest - gap - 2  # RFC 9000 §19.3.1
        smallest = largest - length
        if smallest < 0:
            raise DecodeError("ACK range below zero", _FEE, frame_type)
        ranges.append((smallest, largest))
    ecn = None
    if frame_type == 0x03:  # ACK_ECN (a literal: enum member lookups are slow in 3.11)
        ecn = (reader.pull_varint(), reader.pull_varint(), reader.pull_varint())
    return Ack(tuple(ranges), delay, ecn)


def _pull_reset_stream(reader: Reader, _: int) -> Frame:
    return ResetStream(reader.pull_varint(), reader.pull_varint(), reader.pull_varint())


def _pull_stop_sending(reader: Reader, _: int) -> Frame:
    return StopSending(reader.pull_varint(), reader.pull_varint())


def _pull_crypto(reader: Reader, frame_type: int) -> Frame:
    offset = reader.pull_varint()
    data = reader.pull_bytes(reader.pull_varint())
    if offset + len(data) > VARINT_MAX:
        raise DecodeError("CRYPTO data beyond 2^62-1", _FEE, frame_type)  # RFC 9000 §19.6
    return Crypto(offset, data)


def _pull_new_token(reader: Reader, frame_type: int) -> Frame:
    token = reader.pull_bytes(reader.pull_varint())
    if not token:
        raise DecodeError("empty NEW_TOKEN", _FEE, frame_type)  # RFC 9000 §19.7
    return NewToken(token)


def _pull_stream(reader: Reader, frame_type: int) -> Frame:
    stream_id = reader.pull_varint()
    offset = reader.pull_varint() if frame_type & STREAM_OFF else 0
    has_length = bool(frame_type & STREAM_LEN)
    data = reader.pull_bytes(reader.pull_varint() if has_length else reader.remaining)
    if offset + len(data) > VARINT_MAX:
        raise DecodeError("STREAM data beyond 2^62-1", _FEE, frame_type)  # RFC 9000 §19.8
    return Stream(stream_id, offset, data, bool(frame_type & STREAM_FIN), has_length)


def _pull_max_data(reader: Reader, _: int) -> Frame:
    return MaxData(reader.pull_varint())


def _pull_max_stream_data(reader: Reader, _: int) -> Frame:
    return MaxStreamData(reader.pull_varint(), reader.pull_varint())


def _pull_stream_count(reader: Reader, frame_type: int) -> int:
    value = reader.pull_varint()
    if value > MAX_STREAMS_LIMIT:
        raise DecodeError("stream count above 2^60", _FEE, frame_type)  # RFC 9000 §19.11, §19.14
    return value


def _pull_max_streams(reader: Reader, frame_type: int) -> Frame:
    return MaxStreams(frame_type == FrameType.MAX_STREAMS_BIDI, _pull_stream_count(reader, frame_type))


def _pull_data_blocked(reader: Reader, _: int) -> Frame:
    return DataBlocked(reader.pull_varint())


def _pull_stream_data_blocked(reader: Reader, _: int) -> Frame:
    return StreamDataBlocked(reader.pull_varint(), reader.pull_varint())


def _pull_streams_blocked(reader: Reader, frame_type: int) -> Frame:
    bidirectional = frame_type == FrameType.STREAMS_BLOCKED_BIDI
    return StreamsBlocked(bidirectional, _pull_stream_count(reader, frame_type))


def _pull_new_connection_id(reader: Reader, frame_type: int) -> Frame:
    sequence = reader.pull_varint()
    retire_prior_to = reader.pull_varint()
    length = reader.pull_uint8()
    if not 1 <= length <= 20:
        raise DecodeError(f"connection ID of {length} bytes", _FEE, frame_type)  # RFC 9000 §19.15
    cid = reader.pull_bytes(length)
    token = reader.pull_bytes(16)
    if retire_prior_to > sequence:
        raise DecodeError("retire_prior_to above sequence number", _FEE, frame_type)
    return NewConnectionId(sequence, retire_prior_to, cid, token)


def _pull_retire_connection_id(reader: Reader, _: int) -> Frame:
    return RetireConnectionId(reader.pull_varint())


def _pull_path_challenge(reader: Reader, _: int) -> Frame:
    return PathChallenge(reader.pull_bytes(8))


def _pull_path_response(reader: Reader, _: int) -> Frame:
    return PathResponse(reader.pull_bytes(8))


def _pull_connection_close(reader: Reader, frame_type: int) -> Frame:
    code = reader.pull_varint()
    application = frame_type == FrameType.CONNECTION_CLOSE_APP
    trigger = 0 if application else reader.pull_varint()
    reason = reader.pull_bytes(reader.pull_varint())
    return ConnectionClose(code, reason, trigger, application)


def _pull_handshake_done(reader: Reader, _: int) -> Frame:
    return HandshakeDone()


def _pull_datagram(reader: Reader, frame_type: int) -> Frame:
    has_length = frame_type == FrameType.DATAGRAM_LEN
    data = reader.pull_bytes(reader.pull_varint() if has_length else reader.remaining)
    return Datagram(data, has_length)


def _pull_ack_frequency(reader: Reader, _: int) -> Frame:
    # draft-ietf-quic-ack-frequency §4: four varints.
    pull = reader.pull_varint
    return AckFrequency(pull(), pull(), pull(), pull())


def _pull_immediate_ack(reader: Reader, _: int) -> Frame:
    return ImmediateAck()


_PULL: Final[dict[int, Callable[[Reader, int], Frame]]] = {
    FrameType.PADDING: _pull_padding,
    FrameType.PING: _pull_ping,
    FrameType.ACK: _pull_ack,
    FrameType.ACK_ECN: _pull_ack,
    FrameType.RESET_STREAM: _pull_reset_stream,
    FrameType.STOP_SENDING: _pull_stop_sending,
    FrameType.CRYPTO: _pull_crypto,
    FrameType.NEW_TOKEN: _pull_new_token,
    **{t: _pull_stream for t in range(FrameType.STREAM, FrameType.STREAM_MAX + 1)},
    FrameType.MAX_DATA: _pull_max_data,
    FrameType.MAX_STREAM_DATA: _pull_max_stream_data,
    FrameType.MAX_STREAMS_BIDI: _pull_max_streams,
    FrameType.MAX_STREAMS_UNI: _pull_max_streams,
    FrameType.DATA_BLOCKED: _pull_data_blocked,
    FrameType.STREAM_DATA_BLOCKED: _pull_stream_data_blocked,
    FrameType.STREAMS_BLOCKED_BIDI: _pull_streams_blocked,
    FrameType.STREAMS_BLOCKED_UNI: _pull_streams_blocked,
    FrameType.NEW_CONNECTION_ID: _pull_new_connection_id,
    FrameType.RETIRE_CONNECTION_ID: _pull_retire_connection_id,
    FrameType.PATH_CHALLENGE: _pull_path_challenge,
    FrameType.PATH_RESPONSE: _pull_path_response,
    FrameType.CONNECTION_CLOSE: _pull_connection_close,
    FrameType.CONNECTION_CLOSE_APP: _pull_connection_close,
    FrameType.HANDSHAKE_DONE: _pull_handshake_done,
    FrameType.DATAGRAM: _pull_datagram,
    FrameType.DATAGRAM_LEN: _pull_datagram,
    FrameType.ACK_FREQUENCY: _pull_ack_frequency,
    FrameType.IMMEDIATE_ACK: _pull_immediate_ack,
}


def parse_frames(payload: BytesLike, packet_type: PacketType | None = None) -> list[tuple[int, Frame]]:
    """Decode every frame of a packet payload; return ``(frame_type, frame)`` pairs in order.

    When ``packet_type`` is given, each frame is checked against :data:`ALLOWED_PACKET_TYPES`.

    Raises:
        DecodeError: FRAME_ENCODING_ERROR for an unknown frame type or a malformed frame
            (RFC 9000 §12.4); PROTOCOL_VIOLATION for an empty payload, a frame type in a non-minimal
            encoding, or a frame not allowed in ``packet_type``. ``frame_type`` is set where known.
    """
    reader = Reader(payload)
    data = reader.data
    end = len(data)  # (the reader's end: every read below stops there)
    if not end:
        raise DecodeError("packet without frames", _PV)  # RFC 9000 §12.4
    frames: list[tuple[int, Frame]] = []
    append = frames.append
    while reader.position < end:  # (not reader.eof(): no call per frame)
        kind = data[reader.position]
        if (kind == 0x02 or kind == 0x03) and packet_type is not _Z:
            # ACK (every packet type but 0-RTT carries one, RFC 9000 §12.4): the usual one-range form
            # without a reader, as in 1-RTT packets (same frame, same errors).
            frame, stop = pull_one_rtt_frame(data, reader.position)
            reader.seek(stop)
            append((kind, frame))
            continue
        append(pull_frame(reader, packet_type))
    return frames


def pull_frame(reader: Reader, packet_type: PacketType | None) -> tuple[int, Frame]:
    """Decode the one frame at the reader's position, checked against ``packet_type`` (None: not
    checked), with the errors :func:`parse_frames` documents; the reader moves past it."""
    start = reader.position
    frame_type = reader.pull_varint()
    if reader.position - start != 1 and frame_type < 0x40:
        raise DecodeError("frame type not minimally encoded", _PV, frame_type)  # RFC 9000 §12.4
    pull = _PULL.get(frame_type)
    if pull is None:
        raise DecodeError(f"unknown frame type {frame_type:#x}", _FEE, frame_type)
    if packet_type is not None and packet_type not in ALLOWED_PACKET_TYPES[frame_type]:
        raise DecodeError(f"frame {frame_type:#x} not allowed in {packet_type.name}", _PV, frame_type)
    try:
        return frame_type, pull(reader, frame_type)
    except DecodeError as exc:
        if exc.frame_type == 0:
            exc.frame_type = frame_type
        raise


_VARINT_MASKS: Final = {2: (1 << 14) - 1, 4: (1 << 30) - 1, 8: (1 << 62) - 1}
_STREAM_USUAL: Final = struct.Struct(">xBIH").unpack_from
_STREAM_USUAL_TYPED: Final = struct.Struct(">BBIH").unpack_from
"""A STREAM frame's usual fields after its type byte, raw: a 1-byte stream ID, a 4-byte offset and a
2-byte length (varints still carrying their width bits, RFC 9000 §16)."""


def pull_stream_fields(payload: BytesLike, position: int, frame_type: int) -> tuple[int, int, int, int]:
    """The fields of the STREAM frame (RFC 9000 §19.8) whose type byte ``frame_type`` is at
    ``position``: ``(stream_id, offset, data_start, data_end)``, offsets into ``payload`` (no copy, no
    frame object: the receive fast path). Same checks as :func:`parse_frames`.

    Raises:
        DecodeError: FRAME_ENCODING_ERROR for a truncated frame or data beyond 2^62-1.
    """
    # The varints are decoded inline and the three fields unrolled (RFC 9000 §16): this runs for every
    # STREAM frame received. A varint's two high bits give its width (1, 2, 4 or 8 bytes). Bounds are
    # checked once, after the fields: a field cut short leaves ``position`` past the end (its value is
    # then never used), and a field missing entirely makes the indexing fail.
    size = len(payload)
    if frame_type & STREAM_OFF and position + 8 <= size:
        # The usual frame of a transfer first, its fields in one unpack: a one-byte stream ID, a
        # 4-byte offset and, when present, a 2-byte length (the widths of RFC 9000 §16 varints; the
        # two bytes after the offset are data when the frame has no length, and then unused).
        stream_id, offset, length = _STREAM_USUAL(payload, position)
        if stream_id < 0x40 and offset >> 30 == 2:
            start = position + 6
            if not frame_type & STREAM_LEN:
                return stream_id, offset & 0x3FFFFFFF, start, size
            if length >> 14 == 1:
                end = start + 2 + (length & 0x3FFF)
                if end <= size:
                    return stream_id, offset & 0x3FFFFFFF, start + 2, end
    position += 1
    offset = 0
    length = -1
    masks = _VARINT_MASKS
    try:
        first = payload[position]
        if first < 0x40:
            stream_id = first
            position += 1
        else:
            width = 1 << (first >> 6)
            stream_id = int.from_bytes(payload[position : position + width], "big") & masks[width]
            position += width
        if frame_type & STREAM_OFF:
            first = payload[position]
            if first < 0x40:
                offset = first
                position += 1
            else:
                width = 1 << (first >> 6)
                offset = int.from_bytes(payload[position : position + width], "big") & masks[width]
                position += width
        if frame_type & STREAM_LEN:
            first = payload[position]
            if first < 0x40:
                length = first
                position += 1
            else:
                width = 1 << (first >> 6)
                length = int.from_bytes(payload[position : position + width], "big") & masks[width]
                position += width
    except IndexError:
        raise DecodeError("truncated STREAM frame", _FEE, frame_type) from None
    if position > size:
        raise DecodeError("truncated STREAM frame", _FEE, frame_type)
    end = size
    if length >= 0:
        end = position + length
        if end > size:
            raise DecodeError("truncated STREAM data", _FEE, frame_type)
    if offset + end - position > VARINT_MAX:
        raise DecodeError("STREAM data beyond 2^62-1", _FEE, frame_type)  # RFC 9000 §19.8
    return stream_id, offset, position, end


def pull_filling_stream(payload: BytesLike) -> tuple[int, int, int, int] | None:
    """The STREAM frame (RFC 9000 §19.8) that fills a packet's ``payload`` from its first byte to its
    last, the usual payload of a data packet: ``(stream_id, offset, data_start, frame_type)``; None
    when the payload does not start with a STREAM frame or holds more than it (the caller then reads
    its frames one by one). Same checks and errors as :func:`pull_stream_fields`.

    Raises:
        DecodeError: FRAME_ENCODING_ERROR for a truncated frame or data beyond 2^62-1.
    """
    size = len(payload)
    if size >= 8:
        # The usual frame first, in one unpack: OFF set, a 1-byte stream ID, a 4-byte offset and,
        # with LEN, a 2-byte length (the widths of RFC 9000 §16 varints).
        kind, stream_id, offset, length = _STREAM_USUAL_TYPED(payload, 0)
        if 0x0C <= kind <= 0x0F and stream_id < 0x40 and offset >> 30 == 2:
            if not kind & STREAM_LEN:
                return stream_id, offset & 0x3FFFFFFF, 6, kind
            if length >> 14 == 1 and 8 + (length & 0x3FFF) == size:
                return stream_id, offset & 0x3FFFFFFF, 8, kind
    if not size or not 0x08 <= payload[0] <= 0x0F:
        return None
    kind = payload[0]
    stream_id, offset, start, end = pull_stream_fields(payload, 0, kind)
    return (stream_id, offset, start, kind) if end == size else None


def pull_one_rtt_frame(payload: BytesLike, position: int) -> tuple[Frame, int]:
    """:func:`pull_frame` for the frame at ``position`` of a 1-RTT packet's ``payload``: the frame and
    the position after it, with the same checks and errors. The usual ACK (RFC 9000 §19.3: one range,
    ACK or ACK_ECN) is decoded here without a reader; anything else goes through :func:`pull_frame`."""
    kind = payload[position]
    if kind == 0x02 or kind == 0x03:
        size = len(payload)
        at = position + 1
        fields = []
        # Largest Acknowledged, ACK Delay, ACK Range Count, First ACK Range (then, for ACK_ECN, the
        # ECT(0), ECT(1) and ECN-CE counts, RFC 9000 §19.3.2, which follow the ranges: one range only).
        for _ in range(4 if kind == 0x02 else 7):
            if at >= size:
                break
            first = payload[at]
            if first < 0x40:
                fields.append(first)
                at += 1
                continue
            width = 1 << (first >> 6)  # RFC 9000 §16
            if at + width > size:
                break
            fields.append(int.from_bytes(payload[at : at + width], "big") & _VARINT_MASKS[width])
            at += width
        else:
            largest, first_range = fields[0], fields[3]
            if fields[2] == 0 and first_range <= largest:  # (else the general decoder, and its errors)
                ecn = None if kind == 0x02 else (fields[4], fields[5], fields[6])
                return Ack(((largest - first_range, largest),), fields[1], ecn), at
    elif kind == 0x18 and position + 4 < len(payload):
        # NEW_CONNECTION_ID (RFC 9000 §19.15) with a 1-byte Sequence Number (a peer's first CIDs; the
        # frame is checked as the general decoder checks it, which decodes any other form and errors).
        sequence, retire_prior_to, length = payload[position + 1 : position + 4]
        cid_end = position + 4 + length
        end = cid_end + 16
        if sequence < 0x40 and retire_prior_to <= sequence and 1 <= length <= 20 and end <= len(payload):
            cid, token = bytes(payload[position + 4 : cid_end]), bytes(payload[cid_end:end])
            return NewConnectionId(sequence, retire_prior_to, cid, token), end
    reader = Reader(payload, position)
    frame = pull_frame(reader, _O)[1]
    return frame, reader.position


def stream_frame_overhead(stream_id: int, offset: int, length: int, *, explicit_length: bool = True) -> int:
    """Bytes a STREAM frame header takes (type, stream ID, offset if non-zero, length if explicit)."""
    size = 1 + varint_size(stream_id)
    if offset:
        size += varint_size(offset)
    if explicit_length:
        size += varint_size(length)
    return size


def crypto_frame_overhead(offset: int, length: int) -> int:
    """Bytes a CRYPTO frame header takes (type, offset, length)."""
    return 1 + varint_size(offset) + varint_size(length)


def frame_size(frame: Frame) -> int:
    """Encoded size of ``frame`` in bytes."""
    if isinstance(frame, Stream):
        return stream_frame_overhead(
            frame.stream_id, frame.offset, len(frame.data), explicit_length=frame.explicit_length
        ) + len(frame.data)
    if isinstance(frame, Crypto):
        return crypto_frame_overhead(frame.offset, len(frame.data)) + len(frame.data)
    if isinstance(frame, Padding):
        return frame.length
    buf = bytearray()
    append_frame(buf, frame)
    return len(buf)
