"""One HTTP message in each direction of a request stream (RFC 9114 §4.1): reading the peer's
HEADERS, DATA and trailers in the order the RFC allows, and writing ours.

Reading is pulled by the consumer (a response body iterator, an ASGI ``receive``), so a body is never
buffered whole and QUIC flow control slows a sender down to the reader's pace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from typing import Final, TypeVar

from rudp.aio.stream import Stream
from rudp.errors import ConnectionClosed, StreamError, StreamReset, StreamStopped
from rudp.h3.connection import H3Connection, stream_error_from
from rudp.h3.errors import H3Error, H3ErrorCode, HeadersTooLarge
from rudp.h3.frames import HTTP2_ONLY_FRAME_TYPES, FrameReader, FrameType, data_frame_header
from rudp.h3.messages import RawHeaders, validate

_T = TypeVar("_T")

_E = H3ErrorCode
_CONTROL_ONLY = frozenset(
    {FrameType.SETTINGS, FrameType.GOAWAY, FrameType.MAX_PUSH_ID, FrameType.CANCEL_PUSH}
)

DATA_FRAME_BYTES: Final = 64 * 1024
"""Payload bytes per DATA frame we write (and per write()/drain() step)."""


class MessageReader:
    """The peer's message on a request stream: HEADERS, then DATA, then optional trailers.

    ``kind`` is "request" (a server reading) or "response" (a client reading; 1xx interim responses are
    skipped). Every violation is applied (stream reset, or connection closed) and raised as an
    :class:`H3Error`; the peer's reset is raised as an H3Error with ``by_peer`` set.
    """

    def __init__(self, h3: H3Connection, stream: Stream, kind: str) -> None:
        self.h3 = h3
        self.stream = stream
        self.kind = kind
        self.stream_id = stream.stream_id
        self._frames = FrameReader(stream)
        self.headers: RawHeaders | None = None
        self.pseudo: dict[bytes, bytes] = {}
        self.trailers: RawHeaders | None = None
        self.complete = False
        self._in_data = False
        self._content_length: int | None = None
        self._received = 0

    def _abort(self, error: H3Error) -> H3Error:
        if error.stream_id is None:
            self.h3.fail(error)
        else:
            self.h3.fail_stream(self.stream, error)
        return error

    async def _guarded(self, read: Awaitable[_T]) -> _T:
        """Run one read: our own protocol errors are applied to the stream or connection, the peer's
        reset or stop becomes its H3Error."""
        try:
            return await read
        except HeadersTooLarge as exc:
            if self.kind == "request" and self.headers is None:
                # A server answers 431 and stops reading (RFC 9114 §4.2.2, §10.5.1): its decision.
                if exc.undecoded:
                    self.h3.cancel_header_block(self.stream_id)
                raise
            raise self._abort(exc) from None
        except H3Error as exc:
            if exc.by_peer:
                raise
            raise self._abort(exc) from None
        except (StreamReset, StreamStopped) as exc:
            raise stream_error_from(exc, self.stream_id) from None

    async def read_headers(self) -> RawHeaders:
        """The header section (pseudo-header fields in :attr:`pseudo`, the rest returned).

        Raises:
            H3Error: a stream or connection error (already applied).
            ConnectionClosed: the connection ended.
        """
        return await self._guarded(self._read_headers())

    async def _read_headers(self) -> RawHeaders:
        while True:
            header = await self._frames.read_frame_header()
            if header is None:
                code = _E.H3_REQUEST_INCOMPLETE if self.kind == "request" else _E.H3_MESSAGE_ERROR
                raise H3Error(
                    code, f"the stream ended before the {self.kind}'s headers", stream_id=self.stream_id
                )
            frame_type, length = header
            if frame_type == FrameType.HEADERS:
                fields = await self._decode(length)
                self.pseudo = validate(fields, self.kind, self.stream_id)
                if b":protocol" in self.pseudo and not self.h3.settings.enable_connect_protocol:
                    # Without our SETTINGS_ENABLE_CONNECT_PROTOCOL, :protocol is an unknown pseudo-header
                    # field: the request is malformed (RFC 9220 §3, RFC 9114 §4.1.2).
                    raise H3Error(
                        _E.H3_MESSAGE_ERROR, "extended CONNECT is not enabled", stream_id=self.stream_id
                    )
                if self.kind == "response" and self.pseudo[b":status"].startswith(b"1"):
                    continue  # an interim response (RFC 9114 §4.1): the final one follows
                self.headers = [(n, v) for n, v in fields if not n.startswith(b":")]
                for name, value in self.headers:
                    if name == b"content-length":
                        # At most 19 significant digits: no body is longer than 2**62 bytes (a QUIC
                        # stream's limit), and int() refuses strings past 4300 digits.
                        if not value.isdigit() or len(value.lstrip(b"0")) > 19:
                            raise H3Error(_E.H3_MESSAGE_ERROR, "bad content-length", stream_id=self.stream_id)
                        if self._content_length is not None and int(value) != self._content_length:
                            # RFC 9110 §8.6: differing lengths make the message invalid.
                            raise H3Error(
                                _E.H3_MESSAGE_ERROR, "conflicting content-lengths", stream_id=self.stream_id
                            )
                        self._content_length = int(value)
                return self.headers
            self._check_other_frame(frame_type, before_headers=True)

    def _check_other_frame(self, frame_type: int, *, before_headers: bool = False) -> None:
        """Frames other than HEADERS/DATA: error for those not allowed here, else skipped."""
        if frame_type == FrameType.DATA and before_headers:
            raise H3Error(_E.H3_FRAME_UNEXPECTED, "DATA before HEADERS")
        if frame_type in _CONTROL_ONLY:
            raise H3Error(_E.H3_FRAME_UNEXPECTED, f"{FrameType(frame_type).name} on a request stream")
        if frame_type in HTTP2_ONLY_FRAME_TYPES:
            raise H3Error(_E.H3_FRAME_UNEXPECTED, f"HTTP/2 frame type {frame_type:#x}")
        if frame_type == FrameType.PUSH_PROMISE:
            if self.kind == "request":
                raise H3Error(_E.H3_FRAME_UNEXPECTED, "PUSH_PROMISE from a client")
            raise H3Error(_E.H3_ID_ERROR, "PUSH_PROMISE without MAX_PUSH_ID")
        # unknown or reserved: skipped (RFC 9114 §9)

    async def _decode(self, length: int) -> RawHeaders:
        limit = self.h3.settings.max_field_section_size
        if length > limit:
            # Even compressed it is larger than the section may be: not read, not decoded.
            error = HeadersTooLarge(length, limit, self.stream_id, ours=True)
            error.undecoded = True
            raise error
        block = await self._frames.read_payload()
        return await self.h3.decode_headers(self.stream_id, block)

    async def read_data(self) -> bytes:
        """The next piece of the body; b"" at its end (trailers, if any, are then in :attr:`trailers`).

        Raises:
            H3Error: a stream or connection error (already applied), or the peer's reset.
            ConnectionClosed: the connection ended.
        """
        if self.complete:
            return b""
        return await self._guarded(self._read_data())

    async def _read_data(self) -> bytes:
        while True:
            if self._in_data:
                piece = await self._frames.read_some()
                if piece:
                    self._received += len(piece)
                    if self._content_length is not None and self._received > self._content_length:
                        raise H3Error(
                            _E.H3_MESSAGE_ERROR, "more body than content-length", stream_id=self.stream_id
                        )
                    return piece
                self._in_data = False
            header = await self._frames.read_frame_header()
            if header is None:
                if self._content_length is not None and self._received != self._content_length:
                    raise H3Error(
                        _E.H3_MESSAGE_ERROR, "body shorter than content-length", stream_id=self.stream_id
                    )
                self.complete = True
                return b""
            frame_type, length = header
            if self.trailers is not None and frame_type in (FrameType.DATA, FrameType.HEADERS):
                raise H3Error(_E.H3_FRAME_UNEXPECTED, "a frame after the trailers")
            if frame_type == FrameType.DATA:
                self._in_data = length > 0
            elif frame_type == FrameType.HEADERS:
                fields = await self._decode(length)
                validate(fields, "trailers", self.stream_id)
                self.trailers = fields
            else:
                self._check_other_frame(frame_type)


class MessageWriter:
    """Our message on a request stream: HEADERS, DATA frames, optional trailers, then FIN."""

    def __init__(self, h3: H3Connection, stream: Stream) -> None:
        self.h3 = h3
        self.stream = stream
        self.headers_sent = False
        self.ended = False

    async def send_headers(self, fields: RawHeaders, *, end: bool = False) -> None:
        """Write a HEADERS frame (also used for trailers), optionally ending the stream.

        Raises:
            H3Error: the section exceeds the peer's limit (nothing sent), or the peer stopped the stream.
            ConnectionClosed: the connection ended.
        """
        frame = self.h3.encode_headers(self.stream.stream_id, fields)
        self.headers_sent = True
        await self._write(frame, end=end)

    async def send_data(self, data: bytes, *, end: bool = False) -> None:
        """Write ``data`` as DATA frames of at most :data:`DATA_FRAME_BYTES`, waiting for flow control."""
        view = memoryview(data)
        for start in range(0, len(view), DATA_FRAME_BYTES):
            piece = view[start : start + DATA_FRAME_BYTES]
            await self._write(data_frame_header(len(piece)) + bytes(piece), end=False)
        if end:
            await self.end()

    async def end(self) -> None:
        """Finish our side of the stream (FIN)."""
        await self._write(b"", end=True)

    async def _write(self, data: bytes, *, end: bool) -> None:
        try:
            if data:
                self.stream.write(data)
            if end and not self.ended:
                self.ended = True
                self.stream.write_eof()
            await self.stream.drain()
        except StreamStopped as exc:
            raise stream_error_from(exc, self.stream.stream_id) from None

    def abort(self, code: int) -> None:
        """Reset our side of the stream with an HTTP/3 code (e.g. H3_INTERNAL_ERROR mid-response)."""
        with contextlib.suppress(StreamError, ConnectionClosed):
            self.stream.reset(code)


__all__ = ["DATA_FRAME_BYTES", "MessageReader", "MessageWriter"]
