"""The HTTP/3 server: runs an ASGI application (HTTP scope, ASGI 3) over rudp's QUIC.

``server = await rudp.h3.serve_asgi(app, host, port, config=...)``: each request stream becomes one
ASGI ``http`` call (``http_version`` "3"); :meth:`H3Server.shutdown` is the graceful way out (GOAWAY,
requests in progress finish). :class:`ASGIHandler` is the per-connection handler, usable with
``rudp.serve`` directly (the CLI uses it to answer "h3" beside "hq-interop").

The ASGI lifespan protocol runs around the server (``lifespan="auto"``: startup before listening,
shutdown after the last connection, applications without lifespan support tolerated; a failed
startup raises :class:`~rudp.h3.lifespan.LifespanError` from ``serve_asgi``), and its ``state`` is
copied into every request scope. CONNECT requests go to ``connect_handler`` when one is given (it
receives a :class:`~rudp.h3.tunnel.ConnectRequest`; extended CONNECT, RFC 9220, is then announced),
to the ASGI application otherwise: an ``http`` scope with method "CONNECT" whose streamed request
and response bodies are the tunnel (its ``http.response.start`` is sent at once), and, for an
extended CONNECT (``H3Settings(enable_connect_protocol=True)``), ``scope["extensions"]
["rudp.h3.connect"] == {"protocol": ...}``. A request whose header section exceeds
``H3Settings.max_field_section_size`` is answered 431 (RFC 9114 §4.2.2) without reaching the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import unquote_to_bytes

import rudp
from rudp.aio.stream import Stream
from rudp.config import Config
from rudp.errors import ConnectionClosed, RudpError, StreamError
from rudp.h3.client import h3_config
from rudp.h3.connection import H3Connection, H3Settings
from rudp.h3.errors import H3Error, H3ErrorCode, HeadersTooLarge
from rudp.h3.exchange import MessageReader, MessageWriter
from rudp.h3.lifespan import Lifespan, LifespanMode
from rudp.h3.messages import CONNECTION_SPECIFIC, RawHeaders
from rudp.h3.tunnel import ConnectHandler, serve_connect

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SHUTDOWN_TIMEOUT: Final = 10.0
"""Seconds :meth:`H3Server.shutdown` waits for requests in progress by default."""

_log = logging.getLogger("rudp.h3.server")


class ASGIError(H3Error):
    """The ASGI application broke the ASGI protocol (e.g. a body before ``http.response.start``)."""

    def __init__(self, reason: str, stream_id: int) -> None:
        super().__init__(H3ErrorCode.H3_INTERNAL_ERROR, reason, stream_id=stream_id)


class _Exchange:
    """One request/response of an ASGI ``http`` call on one request stream."""

    def __init__(self, h3: H3Connection, stream: Stream, reader: MessageReader) -> None:
        self.h3 = h3
        self.stream = stream
        self.reader = reader
        self.writer = MessageWriter(h3, stream)
        self.sid = stream.stream_id
        self.started = False
        self.status = 0
        self.response_headers: RawHeaders = []
        self.expect_trailers = False
        self.body_done = False
        self.complete = asyncio.Event()
        self.disconnected = False

    async def receive(self) -> Message:
        if not self.body_done:
            try:
                chunk = await self.reader.read_data()
            except (H3Error, ConnectionClosed, StreamError):
                self.body_done = self.disconnected = True
                return {"type": "http.disconnect"}
            if chunk:
                return {"type": "http.request", "body": chunk, "more_body": True}
            self.body_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        # Nothing more to receive: answer http.disconnect once the response is over or the peer left.
        closed = asyncio.ensure_future(self.h3.closed.wait())
        done = asyncio.ensure_future(self.complete.wait())
        try:
            await asyncio.wait({closed, done}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            done.cancel()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "http.response.start":
            if self.started:
                raise ASGIError("http.response.start sent twice", self.sid)
            self.started = True
            self.status = int(message["status"])
            self.expect_trailers = bool(message.get("trailers", False))
            self.response_headers = [
                (bytes(name).lower(), bytes(value))
                for name, value in message.get("headers", [])
                if bytes(name).lower() not in CONNECTION_SPECIFIC
            ]
            if self.reader.pseudo.get(b":method") == b"CONNECT":
                # A tunnel opens with the response's headers (RFC 9114 §4.4): the client waits for
                # them before it sends, so they cannot wait for a first body chunk.
                await self._send_headers_once()
        elif kind == "http.response.body":
            if not self.started:
                raise ASGIError("http.response.body before http.response.start", self.sid)
            if self.complete.is_set():
                raise ASGIError("http.response.body after the response ended", self.sid)
            await self._send_headers_once()
            body = bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if body:
                await self.writer.send_data(body)
            if not more and not self.expect_trailers:
                await self._end()
        elif kind == "http.response.trailers":
            if not self.expect_trailers:
                raise ASGIError("http.response.trailers without trailers=True", self.sid)
            await self._send_headers_once()
            fields = [(bytes(n).lower(), bytes(v)) for n, v in message.get("headers", [])]
            if not message.get("more_trailers", False):
                await self.writer.send_headers(fields, end=True)
                self._completed()
        else:
            raise ASGIError(f"unknown ASGI message type {kind!r}", self.sid)

    async def _send_headers_once(self) -> None:
        if not self.writer.headers_sent:
            fields = [(b":status", str(self.status).encode()), *self.response_headers]
            await self.writer.send_headers(fields)

    async def _end(self) -> None:
        await self.writer.end()
        self._completed()

    def _completed(self) -> None:
        self.complete.set()
        if not self.reader.complete and not self.disconnected:
            # Answered without reading the whole request: ask the client to stop (RFC 9114 §4.1).
            with contextlib.suppress(StreamError, ConnectionClosed):
                self.stream.stop_sending(H3ErrorCode.H3_NO_ERROR)


def _scope(h3: H3Connection, reader: MessageReader, state: dict[str, Any]) -> Scope:
    pseudo = reader.pseudo
    target = pseudo.get(b":path", b"")
    raw_path, _, query = target.partition(b"?")
    headers: list[tuple[bytes, bytes]] = []
    authority = pseudo.get(b":authority")
    if authority is not None:
        headers.append((b"host", authority))
    headers += [(n, v) for n, v in reader.headers or [] if not (n == b"host" and authority is not None)]
    extensions: dict[str, Any] = {"http.response.trailers": {}}
    if b":protocol" in pseudo:
        # Extended CONNECT (RFC 9220) without a connect_handler: the request and response bodies are
        # the tunnel; the protocol is named here.
        extensions["rudp.h3.connect"] = {"protocol": pseudo[b":protocol"].decode("latin-1")}
    conn = h3.conn
    sockname = conn.get_extra_info("sockname")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "3",
        "method": pseudo.get(b":method", b"").decode("ascii", "replace"),
        "scheme": pseudo.get(b":scheme", b"https").decode("ascii", "replace"),
        "path": unquote_to_bytes(raw_path).decode("utf-8", "replace"),
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": tuple(conn.peer_address[:2]),
        "server": tuple(sockname[:2]) if sockname else None,
        "extensions": extensions,
        "state": dict(state),  # the lifespan's state, a shallow copy per request (ASGI lifespan spec)
    }


class ASGIHandler:
    """A ``rudp.serve`` connection handler speaking HTTP/3 and calling ``app`` for each request.

    ``connect_handler`` receives every CONNECT request (and turns extended CONNECT on in the
    SETTINGS); ``state`` is the lifespan state copied into each request scope.
    """

    def __init__(
        self,
        app: ASGIApp,
        settings: H3Settings | None = None,
        *,
        connect_handler: ConnectHandler | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        self.app = app
        if connect_handler is not None:
            settings = dataclasses.replace(settings or H3Settings(), enable_connect_protocol=True)
        self.settings = settings
        self.connect_handler = connect_handler
        self.state: dict[str, Any] = state if state is not None else {}
        self.connections: set[H3Connection] = set()
        self._shutting_down = asyncio.Event()
        self.requests_served = 0

    async def __call__(self, conn: rudp.Connection) -> None:
        """Serve HTTP/3 on ``conn`` until it closes (or a graceful shutdown finished its requests)."""
        # The handler reaches the H3 connection through a weak reference: the connection keeps the
        # handler, and a strong reference back would make a reference cycle per connection.
        h3_ref: weakref.ref[H3Connection]

        async def on_request(stream: Stream) -> None:
            h3 = h3_ref()
            if h3 is not None:
                await self._run_request(h3, stream)

        h3 = H3Connection(conn, settings=self.settings, request_handler=on_request)
        h3_ref = weakref.ref(h3)
        self.connections.add(h3)
        try:
            await h3.start()
            if self._shutting_down.is_set():
                h3.send_goaway()
            closed = asyncio.ensure_future(h3.wait_closed())
            drained = asyncio.ensure_future(self._drained(h3))
            try:
                await asyncio.wait({closed, drained}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closed.cancel()
                drained.cancel()
            # Graceful end (shutdown drained): close with HTTP/3's own "no error" code once the
            # client has every response (RFC 9114 §5.2, §8.1), not with the transport's 0.
            await conn.aclose(H3ErrorCode.H3_NO_ERROR, "")
        finally:
            self.connections.discard(h3)

    async def _drained(self, h3: H3Connection) -> None:
        await self._shutting_down.wait()
        await h3.wait_requests_done()

    def start_shutdown(self) -> None:
        """Send GOAWAY on every connection; each handler returns once its requests are done."""
        self._shutting_down.set()
        for h3 in self.connections:
            h3.send_goaway()

    async def _run_request(self, h3: H3Connection, stream: Stream) -> None:
        reader = MessageReader(h3, stream, "request")
        try:
            await reader.read_headers()
        except HeadersTooLarge as exc:
            await self._refuse_oversized(h3, stream, exc)
            return
        except (H3Error, ConnectionClosed, StreamError) as exc:
            _log.debug("request on stream %d refused: %s", stream.stream_id, exc)
            return
        except Exception as exc:  # our bug: the stream must not hang (RFC 9114 §8.1 H3_INTERNAL_ERROR)
            _log.error("reading the request on stream %d failed", stream.stream_id, exc_info=exc)
            with contextlib.suppress(StreamError, ConnectionClosed):
                stream.stop_sending(H3ErrorCode.H3_INTERNAL_ERROR)
                stream.reset(H3ErrorCode.H3_INTERNAL_ERROR)
            return
        sid = stream.stream_id
        if reader.pseudo.get(b":method") == b"CONNECT" and self.connect_handler is not None:
            await serve_connect(h3, reader, self.connect_handler)
            return

        def abort_on_datagram() -> None:
            # RFC 9297 §2.1: a datagram on a request without datagram semantics aborts it.
            h3.fail_stream(
                stream, H3Error(H3ErrorCode.H3_DATAGRAM_ERROR, "unexpected datagram", stream_id=sid)
            )

        h3.datagrams.refuse(sid, abort_on_datagram)
        exchange = _Exchange(h3, stream, reader)
        try:
            await self.app(_scope(h3, reader, self.state), exchange.receive, exchange.send)
        except (ConnectionClosed, StreamError) as exc:
            _log.debug("request on stream %d abandoned: %s", stream.stream_id, exc)
            return
        except H3Error as exc:
            if exc.by_peer:
                _log.debug("request on stream %d aborted by the client: %s", stream.stream_id, exc)
                return
            _log.error("ASGI application failed on stream %d", stream.stream_id, exc_info=exc)
            await self._fail_response(exchange)
            return
        except Exception as exc:
            _log.error("ASGI application raised on stream %d", stream.stream_id, exc_info=exc)
            await self._fail_response(exchange)
            return
        if not exchange.complete.is_set():
            if exchange.started:
                _log.error(
                    "ASGI application returned before finishing its response on stream %d", exchange.sid
                )
            await self._fail_response(exchange)
            return
        self.requests_served += 1

    @staticmethod
    async def _refuse_oversized(h3: H3Connection, stream: Stream, error: HeadersTooLarge) -> None:
        """431 (RFC 9114 §4.2.2, §10.5.1; RFC 6585 §5) and stop reading the request (H3_NO_ERROR,
        RFC 9114 §4.1); the application never sees it, other requests are not affected."""
        _log.info("request on stream %d refused with 431: %s", stream.stream_id, error)
        body = b"Request Header Fields Too Large"
        writer = MessageWriter(h3, stream)
        with contextlib.suppress(RudpError):
            await writer.send_headers(
                [(b":status", b"431"), (b"content-type", b"text/plain"), (b"content-length", b"31")]
            )
            await writer.send_data(body, end=True)
        with contextlib.suppress(StreamError, ConnectionClosed):
            if stream.readable:
                stream.stop_sending(H3ErrorCode.H3_NO_ERROR)

    @staticmethod
    async def _fail_response(exchange: _Exchange) -> None:
        """500 if nothing was sent yet, else abort the stream with H3_INTERNAL_ERROR."""
        if exchange.writer.headers_sent or exchange.complete.is_set():
            if not exchange.complete.is_set():
                exchange.writer.abort(H3ErrorCode.H3_INTERNAL_ERROR)
            return
        with contextlib.suppress(RudpError):
            await exchange.writer.send_headers(
                [(b":status", b"500"), (b"content-type", b"text/plain"), (b"content-length", b"21")]
            )
            await exchange.writer.send_data(b"Internal Server Error", end=True)


class H3Server:
    """A running HTTP/3 server (from :func:`serve_asgi`): :attr:`port`, :meth:`shutdown`, :meth:`close`."""

    def __init__(self, server: rudp.Server, handler: ASGIHandler, lifespan: Lifespan | None = None) -> None:
        self.server = server
        self.handler = handler
        self.lifespan = lifespan

    @property
    def port(self) -> int:
        """The port listened on (useful with port 0)."""
        return self.server.port

    async def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Graceful stop (RFC 9114 §5.2): send GOAWAY, let requests in progress finish (at most
        ``timeout`` seconds), then close the listener and every connection."""
        self.handler.start_shutdown()
        conns = [h3.conn for h3 in self.handler.connections]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                for conn in conns:
                    await conn.wait_closed()
        self.close()
        await self.wait_closed()

    def close(self) -> None:
        """Stop at once: close the listener and every connection."""
        self.server.close()

    async def wait_closed(self) -> None:
        """Wait until the listener and every connection are closed, then run the application's
        lifespan shutdown (once)."""
        await self.server.wait_closed()
        if self.lifespan is not None:
            await self.lifespan.shutdown()

    async def serve_forever(self) -> None:
        """Serve until closed."""
        await self.server.serve_forever()

    async def __aenter__(self) -> H3Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()


async def serve_asgi(
    app: ASGIApp,
    host: str | None,
    port: int,
    *,
    config: Config,
    settings: H3Settings | None = None,
    connect_handler: ConnectHandler | None = None,
    lifespan: LifespanMode = "auto",
) -> H3Server:
    """Serve the ASGI application ``app`` over HTTP/3 on ``host``:``port`` (UDP; ALPN "h3").

    ``config`` names the certificate and key as for :func:`rudp.serve`; its ALPN list is replaced by
    "h3" (and QUIC datagrams are switched on when ``settings.datagrams`` asks for HTTP Datagrams).
    ``connect_handler(request)`` handles CONNECT requests (:class:`~rudp.h3.tunnel.ConnectRequest`:
    ``await request.accept()`` gives the :class:`~rudp.h3.tunnel.Tunnel`) and enables extended
    CONNECT. ``lifespan`` "auto" runs the ASGI lifespan protocol when the application supports it,
    "on" requires it, "off" skips it; startup completes before the server listens.

    Raises:
        LifespanError: the application's lifespan startup failed (nothing is listening).
        ConfigError, NameResolutionError, NetworkError: as :func:`rudp.serve` (after the lifespan
            shutdown of an application that started).
    """
    runner = Lifespan(app, lifespan)
    await runner.startup()
    handler = ASGIHandler(app, settings, connect_handler=connect_handler, state=runner.state)
    try:
        server = await rudp.serve(host, port, handler, config=h3_config(config, handler.settings))
    except BaseException:
        await runner.shutdown()
        raise
    return H3Server(server, handler, runner)


__all__ = ["ASGIApp", "ASGIError", "ASGIHandler", "H3Server", "serve_asgi"]
