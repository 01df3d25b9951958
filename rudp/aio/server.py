"""Server: listeners (UDP endpoints, TCP listeners) plus the tasks running the user's handler.

Owns :class:`Server` (what ``rudp.serve()`` returns: close(), wait_closed(), ``async with``), running
the handler once per established connection as a task, and :func:`listen_quic`, which binds one UDP
endpoint per local address. It does not own the protocol (the cores) nor TCP sockets
(:mod:`rudp.aio.tcp`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Final

from rudp.aio.connection import Connection
from rudp.aio.driver import Listener
from rudp.aio.endpoint import UdpEndpoint, normalize_address
from rudp.aio.resolution import NameResolutionError
from rudp.config import Config
from rudp.errors import ConfigError, ConnectionClosed
from rudp.quic.preferred import preferred_addresses

Handler = Callable[[Connection], Awaitable[None]]
"""A connection handler: ``async def handler(conn: rudp.Connection) -> None``."""

HANDLER_ERROR_CODE: Final = 0x1
"""Application error code of the CONNECTION_CLOSE sent when a handler raised (an internal error)."""
HANDLER_DONE_CODE: Final = 0x0
"""Application error code of the CONNECTION_CLOSE sent when a handler returned (no error)."""
LINGER_TIMEOUT: Final = 10.0
"""Seconds the server waits, after a handler returned, for the peer to receive what the handler wrote
before closing anyway (what is still undelivered then is abandoned)."""

_log = logging.getLogger("rudp.server")


class Server:
    """A running server: one or more listeners sharing one connection handler.

    The handler is called once per connection, after the handshake (or with the first 0-RTT stream), in
    its own task; the connection lives as long as the handler runs. What happens when it ends is the
    same over QUIC and TCP, and the peer learns it at once (not at the idle timeout):

    * **returns**: the connection is closed gracefully: once the peer has received everything the
      handler wrote on its streams (data and FINs acknowledged over QUIC, handed to the socket over
      TCP; at most :data:`LINGER_TIMEOUT` seconds), with application code :data:`HANDLER_DONE_CODE`
      (0). Keep the handler running (await your tasks) as long as the connection is needed.
    * **raises** any exception, including a :class:`~rudp.errors.StreamError` (e.g. the peer reset a
      stream the handler was reading) or a :class:`~rudp.errors.ConnectionClosed` that came from
      another connection: the exception is logged with its traceback on the ``rudp.server`` logger
      (level ERROR) and the connection is closed at once with :data:`HANDLER_ERROR_CODE` and the reason
      "handler raised <ExceptionType>" (no message or traceback goes on the wire).
    * **raises ConnectionClosed because its own connection closed**: nothing more to do; logged at
      DEBUG.
    * **is cancelled** (:meth:`close`, or the event loop shutting down): the connection is closed at
      once with code 0, and the cancellation propagates.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._listeners: list[Listener] = []
        self._tasks: dict[Connection, asyncio.Task[None]] = {}
        """The task of every handler still at work (each leaves as its handler ends)."""
        self._closing = False
        self._close_requested = asyncio.Event()

    def _add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def port(self) -> int:
        """The port listened on (the same number for UDP and TCP with ``transport="both"``)."""
        if not self._listeners:
            raise RuntimeError("server has no listener")
        return self._listeners[0].port

    @property
    def listeners(self) -> list[Listener]:
        """The listeners (UDP endpoints and TCP listeners) of this server."""
        return list(self._listeners)

    @property
    def is_serving(self) -> bool:
        """True until :meth:`close` is called."""
        return not self._closing

    def on_connection(self, conn: Connection) -> None:
        """Start the handler for a newly established connection (called by the listeners)."""
        if self._closing:
            conn.close(0, "server closing")
            return
        # (no done callback: the task leaves ``_tasks`` as its handler ends, see _run_handler)
        self._tasks[conn] = asyncio.get_running_loop().create_task(self._run_handler(conn))

    async def _run_handler(self, conn: Connection) -> None:
        """Run the handler, then close the connection as the class docstring says."""
        try:
            await self._handler(conn)
            # (a connection closed already, the usual end, has nothing left to deliver: no wait)
            if not conn.is_closed and not await conn._wait_delivered(LINGER_TIMEOUT) and not conn.is_closed:
                _log.debug("%r: peer did not receive everything within %g s; closing", conn, LINGER_TIMEOUT)
        except asyncio.CancelledError:
            conn.close(HANDLER_DONE_CODE, "server closing")
            raise
        except ConnectionClosed as exc:
            if not conn.is_closed:  # not this connection's close: a failure like any other
                self._handler_failed(conn, exc)
            else:
                _log.debug("%r: handler ended by %s", conn, exc)
        except Exception as exc:
            self._handler_failed(conn, exc)
        else:
            conn.close(HANDLER_DONE_CODE, "handler returned")
        finally:
            # At once, not in a done callback a loop iteration later: once a handler's connection
            # ended, ``_tasks`` shows only handlers still at work.
            self._tasks.pop(conn, None)

    @staticmethod
    def _handler_failed(conn: Connection, exc: Exception) -> None:
        name = type(exc).__name__
        _log.error(
            "connection handler raised %s; closing %r with code %#x",
            name,
            conn,
            HANDLER_ERROR_CODE,
            exc_info=exc,
        )
        conn.close(HANDLER_ERROR_CODE, f"handler raised {name}")

    def close(self) -> None:
        """Stop listening, close every connection and cancel running handlers; idempotent."""
        if self._closing:
            return
        self._closing = True
        self._close_requested.set()
        for listener in self._listeners:
            listener.close()
        for task in self._tasks.values():
            task.cancel()

    async def wait_closed(self) -> None:
        """Wait until the listeners are closed and every handler task finished."""
        for listener in self._listeners:
            await listener.wait_closed()
        while self._tasks:
            tasks = dict(self._tasks)
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            for conn, task in tasks.items():  # (a task cancelled before it started never ran its finally)
                if self._tasks.get(conn) is task:
                    del self._tasks[conn]

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` is called (e.g. from a signal handler) or the task is cancelled.

        On return (or cancellation) the server is closed; call :meth:`wait_closed` to wait for its
        sockets and handler tasks.
        """
        try:
            await self._close_requested.wait()
        finally:
            self.close()

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()


async def _local_addresses(host: str | None, port: int, kind: int) -> list[tuple[int, str]]:
    """(family, address) pairs to bind for ``host`` (None: every interface, IPv6 dual-stack).

    Raises:
        NameResolutionError: ``host`` does not resolve.
    """
    if not host:
        return [(socket.AF_INET6, "::")] if socket.has_ipv6 else [(socket.AF_INET, "0.0.0.0")]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=kind, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:  # socket.gaierror; UnicodeError: not encodable (IDNA)
        raise NameResolutionError.for_host(host, exc) from exc
    seen: list[tuple[int, str]] = []
    for family, _, _, _, sockaddr in infos:
        entry = (int(family), normalize_address(sockaddr)[0])
        if entry not in seen:
            seen.append(entry)
    return seen


async def listen_quic(server: Server, host: str | None, port: int, config: Config) -> int:
    """Bind UDP endpoints for ``host`` (one per resolved address) and attach them to ``server``.

    Returns the port bound (chosen by the system when ``port`` is 0).

    Raises:
        ConfigError: no certificate or key in ``config``.
        NameResolutionError: ``host`` does not resolve.
        NetworkError: an address cannot be bound.
    """
    if config.certfile is None or config.keyfile is None:
        raise ConfigError("a server needs Config.certfile and Config.keyfile")
    tls_config = config.tls_config(is_client=False)  # once: it holds the ticket key and replay cache
    first: UdpEndpoint | None = None
    for family, address in await _local_addresses(host, port, socket.SOCK_DGRAM):
        if first is not None and config.preferred_address:
            # One endpoint for every address: the preferred address's connection ID must be routable
            # wherever the client reaches us (RFC 9000 §9.6).
            await first.listen_also((address, port))
            continue
        endpoint = await UdpEndpoint.create_server(
            config, (address, port), on_connection=server.on_connection, family=family, tls_config=tls_config
        )
        server._add_listener(endpoint)
        port = endpoint.port
        first = first or endpoint
    if first is not None and config.serve_preferred_address:
        for preferred in preferred_addresses(config.preferred_address):
            if preferred is not None:
                await first.listen_also(preferred)  # RFC 9000 §9.6: serve on the preferred address too
    return port


__all__ = ["HANDLER_DONE_CODE", "HANDLER_ERROR_CODE", "LINGER_TIMEOUT", "Handler", "Server", "listen_quic"]
