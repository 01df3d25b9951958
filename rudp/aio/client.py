"""Opening client connections over QUIC: resolve, bind a connected UDP socket, handshake with a timeout.

Owns :func:`connect_quic`, which ``rudp.connect()`` calls for ``transport="quic"``; the socket belongs
to the returned connection and is released when it closes. TCP is in :mod:`rudp.aio.tcp`.
"""

from __future__ import annotations

import asyncio
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


def _expire(conn: Connection, message: str) -> None:
    if not conn.is_established:
        conn._abort(HandshakeFailed(TransportErrorCode.NO_ERROR, message, application=False))


async def connect_quic(host: str, port: int, config: Config) -> Connection:
    """Connect to a QUIC server and complete the handshake.

    The TLS server name is ``config.server_name`` or ``host``. On return the connection is established
    and owns its UDP socket. With ``config.enable_0rtt`` it returns right after sending the first
    flight, so that streams opened at once travel as 0-RTT data when a session ticket allows it; a
    failed or timed-out handshake then surfaces as HandshakeFailed from the first operation.

    Raises:
        ConnectTimeout: no handshake within ``config.handshake_timeout`` seconds.
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
    message = str(timeout)
    if config.enable_0rtt:
        # Return at once so that the first streams can go out as 0-RTT data (when a ticket allows it;
        # otherwise open_stream() waits for the handshake). A watchdog enforces the timeout.
        watchdog = loop.call_later(config.handshake_timeout, _expire, conn, message)
        conn._add_established_callback(lambda _: watchdog.cancel())
        conn._add_terminated_callback(lambda _: watchdog.cancel())
        return conn
    try:
        await asyncio.wait_for(conn.wait_established(), config.handshake_timeout)
    except TimeoutError:
        conn._abort(HandshakeFailed(TransportErrorCode.NO_ERROR, message, application=False))
        await conn.wait_closed()
        raise timeout from None
    except BaseException:
        conn._abort(HandshakeFailed(TransportErrorCode.NO_ERROR, "connect() cancelled", application=False))
        await asyncio.shield(conn.wait_closed())
        raise
    return conn


__all__ = ["connect_quic", "resolve", "resolve_all"]
