"""HTTP/3 wire format: frame and stream types, SETTINGS, and a frame reader over a rudp stream.

Owns the bytes of RFC 9114 §7 (frames: a varint type, a varint length, the payload) and §6.2 (the
varint type that opens each unidirectional stream). It knows nothing of request semantics; the
per-connection rules (which frame may arrive where) are :mod:`rudp.h3.connection`'s.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from rudp.aio.stream import Stream
from rudp.codec.varint import VARINT_MAX, decode_varint, encode_varint
from rudp.errors import DecodeError
from rudp.h3.errors import H3Error, H3ErrorCode


class FrameType(IntEnum):
    """HTTP/3 frame types (RFC 9114 §7.2, registry §11.2.1)."""

    DATA = 0x00
    HEADERS = 0x01
    CANCEL_PUSH = 0x03
    SETTINGS = 0x04
    PUSH_PROMISE = 0x05
    GOAWAY = 0x07
    MAX_PUSH_ID = 0x0D


HTTP2_ONLY_FRAME_TYPES: Final = frozenset({0x02, 0x06, 0x08, 0x09})
"""HTTP/2 frame types with no HTTP/3 meaning (PRIORITY, PING, WINDOW_UPDATE, CONTINUATION): receiving
one is a connection error H3_FRAME_UNEXPECTED (RFC 9114 §7.2.8)."""


class StreamType(IntEnum):
    """Unidirectional stream types (RFC 9114 §6.2; QPACK's in RFC 9204 §4.2)."""

    CONTROL = 0x00
    PUSH = 0x01
    QPACK_ENCODER = 0x02
    QPACK_DECODER = 0x03


class Setting(IntEnum):
    """SETTINGS identifiers (RFC 9114 §7.2.4.1; RFC 9204 §5; RFC 9220 §3; RFC 9297 §2.1.1)."""

    QPACK_MAX_TABLE_CAPACITY = 0x01
    MAX_FIELD_SECTION_SIZE = 0x06
    QPACK_BLOCKED_STREAMS = 0x07
    ENABLE_CONNECT_PROTOCOL = 0x08
    H3_DATAGRAM = 0x33


HTTP2_ONLY_SETTINGS: Final = frozenset({0x00, 0x02, 0x03, 0x04, 0x05})
"""Setting identifiers of HTTP/2 with no HTTP/3 counterpart: receiving one is a connection error
H3_SETTINGS_ERROR (RFC 9114 §7.2.4.1)."""


def is_reserved(value: int) -> bool:
    """True for the reserved "grease" code points 0x1f * N + 0x21 of frame types, stream types,
    settings and error codes (RFC 9114 §7.2.8, §6.2.3, §7.2.4.1, §8.1): ignored when received."""
    return value >= 0x21 and (value - 0x21) % 0x1F == 0


def grease_value(n: int) -> int:
    """The ``n``-th reserved code point (0x21, 0x40, ...): sent to exercise peers' unknown handling."""
    return 0x1F * n + 0x21


def encode_frame(frame_type: int, payload: bytes = b"") -> bytes:
    """One frame: type, length, payload (RFC 9114 §7.1)."""
    return encode_varint(frame_type) + encode_varint(len(payload)) + payload


def data_frame_header(length: int) -> bytes:
    """The type and length of a DATA frame whose ``length`` payload bytes follow separately."""
    return encode_varint(FrameType.DATA) + encode_varint(length)


def encode_settings(settings: dict[int, int]) -> bytes:
    """A SETTINGS frame (RFC 9114 §7.2.4): identifier/value varint pairs."""
    payload = b"".join(encode_varint(key) + encode_varint(value) for key, value in settings.items())
    return encode_frame(FrameType.SETTINGS, payload)


def parse_settings(payload: bytes) -> dict[int, int]:
    """Decode a SETTINGS payload.

    Raises:
        H3Error: H3_FRAME_ERROR for a truncated pair; H3_SETTINGS_ERROR for an identifier sent twice
            or an HTTP/2-only identifier (RFC 9114 §7.2.4, §7.2.4.1).
    """
    settings: dict[int, int] = {}
    offset = 0
    while offset < len(payload):
        try:
            key, offset = decode_varint(payload, offset)
            value, offset = decode_varint(payload, offset)
        except DecodeError:
            raise H3Error(H3ErrorCode.H3_FRAME_ERROR, "truncated SETTINGS frame") from None
        if key in settings:
            raise H3Error(H3ErrorCode.H3_SETTINGS_ERROR, f"setting {key:#x} sent twice")
        if key in HTTP2_ONLY_SETTINGS:
            raise H3Error(H3ErrorCode.H3_SETTINGS_ERROR, f"HTTP/2 setting {key:#x} in HTTP/3")
        settings[key] = value
    return settings


def parse_single_varint(payload: bytes, frame_name: str) -> int:
    """The payload of GOAWAY, MAX_PUSH_ID and CANCEL_PUSH: exactly one varint (RFC 9114 §7.2.3,
    §7.2.6, §7.2.7).

    Raises:
        H3Error: H3_FRAME_ERROR when the payload is not exactly one varint.
    """
    try:
        value, end = decode_varint(payload, 0)
    except DecodeError:
        raise H3Error(H3ErrorCode.H3_FRAME_ERROR, f"malformed {frame_name} frame") from None
    if end != len(payload):
        raise H3Error(H3ErrorCode.H3_FRAME_ERROR, f"malformed {frame_name} frame")
    return value


def encode_single_varint_frame(frame_type: int, value: int) -> bytes:
    """GOAWAY, MAX_PUSH_ID or CANCEL_PUSH carrying ``value``."""
    return encode_frame(frame_type, encode_varint(value))


READ_CHUNK: Final = 64 * 1024


class FrameReader:
    """Reads varints and frames from a rudp :class:`Stream`, pulling only what the caller asks for.

    The caller reads a frame header, then either the whole payload (:meth:`read_payload`, bounded
    by the caller's limit) or pieces of it (:meth:`read_some`, for DATA), so a large body is never
    buffered whole and stream flow control applies back-pressure to the peer.
    """

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self._buf = bytearray()
        self._eof = False
        self.remaining = 0
        """Payload bytes of the current frame not yet consumed."""

    async def _fill(self, n: int) -> bool:
        """Buffer at least ``n`` bytes; False if the stream ended first."""
        while len(self._buf) < n:
            if self._eof:
                return False
            chunk = await self.stream.read(READ_CHUNK)
            if not chunk:
                self._eof = True
                return False
            self._buf += chunk
        return True

    async def read_varint(self, *, at_boundary: bool = True) -> int | None:
        """One varint; None if the stream ended cleanly before it (only ``at_boundary``).

        Raises:
            H3Error: H3_FRAME_ERROR when the stream ends inside the varint (RFC 9114 §7.1).
        """
        if not await self._fill(1):
            if at_boundary:
                return None
            raise H3Error(H3ErrorCode.H3_FRAME_ERROR, "stream ended inside a frame")
        size = 1 << (self._buf[0] >> 6)
        if not await self._fill(size):
            raise H3Error(H3ErrorCode.H3_FRAME_ERROR, "stream ended inside a frame")
        value, _ = decode_varint(self._buf, 0)
        del self._buf[:size]
        return value

    async def read_frame_header(self) -> tuple[int, int] | None:
        """(type, length) of the next frame, after skipping what is left of the current one; None
        at a clean end of the stream.

        Raises:
            H3Error: H3_FRAME_ERROR when the stream ends inside a frame.
        """
        await self.skip_payload()
        frame_type = await self.read_varint()
        if frame_type is None:
            return None
        length = await self.read_varint(at_boundary=False)
        if length is None or length > VARINT_MAX:  # pragma: no cover - read_varint raised already
            raise H3Error(H3ErrorCode.H3_FRAME_ERROR, "stream ended inside a frame")
        self.remaining = length
        return frame_type, length

    async def read_payload(self) -> bytes:
        """The whole payload of the current frame (the caller checked its length against a limit).

        Raises:
            H3Error: H3_FRAME_ERROR when the stream ends inside the frame.
        """
        n, self.remaining = self.remaining, 0
        if not await self._fill(n):
            raise H3Error(H3ErrorCode.H3_FRAME_ERROR, "stream ended inside a frame")
        payload = bytes(self._buf[:n])
        del self._buf[:n]
        return payload

    async def read_some(self) -> bytes:
        """Up to the rest of the current frame's payload, at least one byte if any remains.

        Raises:
            H3Error: H3_FRAME_ERROR when the stream ends inside the frame.
        """
        if self.remaining == 0:
            return b""
        if not self._buf and not await self._fill(1):
            raise H3Error(H3ErrorCode.H3_FRAME_ERROR, "stream ended inside a frame")
        n = min(self.remaining, len(self._buf))
        piece = bytes(self._buf[:n])
        del self._buf[:n]
        self.remaining -= n
        return piece

    async def read_chunk(self) -> bytes:
        """Raw bytes after what was parsed (QPACK instruction streams); b"" at the end of the stream."""
        if self._buf:
            chunk = bytes(self._buf)
            self._buf.clear()
            return chunk
        if self._eof:
            return b""
        chunk = await self.stream.read(READ_CHUNK)
        if not chunk:
            self._eof = True
        return chunk

    async def skip_payload(self) -> None:
        """Discard the rest of the current frame (unknown and reserved frame types, RFC 9114 §9)."""
        while self.remaining:
            await self.read_some()


__all__ = [
    "HTTP2_ONLY_FRAME_TYPES",
    "HTTP2_ONLY_SETTINGS",
    "FrameReader",
    "FrameType",
    "Setting",
    "StreamType",
    "data_frame_header",
    "encode_frame",
    "encode_settings",
    "encode_single_varint_frame",
    "grease_value",
    "is_reserved",
    "parse_settings",
    "parse_single_varint",
]
