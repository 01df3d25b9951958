"""H3Connection: the HTTP/3 state of one rudp QUIC connection (RFC 9114), either role.

Owns the three unidirectional streams each endpoint opens (control, QPACK encoder and decoder), the
SETTINGS exchange, QPACK through ``pylsqpack`` (RFC 9204), GOAWAY, the rules on which frame may arrive
on which stream, and the mapping of every violation to its RFC 9114 §8.1 code: a connection error
closes the QUIC connection with the code, a stream error resets and stops that request stream only.
The SETTINGS of the extensions are checked here too (SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 9220 §3;
SETTINGS_H3_DATAGRAM, RFC 9297 §2.1.1); the HTTP Datagrams themselves are routed by the
:class:`~rudp.h3.datagrams.DatagramRouter` this object owns and feeds.
Request and response semantics sit on top (:mod:`rudp.h3.client`, :mod:`rudp.h3.server`); this module
only uses rudp's public asyncio API (:class:`~rudp.aio.connection.Connection`, :class:`Stream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import pylsqpack

from rudp.aio.connection import Connection
from rudp.aio.stream import Stream
from rudp.codec.varint import encode_varint
from rudp.errors import ConnectionClosed, StreamError, StreamReset, StreamStopped, fresh_close_error
from rudp.h3.datagrams import DatagramRouter
from rudp.h3.errors import H3Error, H3ErrorCode, HeadersTooLarge
from rudp.h3.frames import (
    HTTP2_ONLY_FRAME_TYPES,
    FrameReader,
    FrameType,
    Setting,
    StreamType,
    encode_frame,
    encode_settings,
    encode_single_varint_frame,
    grease_value,
    parse_settings,
    parse_single_varint,
)
from rudp.h3.messages import RawHeaders, field_section_size

H3_ALPN: Final = "h3"
"""The ALPN token of HTTP/3 (RFC 9114 §3.1)."""

MAX_CONTROL_FRAME: Final = 16 * 1024
"""Largest SETTINGS/GOAWAY/MAX_PUSH_ID/CANCEL_PUSH payload accepted (H3_EXCESSIVE_LOAD beyond)."""

_log = logging.getLogger("rudp.h3")

_E = H3ErrorCode
_CONTROL_ONLY = frozenset(
    {FrameType.SETTINGS, FrameType.GOAWAY, FrameType.MAX_PUSH_ID, FrameType.CANCEL_PUSH}
)


@dataclass(frozen=True)
class H3Settings:
    """What this endpoint announces in its SETTINGS frame (RFC 9114 §7.2.4.1, RFC 9204 §5).

    Attributes:
        qpack_max_table_capacity: the QPACK dynamic table the peer's encoder may use (bytes).
        qpack_blocked_streams: request streams that may wait for QPACK encoder instructions.
        max_field_section_size: the largest header (or trailer) section we accept, as RFC 9114 §4.2.2
            measures it; larger ones are refused (431 by a server, H3_EXCESSIVE_LOAD by a client).

        enable_connect_protocol: announce SETTINGS_ENABLE_CONNECT_PROTOCOL=1 (RFC 9220 §3): a server
            accepts extended CONNECT requests (``:protocol``). ``serve_asgi(connect_handler=...)`` turns
            it on; without it a request carrying ``:protocol`` is malformed (H3_MESSAGE_ERROR).
        datagrams: announce SETTINGS_H3_DATAGRAM=1 (RFC 9297 §2.1.1) when QUIC datagrams (RFC 9221)
            are enabled on both sides; :func:`rudp.h3.connect` and ``serve_asgi`` then switch
            ``Config.datagrams`` on.
    """

    qpack_max_table_capacity: int = 4096
    qpack_blocked_streams: int = 16
    max_field_section_size: int = 64 * 1024
    enable_connect_protocol: bool = False
    datagrams: bool = False


class H3Connection:
    """HTTP/3 on one established rudp :class:`Connection`.

    Create it, ``await start()`` (opens the critical streams, sends SETTINGS, starts reading what the
    peer opens); then a client opens request streams with :meth:`open_request_stream` and a server gets
    each request stream passed to ``request_handler`` (run as its own task).
    """

    def __init__(
        self,
        conn: Connection,
        *,
        settings: H3Settings | None = None,
        request_handler: Callable[[Stream], Awaitable[None]] | None = None,
    ) -> None:
        self.conn = conn
        self.is_client = conn.is_client
        self.settings = settings or H3Settings()
        self._request_handler = request_handler
        self._decoder = pylsqpack.Decoder(
            self.settings.qpack_max_table_capacity, self.settings.qpack_blocked_streams
        )
        self._encoder = pylsqpack.Encoder()
        self.datagrams = DatagramRouter(conn)
        """HTTP Datagrams (RFC 9297) of this connection."""
        self.peer_settings: dict[int, int] | None = None
        self.peer_settings_received = asyncio.Event()
        self._control: Stream | None = None
        self._encoder_stream: Stream | None = None
        self._decoder_stream: Stream | None = None
        self._peer_streams: set[int] = set()
        self._blocked: dict[int, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._accept_task: asyncio.Task[None] | None = None
        self.error: H3Error | None = None
        """The connection error this side detected, if any."""
        self.goaway_received: int | None = None
        """The ID carried by the peer's last GOAWAY (RFC 9114 §5.2), None before one arrives."""
        self.goaway_sent: int | None = None
        self.goaway_event = asyncio.Event()
        """Set when the peer's first GOAWAY arrives."""
        self._max_request_id = -1
        self._max_push_id: int | None = None
        self.closed = asyncio.Event()
        self.requests_active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # ------------------------------------------------------------------ start and stop

    async def start(self) -> None:
        """Open our control and QPACK streams, send SETTINGS and start serving the peer's streams.

        Raises:
            ConnectionClosed: the connection closed first.
        """
        self._control = await self.conn.open_uni_stream()
        s = self.settings
        settings = {
            Setting.QPACK_MAX_TABLE_CAPACITY: s.qpack_max_table_capacity,
            Setting.QPACK_BLOCKED_STREAMS: s.qpack_blocked_streams,
            Setting.MAX_FIELD_SECTION_SIZE: s.max_field_section_size,
            grease_value(7): 0x2A,  # a reserved setting, which peers must ignore (RFC 9114 §7.2.4.1)
        }
        if s.enable_connect_protocol:
            settings[Setting.ENABLE_CONNECT_PROTOCOL] = 1  # RFC 9220 §3
        if s.datagrams and self.conn.datagrams_enabled:
            # RFC 9297 §2.1.1: only with the QUIC DATAGRAM extension, which both sides enabled.
            settings[Setting.H3_DATAGRAM] = 1
            self.datagrams.local_enabled = True
            self._spawn(self._read_datagrams())
        elif s.datagrams:
            self.datagrams.off_reason = "QUIC datagrams (RFC 9221, Config.datagrams) are not on at both ends"
        # SETTINGS first (RFC 9114 §6.2.1), then a reserved frame type peers must skip (§7.2.8).
        self._control.write(
            encode_varint(StreamType.CONTROL)
            + encode_settings(settings)
            + encode_frame(grease_value(3), b"rudp")
        )
        self._encoder_stream = await self.conn.open_uni_stream()
        self._encoder_stream.write(encode_varint(StreamType.QPACK_ENCODER))
        self._decoder_stream = await self.conn.open_uni_stream()
        self._decoder_stream.write(encode_varint(StreamType.QPACK_DECODER))
        self._accept_task = asyncio.create_task(self._accept_loop())

    async def wait_peer_settings(self) -> dict[int, int]:
        """The peer's SETTINGS, once they have arrived.

        Raises:
            ConnectionClosed: the connection closed first.
        """
        if self.peer_settings is None:
            settings = asyncio.ensure_future(self.peer_settings_received.wait())
            closed = asyncio.ensure_future(self.closed.wait())
            try:
                await asyncio.wait({settings, closed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                settings.cancel()
                closed.cancel()
        if self.peer_settings is None:
            raise fresh_close_error(self.conn.close_error or ConnectionClosed())
        return self.peer_settings

    def peer_enables(self, setting: int) -> bool:
        """True when the peer's SETTINGS carry ``setting`` with the value 1 (False before they arrive)."""
        return self.peer_settings is not None and self.peer_settings.get(setting) == 1

    async def _read_datagrams(self) -> None:
        try:
            await self.datagrams.run()
        except H3Error as exc:
            self.fail(exc)
        except ConnectionClosed:
            pass

    async def wait_closed(self) -> None:
        """Wait until the QUIC connection has ended and every task of this object finished."""
        await self.closed.wait()

    def close(self, code: int = H3ErrorCode.H3_NO_ERROR, reason: str = "") -> None:
        """Close the QUIC connection with an HTTP/3 code (H3_NO_ERROR by default); idempotent."""
        self.conn.close(code, reason)

    def send_goaway(self) -> int:
        """Start a graceful shutdown (RFC 9114 §5.2): tell the peer which requests will still be
        processed. A server names the first client request stream it will not process (requests
        already received finish); a client sends push ID 0 (it allows no server push). Returns the ID.
        """
        ident = 0 if self.is_client or self._max_request_id < 0 else self._max_request_id + 4
        if self.goaway_sent is not None:
            ident = min(ident, self.goaway_sent)
        self.goaway_sent = ident
        if self._control is not None and not self.conn.is_closed:
            with contextlib.suppress(StreamError, ConnectionClosed):
                self._control.write(encode_single_varint_frame(FrameType.GOAWAY, ident))
        return ident

    async def wait_requests_done(self) -> None:
        """Wait until no request is being processed (used after :meth:`send_goaway`)."""
        await self._idle.wait()

    def request_started(self) -> None:
        """Count a request in progress (for graceful shutdown)."""
        self.requests_active += 1
        self._idle.clear()

    def request_finished(self) -> None:
        """Count a request as done."""
        self.requests_active -= 1
        if self.requests_active <= 0:
            self.requests_active = 0
            self._idle.set()

    # ------------------------------------------------------------------ errors

    def fail(self, error: H3Error) -> None:
        """Apply an error this side detected: close the connection (connection error, RFC 9114 §8) or
        reset and stop the one request stream (stream error)."""
        if error.stream_id is None:
            if self.error is None and not self.conn.is_closed:
                self.error = error
                _log.info("closing the connection: %s", error)
                self.conn.close(error.code, error.reason)
            return

    def fail_stream(self, stream: Stream, error: H3Error) -> None:
        """Abort ``stream`` in both directions with the stream error's code (RFC 9114 §8)."""
        with contextlib.suppress(StreamError, ConnectionClosed):
            if stream.writable:
                stream.reset(error.code)
            if stream.readable:
                stream.stop_sending(error.code)
        if error.stream_id is not None:
            self.cancel_header_block(error.stream_id)

    # ------------------------------------------------------------------ QPACK

    def peer_max_field_section_size(self) -> int | None:
        """The peer's MAX_FIELD_SECTION_SIZE, None when unlimited (or not known yet)."""
        if self.peer_settings is None:
            return None
        return self.peer_settings.get(Setting.MAX_FIELD_SECTION_SIZE)

    def encode_headers(self, stream_id: int, headers: RawHeaders) -> bytes:
        """A HEADERS frame carrying ``headers`` (QPACK encoder instructions go on our encoder stream).

        Raises:
            HeadersTooLarge: H3_EXCESSIVE_LOAD (raised here, nothing sent) when the section exceeds
                the peer's MAX_FIELD_SECTION_SIZE (RFC 9114 §4.2.2).
        """
        limit = self.peer_max_field_section_size()
        size = field_section_size(headers)
        if limit is not None and size > limit:
            raise HeadersTooLarge(size, limit, stream_id, ours=False)
        instructions, block = self._encoder.encode(stream_id, headers)
        if instructions and self._encoder_stream is not None:
            self._encoder_stream.write(instructions)
        return encode_frame(FrameType.HEADERS, block)

    async def decode_headers(self, stream_id: int, block: bytes) -> RawHeaders:
        """Decode a HEADERS payload, waiting for encoder instructions if it refers to them.

        Raises:
            H3Error: QPACK_DECOMPRESSION_FAILED (connection error, RFC 9204 §6).
            HeadersTooLarge: a section larger than our MAX_FIELD_SECTION_SIZE (a stream error; a
                server answers a request's with 431).
            ConnectionClosed: the connection closed while the section was blocked.
        """
        try:
            try:
                instructions, headers = self._decoder.feed_header(stream_id, block)
            except pylsqpack.StreamBlocked:
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._blocked[stream_id] = waiter
                try:
                    await waiter
                finally:
                    self._blocked.pop(stream_id, None)
                instructions, headers = self._decoder.resume_header(stream_id)
        except pylsqpack.DecompressionFailed:
            raise H3Error(
                _E.QPACK_DECOMPRESSION_FAILED, f"cannot decode the header block of stream {stream_id}"
            ) from None
        self._write_decoder(instructions)
        size = field_section_size(headers)
        if size > self.settings.max_field_section_size:
            raise HeadersTooLarge(size, self.settings.max_field_section_size, stream_id, ours=True)
        return list(headers)

    def cancel_header_block(self, stream_id: int) -> None:
        """Tell the peer's QPACK encoder we will not decode the rest of ``stream_id``'s field sections
        (Stream Cancellation, RFC 9204 §4.4.2)."""
        with contextlib.suppress(pylsqpack.DecoderStreamError, ValueError):
            self._write_decoder(self._decoder.cancel_stream(stream_id))

    def _write_decoder(self, data: bytes) -> None:
        if data and self._decoder_stream is not None:
            with contextlib.suppress(StreamError, ConnectionClosed):
                self._decoder_stream.write(data)

    # ------------------------------------------------------------------ GOAWAY and request IDs

    def check_new_request(self, stream_id: int) -> None:
        """Client: refuse to start a request the server said it will not process (RFC 9114 §5.2).

        Raises:
            H3Error: H3_REQUEST_REJECTED (the request was not sent and may be retried elsewhere).
        """
        if self.goaway_received is not None and stream_id >= self.goaway_received:
            raise H3Error(
                _E.H3_REQUEST_REJECTED, "the server sent GOAWAY: no new requests", stream_id=stream_id
            )

    def _on_goaway(self, ident: int) -> None:
        if not self.is_client:
            # From a client it is a push ID; we push nothing. It still may not increase (§5.2).
            pass
        elif ident % 4 != 0:
            raise H3Error(_E.H3_ID_ERROR, f"GOAWAY names {ident}, not a client bidirectional stream")
        if self.goaway_received is not None and ident > self.goaway_received:
            raise H3Error(_E.H3_ID_ERROR, "GOAWAY ID increased")
        self.goaway_received = ident
        self.goaway_event.set()

    # ------------------------------------------------------------------ the peer's streams

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept_loop(self) -> None:
        try:
            async for stream in self.conn:
                if stream.writable:  # bidirectional, opened by the peer
                    if self.is_client:
                        # Servers open no bidirectional streams (RFC 9114 §6.1).
                        self.fail(
                            H3Error(_E.H3_STREAM_CREATION_ERROR, "server opened a bidirectional stream")
                        )
                        return
                    self._spawn(self._on_request_stream(stream))
                else:
                    self._spawn(self._read_uni_stream(stream))
        finally:
            self._on_closed()

    def _on_closed(self) -> None:
        error = self.conn.close_error or ConnectionClosed()
        for waiter in self._blocked.values():
            if not waiter.done():
                waiter.set_exception(fresh_close_error(error))
        for task in list(self._tasks):
            task.cancel()
        self.datagrams.close_all(error)
        self._idle.set()
        self.closed.set()

    async def _on_request_stream(self, stream: Stream) -> None:
        sid = stream.stream_id
        self._max_request_id = max(self._max_request_id, sid)
        if self.goaway_sent is not None and sid >= self.goaway_sent:
            # Beyond our GOAWAY: rejected, never processed, so the client may retry it (§5.2).
            self.fail_stream(stream, H3Error(_E.H3_REQUEST_REJECTED, stream_id=sid))
            return
        if self._request_handler is None:
            self.fail_stream(stream, H3Error(_E.H3_REQUEST_REJECTED, stream_id=sid))
            return
        self.request_started()
        self.datagrams.stream_seen(sid)
        try:
            await self._request_handler(stream)
        finally:
            self.datagrams.release(sid)
            self.request_finished()

    async def _read_uni_stream(self, stream: Stream) -> None:
        reader = FrameReader(stream)
        kind: int | None = None
        try:
            kind = await reader.read_varint()
            if kind is None:
                return  # ended before its type: nothing to do
            if kind in (StreamType.CONTROL, StreamType.QPACK_ENCODER, StreamType.QPACK_DECODER):
                if kind in self._peer_streams:
                    raise H3Error(_E.H3_STREAM_CREATION_ERROR, f"a second {StreamType(kind).name} stream")
                self._peer_streams.add(kind)
            if kind == StreamType.CONTROL:
                await self._read_control(reader)
            elif kind == StreamType.QPACK_ENCODER:
                await self._read_qpack_encoder(reader)
            elif kind == StreamType.QPACK_DECODER:
                await self._read_qpack_decoder(reader)
            elif kind == StreamType.PUSH:
                if not self.is_client:
                    raise H3Error(_E.H3_STREAM_CREATION_ERROR, "a client opened a push stream")
                # We never send MAX_PUSH_ID, so no push ID is valid (RFC 9114 §4.6).
                raise H3Error(_E.H3_ID_ERROR, "push stream without MAX_PUSH_ID")
            else:
                # Unknown or reserved type: abort reading, the RFC 9114 §6.2 way.
                stream.stop_sending(_E.H3_STREAM_CREATION_ERROR)
        except H3Error as exc:
            self.fail(exc)
        except StreamReset:
            if kind in (StreamType.CONTROL, StreamType.QPACK_ENCODER, StreamType.QPACK_DECODER):
                self.fail(H3Error(_E.H3_CLOSED_CRITICAL_STREAM, "the peer reset a critical stream"))
        except ConnectionClosed:
            pass

    async def _read_control(self, reader: FrameReader) -> None:
        first = True
        while True:
            header = await reader.read_frame_header()
            if header is None:
                raise H3Error(_E.H3_CLOSED_CRITICAL_STREAM, "the peer closed its control stream")
            frame_type, length = header
            if first and frame_type != FrameType.SETTINGS:
                raise H3Error(_E.H3_MISSING_SETTINGS, "the control stream did not start with SETTINGS")
            if frame_type in _CONTROL_ONLY:
                if length > MAX_CONTROL_FRAME:
                    raise H3Error(_E.H3_EXCESSIVE_LOAD, f"a control frame of {length} bytes")
                payload = await reader.read_payload()
                if frame_type == FrameType.SETTINGS:
                    if not first:
                        raise H3Error(_E.H3_FRAME_UNEXPECTED, "a second SETTINGS frame")
                    self._apply_peer_settings(parse_settings(payload))
                elif frame_type == FrameType.GOAWAY:
                    self._on_goaway(parse_single_varint(payload, "GOAWAY"))
                elif frame_type == FrameType.MAX_PUSH_ID:
                    if self.is_client:
                        raise H3Error(_E.H3_FRAME_UNEXPECTED, "MAX_PUSH_ID from a server")
                    value = parse_single_varint(payload, "MAX_PUSH_ID")
                    if self._max_push_id is not None and value < self._max_push_id:
                        raise H3Error(_E.H3_ID_ERROR, "MAX_PUSH_ID decreased")
                    self._max_push_id = value
                else:  # CANCEL_PUSH: we never promise a push, so every push ID is unknown (§7.2.3)
                    parse_single_varint(payload, "CANCEL_PUSH")
                    raise H3Error(_E.H3_ID_ERROR, "CANCEL_PUSH for a push never promised")
            elif frame_type in (FrameType.DATA, FrameType.HEADERS, FrameType.PUSH_PROMISE):
                raise H3Error(_E.H3_FRAME_UNEXPECTED, f"{FrameType(frame_type).name} on the control stream")
            elif frame_type in HTTP2_ONLY_FRAME_TYPES:
                raise H3Error(_E.H3_FRAME_UNEXPECTED, f"HTTP/2 frame type {frame_type:#x}")
            # else: unknown or reserved, skipped by read_frame_header (RFC 9114 §9)
            first = False

    def _apply_peer_settings(self, settings: dict[int, int]) -> None:
        for key in (Setting.ENABLE_CONNECT_PROTOCOL, Setting.H3_DATAGRAM):
            if settings.get(key, 0) > 1:
                raise H3Error(_E.H3_SETTINGS_ERROR, f"setting {key.name} must be 0 or 1")
        if settings.get(Setting.H3_DATAGRAM) == 1 and not self.conn.peer_accepts_datagrams:
            # RFC 9297 §2.1.1: H3 datagrams without the QUIC DATAGRAM extension's transport parameter.
            raise H3Error(_E.H3_SETTINGS_ERROR, "SETTINGS_H3_DATAGRAM without max_datagram_frame_size")
        self.datagrams.peer_enabled = settings.get(Setting.H3_DATAGRAM) == 1
        self.peer_settings = settings
        try:
            instructions = self._encoder.apply_settings(
                settings.get(Setting.QPACK_MAX_TABLE_CAPACITY, 0),
                settings.get(Setting.QPACK_BLOCKED_STREAMS, 0),
            )
        except (pylsqpack.EncoderStreamError, ValueError, OverflowError) as exc:
            raise H3Error(_E.H3_SETTINGS_ERROR, f"unusable QPACK settings: {exc}") from None
        if instructions and self._encoder_stream is not None:
            self._encoder_stream.write(instructions)
        self.peer_settings_received.set()

    async def _read_qpack_encoder(self, reader: FrameReader) -> None:
        while chunk := await reader.read_chunk():
            try:
                unblocked = self._decoder.feed_encoder(chunk)
            except pylsqpack.EncoderStreamError:
                raise H3Error(_E.QPACK_ENCODER_STREAM_ERROR, "bad QPACK encoder instruction") from None
            for stream_id in unblocked:
                waiter = self._blocked.get(stream_id)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
        raise H3Error(_E.H3_CLOSED_CRITICAL_STREAM, "the peer closed its QPACK encoder stream")

    async def _read_qpack_decoder(self, reader: FrameReader) -> None:
        while chunk := await reader.read_chunk():
            try:
                self._encoder.feed_decoder(chunk)
            except pylsqpack.DecoderStreamError:
                raise H3Error(_E.QPACK_DECODER_STREAM_ERROR, "bad QPACK decoder instruction") from None
        raise H3Error(_E.H3_CLOSED_CRITICAL_STREAM, "the peer closed its QPACK decoder stream")


def stream_error_from(exc: StreamReset | StreamStopped, stream_id: int) -> H3Error:
    """The H3Error for the peer's reset (or STOP_SENDING) of a request stream."""
    return H3Error(exc.code, "the peer aborted the stream", stream_id=stream_id, by_peer=True)


__all__ = ["H3_ALPN", "MAX_CONTROL_FRAME", "H3Connection", "H3Settings", "stream_error_from"]
