"""The TCP baseline's frame codec: how streams share one TLS-over-TCP byte stream.

Owns the wire format of the mux frames, their typed values, their encoding and an incremental decoder.
It does not own any connection or stream state (that is :mod:`rudp.tcp.mux`).

Every frame has the same header, so a receiver can always skip to the next frame boundary::

    kind (1 byte) | stream_id (QUIC varint) | length (QUIC varint) | payload (length bytes)

``kind`` is a :class:`FrameKind`. Connection-level frames (PING, PONG, MAX_STREAMS, DATAGRAM, CLOSE,
HELLO) carry stream ID 0. Payloads by kind (all integers are QUIC varints, RFC 9000 §16):

=========== ==============================================================================================
DATA        the stream bytes; kind ``DATA_FIN`` (DATA | FIN bit) also ends the stream
RESET       error code, final size (bytes the sender had written on the stream)
STOP        error code (the receiver asks the sender to stop; the sender answers with RESET)
CREDIT      increment: bytes the receiver consumed, returned as new send credit on that stream
MAX_STREAMS direction (0 bidirectional, 1 unidirectional), the new cumulative stream-count limit
PING/PONG   an opaque token (at most 64 bytes); PONG echoes the PING's token
DATAGRAM    the message (delivered reliably and in order: TCP has no other kind)
CLOSE       error code, flags (bit 0: application close), frame kind that caused it, UTF-8 reason
HELLO       version, stream window, bidi stream limit, uni stream limit, max datagram (0 = off), idle ms
=========== ==============================================================================================

Malformed input raises :class:`~rudp.errors.DecodeError` (FRAME_ENCODING_ERROR): unknown kinds, a stream
ID on a connection frame, oversized payloads, bad or trailing payload fields. An incomplete frame is not
an error for :class:`FrameDecoder` (it waits for more bytes), but is for :func:`decode_frame`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, TypeAlias

from rudp.codec.buffer import Reader, Writer
from rudp.errors import DecodeError

PROTOCOL_VERSION: Final = 1
"""The HELLO version this codec speaks."""
MAX_PAYLOAD_BYTES: Final = 1 << 17
"""Largest payload a decoder accepts (DATA frames are written in much smaller chunks)."""
MAX_TOKEN_BYTES: Final = 64
"""Largest PING/PONG token."""
MAX_REASON_BYTES: Final = 1024
"""Longest CLOSE reason phrase written (longer ones are truncated)."""


class FrameKind(IntEnum):
    """The first byte of every frame."""

    DATA = 0x00
    DATA_FIN = 0x01
    RESET = 0x02
    STOP = 0x03
    CREDIT = 0x04
    MAX_STREAMS = 0x05
    PING = 0x06
    PONG = 0x07
    DATAGRAM = 0x08
    CLOSE = 0x09
    HELLO = 0x0A


_CONNECTION_KINDS: Final = frozenset(
    {
        FrameKind.MAX_STREAMS,
        FrameKind.PING,
        FrameKind.PONG,
        FrameKind.DATAGRAM,
        FrameKind.CLOSE,
        FrameKind.HELLO,
    }
)


@dataclass(frozen=True, slots=True)
class Data:
    """Stream bytes (and optionally the end of the stream)."""

    stream_id: int
    """The stream."""
    data: bytes
    """The bytes, following the previous DATA frame's bytes on this stream."""
    fin: bool = False
    """True when these are the stream's last bytes."""


@dataclass(frozen=True, slots=True)
class Reset:
    """The sender abandons the stream."""

    stream_id: int
    """The stream."""
    error_code: int
    """Application error code."""
    final_size: int
    """Bytes sent on the stream before the reset."""


@dataclass(frozen=True, slots=True)
class Stop:
    """The receiver asks the sender to stop sending on a stream."""

    stream_id: int
    """The stream."""
    error_code: int
    """Application error code."""


@dataclass(frozen=True, slots=True)
class Credit:
    """The receiver consumed ``increment`` bytes of a stream: the sender may send that many more."""

    stream_id: int
    """The stream."""
    increment: int
    """Bytes of credit returned."""


@dataclass(frozen=True, slots=True)
class MaxStreams:
    """The receiver allows the peer to open streams up to a new cumulative count."""

    bidirectional: bool
    """Which kind of stream."""
    maximum: int
    """Total streams of that kind the peer may have opened."""


@dataclass(frozen=True, slots=True)
class Ping:
    """Asks for a PONG with the same token."""

    token: bytes
    """Opaque token, at most :data:`MAX_TOKEN_BYTES`."""


@dataclass(frozen=True, slots=True)
class Pong:
    """Answers a PING."""

    token: bytes
    """The PING's token."""


@dataclass(frozen=True, slots=True)
class Datagram:
    """A message outside any stream."""

    data: bytes
    """The message."""


@dataclass(frozen=True, slots=True)
class Close:
    """The sender closes the connection; nothing follows it."""

    error_code: int
    """Application or transport error code."""
    reason: str
    """Reason phrase."""
    application: bool = True
    """True for an application close, False for a protocol error."""
    frame_kind: int = 0
    """The frame kind that caused a protocol error (0 when none)."""


@dataclass(frozen=True, slots=True)
class Hello:
    """The first frame each side sends: its version and the limits it grants the peer."""

    stream_window: int
    """Per-stream receive window (initial credit of every stream toward the sender)."""
    max_streams_bidi: int
    """Bidirectional streams the peer may open (cumulative, raised later by MAX_STREAMS)."""
    max_streams_uni: int
    """Unidirectional streams the peer may open."""
    max_datagram_bytes: int = 0
    """Largest DATAGRAM payload accepted; 0 when datagrams are off."""
    idle_timeout_ms: int = 0
    """Idle timeout of the sender in milliseconds (0 = none)."""
    version: int = PROTOCOL_VERSION
    """Protocol version."""


Frame: TypeAlias = Data | Reset | Stop | Credit | MaxStreams | Ping | Pong | Datagram | Close | Hello


_KIND_OF: Final[dict[type, FrameKind]] = {
    Reset: FrameKind.RESET,
    Stop: FrameKind.STOP,
    Credit: FrameKind.CREDIT,
    MaxStreams: FrameKind.MAX_STREAMS,
    Ping: FrameKind.PING,
    Pong: FrameKind.PONG,
    Datagram: FrameKind.DATAGRAM,
    Close: FrameKind.CLOSE,
    Hello: FrameKind.HELLO,
}


def frame_kind(frame: Frame) -> FrameKind:
    """The kind byte ``frame`` is written with."""
    if isinstance(frame, Data):
        return FrameKind.DATA_FIN if frame.fin else FrameKind.DATA
    return _KIND_OF[type(frame)]


def _fail(reason: str) -> DecodeError:
    return DecodeError(f"tcp mux: {reason}")


def _header(writer: Writer, kind: int, stream_id: int, payload_bytes: int) -> None:
    writer.push_uint8(kind)
    writer.push_varint(stream_id)
    writer.push_varint(payload_bytes)


def _varints(*values: int) -> bytes:
    payload = Writer()
    for value in values:
        payload.push_varint(value)
    return payload.getvalue()


def _encode_body(frame: Frame) -> tuple[FrameKind, int, bytes]:
    """Return ``(kind, stream_id, payload)`` for a frame other than DATA."""
    if isinstance(frame, Reset):
        return FrameKind.RESET, frame.stream_id, _varints(frame.error_code, frame.final_size)
    if isinstance(frame, Stop):
        return FrameKind.STOP, frame.stream_id, _varints(frame.error_code)
    if isinstance(frame, Credit):
        return FrameKind.CREDIT, frame.stream_id, _varints(frame.increment)
    if isinstance(frame, MaxStreams):
        return FrameKind.MAX_STREAMS, 0, _varints(0 if frame.bidirectional else 1, frame.maximum)
    if isinstance(frame, Ping | Pong):
        if len(frame.token) > MAX_TOKEN_BYTES:
            raise ValueError("ping token too long")
        return (FrameKind.PING if isinstance(frame, Ping) else FrameKind.PONG), 0, frame.token
    if isinstance(frame, Datagram):
        return FrameKind.DATAGRAM, 0, frame.data
    if isinstance(frame, Close):
        reason = frame.reason.encode("utf-8", "replace")[:MAX_REASON_BYTES]
        flags = 1 if frame.application else 0
        return FrameKind.CLOSE, 0, _varints(frame.error_code, flags, frame.frame_kind) + reason
    if isinstance(frame, Hello):
        fields = (
            frame.version,
            frame.stream_window,
            frame.max_streams_bidi,
            frame.max_streams_uni,
            frame.max_datagram_bytes,
            frame.idle_timeout_ms,
        )
        return FrameKind.HELLO, 0, _varints(*fields)
    raise TypeError(f"not a frame: {frame!r}")


def write_frame(writer: Writer, frame: Frame) -> None:
    """Append the encoding of ``frame`` to ``writer``.

    Raises:
        ValueError: a field is out of range (negative, above the varint maximum, payload too long).
    """
    if isinstance(frame, Data):
        if len(frame.data) > MAX_PAYLOAD_BYTES:
            raise ValueError("DATA payload too long")
        _header(writer, FrameKind.DATA_FIN if frame.fin else FrameKind.DATA, frame.stream_id, len(frame.data))
        writer.push_bytes(frame.data)
        return
    kind, stream_id, payload = _encode_body(frame)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"{kind.name} payload too long")
    _header(writer, kind, stream_id, len(payload))
    writer.push_bytes(payload)


def encode_frame(frame: Frame) -> bytes:
    """Return the encoding of one frame.

    Raises:
        ValueError: a field is out of range.
    """
    writer = Writer()
    write_frame(writer, frame)
    return writer.getvalue()


def _decode_payload(kind: FrameKind, stream_id: int, payload: memoryview) -> Frame:
    if kind in (FrameKind.DATA, FrameKind.DATA_FIN):
        return Data(stream_id, bytes(payload), kind is FrameKind.DATA_FIN)
    if kind in (FrameKind.PING, FrameKind.PONG):
        if len(payload) > MAX_TOKEN_BYTES:
            raise _fail("ping token too long")
        return (Ping if kind is FrameKind.PING else Pong)(bytes(payload))
    if kind is FrameKind.DATAGRAM:
        return Datagram(bytes(payload))
    reader = Reader(payload)
    frame: Frame
    if kind is FrameKind.RESET:
        frame = Reset(stream_id, reader.pull_varint(), reader.pull_varint())
    elif kind is FrameKind.STOP:
        frame = Stop(stream_id, reader.pull_varint())
    elif kind is FrameKind.CREDIT:
        frame = Credit(stream_id, reader.pull_varint())
    elif kind is FrameKind.MAX_STREAMS:
        direction = reader.pull_varint()
        if direction > 1:
            raise _fail("bad MAX_STREAMS direction")
        frame = MaxStreams(direction == 0, reader.pull_varint())
    elif kind is FrameKind.CLOSE:
        code, flags, cause = reader.pull_varint(), reader.pull_varint(), reader.pull_varint()
        if flags > 1:
            raise _fail("bad CLOSE flags")
        reason = bytes(reader.pull_rest()).decode("utf-8", "replace")
        frame = Close(code, reason, flags == 1, cause)
    else:
        version, window, bidi, uni = (reader.pull_varint() for _ in range(4))
        datagram, idle = reader.pull_varint(), reader.pull_varint()
        frame = Hello(window, bidi, uni, datagram, idle, version)
    if not reader.eof():
        raise _fail(f"trailing bytes in {kind.name}")
    return frame


def parse_frame(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[Frame, int] | None:
    """Decode the frame starting at ``offset``; return ``(frame, next_offset)``, or None if incomplete.

    Raises:
        DecodeError: the bytes cannot be a valid frame (whatever follows them).
    """
    view = memoryview(data)
    end = len(view)
    if offset >= end:
        return None
    try:
        kind = FrameKind(view[offset])
    except ValueError:
        raise _fail(f"unknown frame kind {view[offset]:#x}") from None
    reader = Reader(view, offset + 1)
    try:
        stream_id = reader.pull_varint()
        length = reader.pull_varint()
    except DecodeError:
        if end - offset >= 17:  # kind + two 8-byte varints: a complete header cannot be missing
            raise
        return None
    if kind in _CONNECTION_KINDS and stream_id != 0:
        raise _fail(f"{kind.name} must carry stream ID 0")
    if length > MAX_PAYLOAD_BYTES:
        raise _fail(f"{kind.name} payload of {length} bytes is too long")
    start = reader.position
    if start + length > end:
        return None
    return _decode_payload(kind, stream_id, view[start : start + length]), start + length


def decode_frame(data: bytes | bytearray | memoryview) -> Frame:
    """Decode exactly one complete frame.

    Raises:
        DecodeError: malformed, truncated, or followed by extra bytes.
    """
    parsed = parse_frame(data)
    if parsed is None:
        raise _fail("truncated frame")
    frame, end = parsed
    if end != len(data):
        raise _fail("bytes after the frame")
    return frame


class FrameDecoder:
    """Incremental decoder: feed TCP bytes in arbitrary pieces, take whole frames out.

    Keeps only the bytes of one incomplete frame between calls (at most :data:`MAX_PAYLOAD_BYTES` plus a
    header).
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = b""

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not yet decoded into a frame."""
        return len(self._pending)

    def feed(self, data: bytes | bytearray | memoryview) -> Iterator[Frame]:
        """Add ``data`` and yield every frame now complete, in order.

        Raises:
            DecodeError: malformed input (the decoder must not be used afterwards).
        """
        buffer = self._pending + bytes(data) if self._pending else bytes(data)
        self._pending = b""
        offset = 0
        while True:
            parsed = parse_frame(buffer, offset)
            if parsed is None:
                self._pending = buffer[offset:]
                return
            frame, offset = parsed
            yield frame


__all__ = [
    "MAX_PAYLOAD_BYTES",
    "MAX_REASON_BYTES",
    "MAX_TOKEN_BYTES",
    "PROTOCOL_VERSION",
    "Close",
    "Credit",
    "Data",
    "Datagram",
    "Frame",
    "FrameDecoder",
    "FrameKind",
    "Hello",
    "MaxStreams",
    "Ping",
    "Pong",
    "Reset",
    "Stop",
    "decode_frame",
    "encode_frame",
    "frame_kind",
    "parse_frame",
    "write_frame",
]
