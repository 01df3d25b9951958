"""Opening client connections over QUIC: resolve, bind a connected UDP socket, handshake with a timeout.

Owns :func:`connect_quic`, which ``rudp.connect()`` calls for ``transport="quic"``; the socket belongs
to the returned connection and is released when it closes. TCP is in :mod:`rudp.aio.tcp`.
"""

from __future__ import annotations

import asyncio
import math
import socket
from typing import Any

from rudp.aio.connection import Connection
from rudp.aio.driver import Address
from rudp.aio.endpoint import UdpEndpoint, normalize_address
from rudp.aio.resolution import NameResolutionError
from rudp.config import Config
from rudp.errors import ConnectTimeout, HandshakeFailed, NetworkError, TransportErrorCode


async def resolve_all(host: str, port: int, *, kind: int = socket.SOCK_DGRAM) -> list[tuple[int, Any]]:
    """Every (family, socket address) ``host`` resolves to, in the resolver's order, without duplicates.

    Raises:
        NameResolutionError: the name does not resolve (its ``__cause__`` is the ``socket.gaierror``).
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=kind)
    except (OSError, UnicodeError) as exc:  # socket.gaierror; UnicodeError: not encodable (IDNA)
        raise NameResolutionError.for_host(host, exc) from exc
    found: list[tuple[int, Any]] = []
    for family, _, _, _, sockaddr in infos:
        if (family, sockaddr) not in found:
            found.append((int(family), sockaddr))
    if not found:
        raise NameResolutionError.for_host(host)
    return found


async def resolve(host: str, port: int, *, kind: int = socket.SOCK_DGRAM) -> Address:
    """The first (address, port) ``host`` resolves to.

    Raises:
        NameResolutionError: the name does not resolve (its ``__cause__`` is the ``socket.gaierror``).
    """
    _, sockaddr = (await resolve_all(host, port, kind=kind))[0]
    return normalize_address(sockaddr)


class _Watchdog:
    """Ends a client handshake at the deadline its sans-IO core keeps
    (:attr:`~rudp.quic.connection.QuicConnection.handshake_deadline`: ``handshake_timeout`` after the
    server was last heard, three at most after the start), looked at again each time it comes."""

    def __init__(self, conn: Connection, message: str) -> None:
        self._conn = conn
        self._message = message
        self._loop = asyncio.get_running_loop()
        self._at = -math.inf
        self._handle: asyncio.TimerHandle | None = None
        self.expired = False
        self._check()

    def _check(self) -> None:
        conn = self._conn
        core = conn._quic_core()  # (always a QuicConnection here)
        deadline = None if core is None else core.handshake_deadline
        if deadline is None or conn.is_established or conn.is_closed:
            return  # completed (its event is on its way), or ended
        if deadline > self._at:  # the first time, or the server was heard since
            self._at = deadline
            self._handle = self._loop.call_at(deadline, self._check)
            return
        self.expired = True
        conn._abort(HandshakeFailed(TransportErrorCode.NO_ERROR, self._message, application=False))

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()


async def connect_quic(host: str, port: int, config: Config) -> Connection:
    """Connect to a QUIC server and complete the handshake.

    The TLS server name is ``config.server_name`` or ``host``. On return the connection is established
    and owns its UDP socket. With ``config.enable_0rtt`` it returns right after sending the first
    flight, so that streams opened at once travel as 0-RTT data when a session ticket allows it; a
    failed or timed-out handshake then surfaces as HandshakeFailed from the first operation.

    Raises:
        ConnectTimeout: the handshake stalled: ``config.handshake_timeout`` seconds without word
            from the server (plus one PTO for a probe sent just before), or three times that in all.
        ConnectionRefused: nothing listens there (an ICMP port unreachable), or the server refused us.
        HandshakeFailed: the handshake failed (certificate, ALPN...); ``code`` and ``reason`` say why.
        NameResolutionError: the host does not resolve.
        NetworkError: the socket cannot be opened (no route...).
    """
    sockaddr = await resolve(host, port)
    try:
        endpoint = await UdpEndpoint.create_client(config, sockaddr)
    except OSError as exc:
        raise NetworkError.wrap(f"cannot reach {host} port {port}", exc) from exc
    loop = asyncio.get_running_loop()
    try:
        conn = endpoint.connect(config.server_name or host)
    except BaseException:
        endpoint.close()
        raise

    def release(_: Connection) -> None:
        loop.call_soon(endpoint.close)  # not from inside the endpoint's own dispatch

    conn._add_terminated_callback(release)
    conn._add_closer(endpoint.wait_closed)
    timeout = ConnectTimeout.after(host, port, config.handshake_timeout)
    watchdog = _Watchdog(conn, str(timeout))
    conn._add_established_callback(lambda _: watchdog.cancel())
    conn._add_terminated_callback(lambda _: watchdog.cancel())
    if config.enable_0rtt:
        # Return at once so that the first streams can go out as 0-RTT data (when a ticket allows it;
        # otherwise open_stream() waits for the handshake). The watchdog enforces the timeout.
        return conn
    try:
        await conn.wait_established()
    except BaseException as exc:
        conn._abort(HandshakeFailed(TransportErrorCode.NO_ERROR, "connect() cancelled", application=False))
        await asyncio.shield(conn.wait_closed())
        if watchdog.expired and isinstance(exc, HandshakeFailed):
            raise timeout from None
        raise
    return conn


__all__ = ["connect_quic", "resolve", "resolve_all"]
