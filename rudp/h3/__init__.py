"""HTTP/3 (RFC 9114) on rudp's QUIC, with QPACK (RFC 9204) through ``pylsqpack``.

Client: ``async with rudp.h3.connect(host, port, config=...) as client:`` then
``response = await client.request("GET", "/")``, ``response.status``, ``response.headers``, and the
body with ``await response.read()`` or ``async for chunk in response.aiter_bytes()``.

Server: ``server = await rudp.h3.serve_asgi(app, host, port, config=...)`` runs any ASGI application,
with the ASGI lifespan protocol (``lifespan="auto"|"on"|"off"``). A request whose header section
exceeds ``H3Settings.max_field_section_size`` gets 431; the client refuses to send one larger than the
server's limit (:class:`HeadersTooLarge`, nothing sent).

Tunnels (CONNECT, RFC 9114 §4.4; extended CONNECT, RFC 9220): a client calls
``tunnel = await client.open_tunnel("/path", protocol="echo")``; a server passes
``serve_asgi(..., connect_handler=handler)`` where ``async def handler(request)`` calls
``tunnel = await request.accept()`` (or ``await request.reject(404)``). A :class:`Tunnel` carries
bytes both ways (``await tunnel.write(b)``, ``await tunnel.read()``, ``await tunnel.write_eof()``).

HTTP Datagrams (RFC 9297) over QUIC DATAGRAM frames (RFC 9221): with ``H3Settings(datagrams=True)``
on both sides, ``await tunnel.send_datagram(data)``, ``await tunnel.receive_datagram()`` or
``async for data in tunnel.datagrams()``; :class:`NotNegotiated` when a side did not enable them.
"""

from rudp.h3.client import Connect, H3Client, Response, connect
from rudp.h3.connection import H3_ALPN, H3Connection, H3Settings
from rudp.h3.errors import H3Error, H3ErrorCode, HeadersTooLarge, NotNegotiated, TunnelRefused
from rudp.h3.lifespan import LifespanError
from rudp.h3.messages import Headers
from rudp.h3.server import ASGIHandler, H3Server, serve_asgi
from rudp.h3.tunnel import ConnectRequest, Tunnel

__all__ = [
    "H3_ALPN",
    "ASGIHandler",
    "Connect",
    "ConnectRequest",
    "H3Client",
    "H3Connection",
    "H3Error",
    "H3ErrorCode",
    "H3Server",
    "H3Settings",
    "Headers",
    "HeadersTooLarge",
    "LifespanError",
    "NotNegotiated",
    "Response",
    "Tunnel",
    "TunnelRefused",
    "connect",
    "serve_asgi",
]
