"""Opening client connections over QUIC: resolve, bind a connected UDP socket, handshake with a timeout.

Owns :func:`connect_quic`, which ``rudp.connect()`` calls for ``transport="quic"``; the socket belongs
to the returned connection and is released when it closes. TCP is in :mod:`rudp.aio.tcp`.
"""

from __future__ import annotations

import asyncio
import socket

from rudp.aio.connection import Connection
from rudp.aio.driver import Address
from rudp.aio.endpoint import UdpEndpoint, normalize_address
from rudp.config import Config
from rudp.errors import ConnectTimeout, HandshakeFailed, TransportErrorCode


async def resolve(host: str, port: int, *, kind: int = socket.SOCK_DGRAM) -> Address:
    """The first (address, port) ``host`` resolves to.

    Raises:
        OSError: the name does not resolve (``socket.gaierror``).
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=kind)
    if not infos:
        raise OSError(f"{host!r} does not resolve")
    return normalize_address(infos[0][4])


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
        HandshakeFailed: the server refused us (ICMP port unreachable: nothing listens there), or the
            handshake failed (certificate, ALPN...); ``code`` and ``reason`` say why.
        OSError: the host does not resolve or the socket cannot be opened.
    """
    sockaddr = await resolve(host, port)
    endpoint = await UdpEndpoint.create_client(config, sockaddr)
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
    message = f"QUIC handshake with {host} port {port} did not complete in {config.handshake_timeout:g} s"
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
        raise ConnectTimeout(message) from None
    except BaseException:
        conn._abort(HandshakeFailed(TransportErrorCode.NO_ERROR, "connect() cancelled", application=False))
        await asyncio.shield(conn.wait_closed())
        raise
    return conn


__all__ = ["connect_quic", "resolve"]
