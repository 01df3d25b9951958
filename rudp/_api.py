"""``rudp.connect()`` and ``rudp.serve()``: the two entry points, dispatching on ``transport``; and
their asyncio-shaped wrappers ``rudp.open_connection()`` and ``rudp.start_server()``.

Owns the choice between QUIC (:mod:`rudp.aio.client`, :mod:`rudp.aio.server`) and the TCP+TLS baseline
(:mod:`rudp.aio.tcp`, imported only when asked for), and the object ``connect()`` returns, which can be
awaited or used with ``async with``. Both transports yield the same :class:`~rudp.aio.connection.Connection`.
``open_connection``/``start_server`` put one stream where asyncio puts one TCP connection, so an asyncio
streams application moves to rudp by changing its import and the config it passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import logging
from collections.abc import Awaitable, Callable, Generator
from types import TracebackType
from typing import Literal

from rudp.aio.client import connect_quic
from rudp.aio.connection import Connection
from rudp.aio.server import HANDLER_ERROR_CODE, LINGER_TIMEOUT, Handler, Server, listen_quic
from rudp.aio.stream import Stream
from rudp.config import Config
from rudp.errors import ConfigError, ConnectionClosed, RudpError

Transport = Literal["quic", "tcp"]
ServeTransport = Literal["quic", "tcp", "both"]

BOTH_PORT_ATTEMPTS = 8
"""Ports tried by ``serve(..., port=0, transport="both")`` when TCP finds UDP's choice taken."""


async def _connect(host: str, port: int, config: Config, transport: str) -> Connection:
    if transport == "quic":
        return await connect_quic(host, port, config)
    if transport == "tcp":
        from rudp.aio.tcp import tcp_connect

        return await tcp_connect(host, port, config)
    raise ConfigError(f"unknown transport {transport!r} (use 'quic' or 'tcp')")


class Connect:
    """What :func:`connect` returns: ``await`` it for a Connection, or use it with ``async with``.

    With ``async with`` the connection is closed (code 0) and its socket released on exit.
    """

    def __init__(self, host: str, port: int, config: Config, transport: str) -> None:
        self._args = (host, port, config, transport)
        self._conn: Connection | None = None

    def __await__(self) -> Generator[object, None, Connection]:
        return _connect(*self._args).__await__()

    async def __aenter__(self) -> Connection:
        self._conn = await _connect(*self._args)
        return self._conn

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()


def connect(host: str, port: int, *, config: Config | None = None, transport: Transport = "quic") -> Connect:
    """Open a client connection to ``host``:``port`` over QUIC (default) or the TCP+TLS baseline.

    Use ``async with rudp.connect(...) as conn:`` (closed on exit) or ``conn = await rudp.connect(...)``
    (then call ``conn.close()`` and ``await conn.wait_closed()``). The TLS server name is
    ``config.server_name`` or ``host``; the handshake must finish within ``config.handshake_timeout``
    (over QUIC: of silence from the server, see :class:`~rudp.config.Config`).

    Raises:
    Both transports raise the same :class:`~rudp.errors.RudpError` subclass, with the same words, for
    the same failure.

    Raises:
        ConnectTimeout: the handshake did not complete in time (also a ``TimeoutError``).
        ConnectionRefused: nothing listens at that address (QUIC learns it from ICMP, TCP from a reset)
            or the server refused the connection; a :class:`HandshakeFailed` and also a
            ``ConnectionRefusedError``.
        HandshakeFailed: the handshake failed (certificate, ALPN...: ``code`` is the TLS alert).
        NameResolutionError: ``host`` does not resolve (also a ``socket.gaierror``).
        NetworkError: another socket error (also an ``OSError``, with its ``errno``).
        ConfigError: an unknown ``transport`` or invalid TLS settings.
    """
    return Connect(host, port, config or Config(), transport)


async def serve(
    host: str | None,
    port: int,
    handler: Handler,
    *,
    config: Config,
    transport: ServeTransport = "quic",
) -> Server:
    """Listen on ``host``:``port`` and run ``await handler(conn)`` once per established connection.

    ``host`` None listens on every interface (IPv6 dual-stack); a name binds every address it
    resolves to. ``port`` 0 picks a free port (see :attr:`Server.port`); with ``transport="both"``
    TCP listens on the same port number as UDP. ``config`` must name a certificate and key.

    The handler contract (the same over QUIC and TCP; the peer learns the outcome at once, not at the
    idle timeout). The connection lives as long as ``handler`` runs, so await the tasks it starts:

    * ``handler`` returns: the connection is closed with application code 0 once the peer has
      everything the handler wrote on its streams (acknowledged over QUIC, handed to the socket over
      TCP), waiting at most :data:`rudp.aio.server.LINGER_TIMEOUT` seconds.
    * it raises (a :class:`~rudp.errors.StreamError` such as the peer's reset, any other exception,
      or a :class:`~rudp.errors.ConnectionClosed` of some other connection): the exception is logged
      with its traceback on the ``rudp.server`` logger, and the connection is closed at once with
      :data:`rudp.aio.server.HANDLER_ERROR_CODE` (0x1) and the reason "handler raised <ExceptionType>"
      (no message or traceback on the wire).
    * it raises :class:`~rudp.errors.ConnectionClosed` because its own connection closed: nothing
      more happens.
    * it is cancelled (:meth:`Server.close`, or the event loop shutting down): the connection is closed
      at once with code 0 and the cancellation propagates.

    Raises:
        ConfigError: an unknown ``transport``; a certificate or key missing from ``config``, unreadable
            or unparsable, or a key that is not the certificate's (the message names the files). Both
            transports check this here, before binding, instead of failing every handshake later.
        NameResolutionError: ``host`` does not resolve.
        NetworkError: an address cannot be bound (also an ``OSError``, e.g. ``errno`` EADDRINUSE).
    """
    if transport not in ("quic", "tcp", "both"):
        raise ConfigError(f"unknown transport {transport!r} (use 'quic', 'tcp' or 'both')")
    # With "both" and port 0, UDP picks the number and TCP must take the same one, which another TCP
    # socket may already hold: then pick again (a few times) instead of failing.
    attempts = BOTH_PORT_ATTEMPTS if transport == "both" and port == 0 else 1
    for attempt in range(attempts):
        server = Server(handler)
        try:
            chosen = port
            if transport in ("quic", "both"):
                chosen = await listen_quic(server, host, port, config)
            if transport in ("tcp", "both"):
                from rudp.aio.tcp import tcp_listen

                server._add_listener(await tcp_listen(host, chosen, config, server.on_connection))
        except BaseException as exc:
            server.close()
            await server.wait_closed()
            in_use = isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE
            if in_use and attempt + 1 < attempts:
                continue
            raise
        return server
    raise RuntimeError("unreachable")  # the loop returns or raises


StreamCallback = Callable[[Stream, Stream], Awaitable[None] | None]
"""A :func:`start_server` callback: ``async def cb(reader, writer)`` (or a plain function)."""

_log = logging.getLogger("rudp.server")


async def open_connection(
    host: str, port: int, *, config: Config | None = None, transport: Transport = "quic"
) -> tuple[Stream, Stream]:
    """Connect and open one bidirectional stream: the ``asyncio.open_connection()`` of rudp.

    Returns ``(reader, writer)``, which are the same :class:`~rudp.aio.stream.Stream` (it has the
    ``StreamReader`` and ``StreamWriter`` methods). ``writer.close()`` then ``await
    writer.wait_closed()`` ends the stream and **closes the connection**, as closing an asyncio writer
    closes its socket: gracefully, once the peer has what was written (at most
    :data:`rudp.aio.server.LINGER_TIMEOUT` seconds). The connection is left open only when other
    streams of it are still in use (opened through ``writer.get_extra_info("connection")`` and not
    closed); close it then with that Connection's ``close()``.

    A QUIC stream reaches the server with its first bytes: write before waiting for the server to
    speak.

    Raises:
        The errors of :func:`connect`, and :class:`~rudp.errors.ConnectionClosed` if the connection
        ends before the stream opens.
    """
    conn = await connect(host, port, config=config, transport=transport)
    try:
        stream = await conn.open_stream()
    except BaseException:
        conn.close()
        await asyncio.shield(conn.wait_closed())
        raise

    async def close_connection() -> None:
        if _other_streams_in_use(conn, stream):
            return
        await conn._wait_delivered(LINGER_TIMEOUT)
        conn.close()
        await conn.wait_closed()

    stream._close_hook = close_connection
    return stream, stream


def _other_streams_in_use(conn: Connection, stream: Stream) -> bool:
    """True if the application holds another stream of ``conn`` that it has not closed (streams the
    peer opened and nobody accepted do not count)."""
    waiting = {id(s) for s in conn._incoming}
    return any(
        other is not stream and id(other) not in waiting and not other.is_closing()
        for other in conn._live_streams()
    )


async def start_server(
    client_connected_cb: StreamCallback,
    host: str | None = None,
    port: int | None = None,
    *,
    config: Config,
    transport: ServeTransport = "quic",
) -> Server:
    """Serve streams the way ``asyncio.start_server()`` serves TCP connections.

    ``client_connected_cb(reader, writer)`` runs (in its own task, if it is a coroutine function) for
    **each stream a peer opens**, on any connection; ``reader`` and ``writer`` are the same
    :class:`~rudp.aio.stream.Stream`. A peer that uses :func:`open_connection` opens one stream per
    connection, so each of its connections gets one call, as with asyncio. When the callback returns,
    the stream is closed (:meth:`Stream.close`) if it was not. If it raises, the exception is logged
    with its traceback on the ``rudp.server`` logger and the stream is reset with
    :data:`rudp.aio.server.HANDLER_ERROR_CODE` (other streams of the connection carry on); a
    :class:`~rudp.errors.ConnectionClosed` of its own connection ends it quietly. A connection stays
    open until its peer closes it (or the idle timeout), then its callbacks are awaited.

    ``host``, ``port`` (0 or None: a free port, see :attr:`Server.port`), ``config`` (certificate and
    key) and ``transport`` are those of :func:`serve`, whose :class:`Server` is returned (``close()``,
    ``wait_closed()``, ``serve_forever()``, ``async with``).

    Raises:
        The errors of :func:`serve`.
    """

    async def handler(conn: Connection) -> None:
        async with asyncio.TaskGroup() as group:
            async for stream in conn:
                if not stream.writable:
                    # A one-way stream from the peer cannot be answered: refuse it rather than hand
                    # the callback a writer that fails (and log a traceback per stream a peer opens).
                    stream.stop_sending(HANDLER_ERROR_CODE)
                    continue
                group.create_task(_run_stream_callback(client_connected_cb, conn, stream))

    return await serve(host, port or 0, handler, config=config, transport=transport)


async def _run_stream_callback(callback: StreamCallback, conn: Connection, stream: Stream) -> None:
    """Run one callback; close the stream after it, or reset it if the callback failed."""
    try:
        result = callback(stream, stream)
        if inspect.isawaitable(result):
            await result
    except asyncio.CancelledError:
        stream.close()
        raise
    except ConnectionClosed as exc:
        if conn.is_closed:
            _log.debug("stream callback on %r ended by %s", conn, exc)
            return
        _stream_callback_failed(stream, exc)
        return
    except Exception as exc:
        _stream_callback_failed(stream, exc)
        return
    stream.close()


def _stream_callback_failed(stream: Stream, exc: Exception) -> None:
    _log.error(
        "stream callback raised %s; resetting stream %d with code %#x",
        type(exc).__name__,
        stream.stream_id,
        HANDLER_ERROR_CODE,
        exc_info=exc,
    )
    for abandon in (stream.reset, stream.stop_sending):
        with contextlib.suppress(RudpError):  # that direction does not exist or is already over
            abandon(HANDLER_ERROR_CODE)
    stream.close()


__all__ = [
    "Connect",
    "ServeTransport",
    "StreamCallback",
    "Transport",
    "connect",
    "open_connection",
    "serve",
    "start_server",
]
