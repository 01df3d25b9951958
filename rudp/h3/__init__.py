"""HTTP/3 (RFC 9114) on rudp's QUIC, with QPACK (RFC 9204) through ``pylsqpack``.

Client: ``async with rudp.h3.connect(host, port, config=...) as client:`` then
``response = await client.request("GET", "/")``, ``response.status``, ``response.headers``, and the
body with ``await response.read()`` or ``async for chunk in response.aiter_bytes()``.

Server: ``server = await rudp.h3.serve_asgi(app, host, port, config=...)`` runs any ASGI application.
"""

from rudp.h3.client import Connect, H3Client, Response, connect
from rudp.h3.connection import H3_ALPN, H3Connection, H3Settings
from rudp.h3.errors import H3Error, H3ErrorCode
from rudp.h3.messages import Headers
from rudp.h3.server import ASGIHandler, H3Server, serve_asgi

__all__ = [
    "H3_ALPN",
    "ASGIHandler",
    "Connect",
    "H3Client",
    "H3Connection",
    "H3Error",
    "H3ErrorCode",
    "H3Server",
    "H3Settings",
    "Headers",
    "Response",
    "connect",
    "serve_asgi",
]
