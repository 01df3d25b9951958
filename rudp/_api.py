"""``rudp.connect()`` and ``rudp.serve()``: the two entry points, dispatching on ``transport``.

Owns the choice between QUIC (:mod:`rudp.aio.client`, :mod:`rudp.aio.server`) and the TCP+TLS baseline
(:mod:`rudp.aio.tcp`, imported only when asked for), and the object ``connect()`` returns, which can be
awaited or used with ``async with``. Both transports yield the same :class:`~rudp.aio.connection.Connection`.
"""

from __future__ import annotations

from collections.abc import Generator
from types import TracebackType
from typing import Literal

from rudp.aio.client import connect_quic
from rudp.aio.connection import Connection
from rudp.aio.server import Handler, Server, listen_quic
from rudp.config import Config
from rudp.errors import ConfigError

Transport = Literal["quic", "tcp"]
ServeTransport = Literal["quic", "tcp", "both"]


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
    ``config.server_name`` or ``host``; the handshake must finish within ``config.handshake_timeout``.

    Raises:
        ConnectTimeout: the handshake did not complete in time.
        HandshakeFailed: the handshake failed, or nothing listens at that address (QUIC learns it from
            ICMP; TCP raises ``ConnectionRefusedError``).
        ConfigError: an unknown ``transport`` or invalid TLS settings.
        OSError: name resolution or socket errors.
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
        OSError: an address cannot be bound.
    """
    if transport not in ("quic", "tcp", "both"):
        raise ConfigError(f"unknown transport {transport!r} (use 'quic', 'tcp' or 'both')")
    server = Server(handler)
    try:
        if transport in ("quic", "both"):
            port = await listen_quic(server, host, port, config)
        if transport in ("tcp", "both"):
            from rudp.aio.tcp import tcp_listen

            server._add_listener(await tcp_listen(host, port, config, server.on_connection))
    except BaseException:
        server.close()
        await server.wait_closed()
        raise
    return server


__all__ = ["Connect", "ServeTransport", "Transport", "connect", "serve"]
