"""An ``httpx`` transport over rudp's HTTP/3: ``httpx.AsyncClient(transport=AsyncHTTP3Transport())``.

Owns the mapping between httpx's request/response objects and :class:`~rudp.h3.client.H3Client`, and
one HTTP/3 connection per origin (host, port), opened on first use and replaced once it has closed.
Needs the optional ``httpx`` extra (``pip install 'rudp[httpx]'``); nothing else in rudp imports it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from rudp.config import Config
from rudp.errors import ConnectionClosed, ConnectTimeout, NetworkError, RudpError
from rudp.h3.client import H3Client, Response, connect
from rudp.h3.connection import H3Settings
from rudp.h3.errors import H3Error

# RFC 9114 §4.2: connection-specific fields are malformed in HTTP/3; Host becomes :authority.
_NOT_FORWARDED = frozenset(
    {b"connection", b"host", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade", b"te"}
)


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except (H3Error, ConnectionClosed) as exc:
            raise httpx.ReadError(str(exc)) from exc

    async def aclose(self) -> None:
        self._response.aclose()


async def _request_body(stream: httpx.AsyncByteStream) -> AsyncIterator[bytes]:
    async for chunk in stream:
        if chunk:
            yield chunk


class AsyncHTTP3Transport(httpx.AsyncBaseTransport):
    """Sends httpx requests over HTTP/3 (https URLs only), one rudp connection per origin.

    ``config`` is the client :class:`~rudp.config.Config` (CA file, server name, congestion...); its ALPN
    is replaced by "h3". Errors become httpx's own: a failed connect is ``httpx.ConnectError`` (or
    ``httpx.ConnectTimeout``), a reset or closed stream ``httpx.ReadError``/``httpx.RemoteProtocolError``.
    """

    def __init__(self, config: Config | None = None, *, settings: H3Settings | None = None) -> None:
        self._config = config
        self._settings = settings
        self._clients: dict[tuple[str, int], H3Client] = {}
        self._opening: dict[tuple[str, int], asyncio.Lock] = {}

    @property
    def connections(self) -> int:
        """Open HTTP/3 connections (one per origin at most)."""
        return sum(1 for client in self._clients.values() if not client.connection.is_closed)

    async def _client(self, host: str, port: int) -> H3Client:
        key = (host, port)
        lock = self._opening.setdefault(key, asyncio.Lock())
        async with lock:
            client = self._clients.get(key)
            if client is None or client.connection.is_closed or client.h3.error is not None:
                try:
                    client = await connect(host, port, config=self._config, settings=self._settings)
                except ConnectTimeout as exc:
                    raise httpx.ConnectTimeout(str(exc)) from exc
                except (RudpError, NetworkError) as exc:
                    raise httpx.ConnectError(str(exc)) from exc
                self._clients[key] = client
            return client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send one request on the origin's HTTP/3 connection; the body streams both ways."""
        url = request.url
        if url.scheme != "https":
            raise httpx.UnsupportedProtocol(f"HTTP/3 needs an https URL, not {url.scheme!r}")
        host = url.host
        client = await self._client(host, url.port or 443)
        headers = [(name, value) for name, value in request.headers.raw if name.lower() not in _NOT_FORWARDED]
        stream = request.stream
        body = None
        if isinstance(stream, httpx.AsyncByteStream) and (
            request.method not in ("GET", "HEAD") or "content-length" in request.headers
        ):
            body = _request_body(stream)
        try:
            response = await client.request(
                request.method, url.raw_path.decode("latin-1"), headers=headers, body=body
            )
        except H3Error as exc:
            raise httpx.RemoteProtocolError(str(exc), request=request) from exc
        except ConnectionClosed as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        return httpx.Response(
            response.status,
            headers=list(response.headers.raw),
            stream=_ResponseStream(response),
            extensions={"http_version": b"HTTP/3"},
            request=request,
        )

    async def aclose(self) -> None:
        """Close every connection."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


__all__ = ["AsyncHTTP3Transport"]
