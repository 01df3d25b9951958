"""The HTTP/3 client: ``async with rudp.h3.connect(host, port) as client`` and ``client.request()``.

Owns request sending (headers, a body given whole or as an async iterator, trailers) and the
:class:`Response` with its streaming body. The protocol state lives in :class:`H3Connection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterable, AsyncIterator, Generator, Iterable, Mapping
from types import TracebackType
from typing import Any, Final

import rudp
from rudp.config import Config
from rudp.errors import ConnectionClosed, StreamError
from rudp.h3.connection import H3_ALPN, H3Connection, H3Settings
from rudp.h3.errors import H3Error, H3ErrorCode, NotNegotiated, TunnelRefused
from rudp.h3.exchange import MessageReader, MessageWriter
from rudp.h3.frames import Setting
from rudp.h3.messages import Headers, RawHeaders, field_section_size, to_raw
from rudp.h3.tunnel import MAX_REFUSAL_BODY, Tunnel

UNKNOWN_LIMIT_SECTION: Final = 16 * 1024
"""A request header section above this many bytes (as RFC 9114 §4.2.2 counts) waits for the server's
SETTINGS, and so for its MAX_FIELD_SECTION_SIZE, instead of risking a 431."""

HeadersArg = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]] | None
Body = bytes | bytearray | memoryview | AsyncIterable[bytes] | None


class Response:
    """An HTTP/3 response: :attr:`status` and :attr:`headers` at once, the body as it arrives.

    Read the body with ``async for chunk in response.aiter_bytes()`` or ``await response.read()``;
    :attr:`trailers` is set once the body has been read to its end.
    """

    def __init__(self, reader: MessageReader, upload: asyncio.Task[None]) -> None:
        self._reader = reader
        self._upload = upload
        self.status = int(reader.pseudo[b":status"])
        self.headers = Headers(reader.headers or [])
        self.trailers: Headers | None = None
        self.http_version = "HTTP/3"
        self.stream_id = reader.stream_id
        self._content: bytes | None = None

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's chunks, as they arrive.

        Raises:
            H3Error: the stream was aborted (by the server: ``by_peer``) or the message is malformed.
            ConnectionClosed: the connection ended.
        """
        if self._content is not None:
            if self._content:
                yield self._content
            return
        while chunk := await self._reader.read_data():
            yield chunk
        if self._reader.trailers is not None:
            self.trailers = Headers(self._reader.trailers)
        await self._finish_upload()

    async def read(self) -> bytes:
        """The whole body (kept: later calls return it again)."""
        if self._content is None:
            body = bytearray()
            async for chunk in self.aiter_bytes():
                body += chunk
            self._content = bytes(body)
        return self._content

    async def _finish_upload(self) -> None:
        try:
            await self._upload
        except H3Error as exc:
            # A server may answer before reading the whole request and stop it with H3_NO_ERROR (§4.1).
            if exc.code != H3ErrorCode.H3_NO_ERROR:
                raise

    def aclose(self) -> None:
        """Stop reading the body (the server is asked to stop with H3_REQUEST_CANCELLED)."""
        if not self._reader.complete:
            with contextlib.suppress(StreamError, ConnectionClosed):
                self._reader.stream.stop_sending(H3ErrorCode.H3_REQUEST_CANCELLED)
        self._upload.cancel()

    def __repr__(self) -> str:
        return f"<rudp.h3.Response [{self.status}] stream {self.stream_id}>"


class H3Client:
    """An HTTP/3 client connection (use :func:`connect`)."""

    def __init__(self, conn: rudp.Connection, h3: H3Connection, authority: str) -> None:
        self.connection = conn
        self.h3 = h3
        self.authority = authority

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: HeadersArg = None,
        body: Body = None,
        trailers: HeadersArg = None,
    ) -> Response:
        """Send a request; return the response once its headers arrive (the body streams after).

        ``body`` is bytes (sent with a content-length) or an async iterable of bytes (streamed as it is
        produced); ``trailers`` go after the body.

        A header section larger than :data:`UNKNOWN_LIMIT_SECTION` waits for the server's SETTINGS
        if they have not arrived, so that its MAX_FIELD_SECTION_SIZE is known and honoured.

        Raises:
            HeadersTooLarge: the header section exceeds the server's MAX_FIELD_SECTION_SIZE
                (RFC 9114 §4.2.2; an H3Error with H3_EXCESSIVE_LOAD, nothing sent).
            H3Error: H3_REQUEST_REJECTED after the server's GOAWAY (not sent: safe to retry), the
                server's reset of the stream (``by_peer``), or a malformed response.
            ConnectionClosed: the connection ended.
        """
        if self.h3.error is not None:
            raise self.h3.error
        fields: RawHeaders = [
            (b":method", method.encode("ascii")),
            (b":scheme", b"https"),
            (b":authority", _ascii_or_idna(self.authority)),
            (b":path", path.encode("latin-1")),
        ]
        fields += to_raw(headers)
        if isinstance(body, bytes | bytearray | memoryview) and not any(
            n == b"content-length" for n, _ in fields
        ):
            fields.append((b"content-length", str(len(body)).encode()))
        if self.h3.peer_settings is None and field_section_size(fields) > UNKNOWN_LIMIT_SECTION:
            await self.h3.wait_peer_settings()
        stream = await self.connection.open_stream()
        sid = stream.stream_id
        try:
            self.h3.check_new_request(sid)
            writer = MessageWriter(self.h3, stream)
            end_now = body is None and trailers is None
            try:
                await writer.send_headers(fields, end=end_now)
            except H3Error as exc:
                if not (exc.by_peer and exc.code == H3ErrorCode.H3_NO_ERROR):
                    raise
                # The server answered already and stopped reading (e.g. 431, RFC 9114 §4.1): read it.
                body, trailers, end_now = None, None, True
        except H3Error:
            with contextlib.suppress(StreamError, ConnectionClosed):
                stream.reset(H3ErrorCode.H3_REQUEST_CANCELLED)
                stream.stop_sending(H3ErrorCode.H3_REQUEST_CANCELLED)
            raise
        upload = asyncio.create_task(
            self._upload(writer, body, to_raw(trailers) if trailers is not None else None, end_now)
        )
        upload.add_done_callback(_retrieve)
        reader = MessageReader(self.h3, stream, "response")
        try:
            await reader.read_headers()
        except BaseException:
            upload.cancel()
            raise
        return Response(reader, upload)

    async def _upload(
        self, writer: MessageWriter, body: Body, trailers: RawHeaders | None, ended: bool
    ) -> None:
        if ended:
            return
        if isinstance(body, bytes | bytearray | memoryview):
            await writer.send_data(bytes(body))
        elif body is not None:
            async for chunk in body:
                if chunk:
                    await writer.send_data(bytes(chunk))
        if trailers is not None:
            await writer.send_headers(trailers, end=True)
        else:
            await writer.end()

    async def open_tunnel(
        self,
        path: str | None = "/",
        *,
        protocol: str | None = None,
        authority: str | None = None,
        headers: HeadersArg = None,
    ) -> Tunnel:
        """Send a CONNECT request and return the tunnel once the server accepts it (2xx).

        With ``protocol``, an extended CONNECT (RFC 9220): ``:protocol``, ``:scheme`` https, ``:path``
        ``path`` and ``:authority`` (this connection's unless ``authority`` is given); the server must
        have sent SETTINGS_ENABLE_CONNECT_PROTOCOL=1 first (we wait for its SETTINGS). Without it, a
        plain CONNECT (RFC 9114 §4.4) to ``authority`` ("host:port"), ``path`` ignored.

        Raises:
            NotNegotiated: extended CONNECT, and the server did not enable it.
            TunnelRefused: the server answered with a non-2xx status (``status``, ``headers``, ``body``).
            H3Error: the server reset the stream (``by_peer``), a malformed response, H3_REQUEST_REJECTED
                after GOAWAY, or headers larger than the server accepts (:class:`HeadersTooLarge`).
            ConnectionClosed: the connection ended.
        """
        if protocol is not None:
            await self.h3.wait_peer_settings()
            if not self.h3.peer_enables(Setting.ENABLE_CONNECT_PROTOCOL):
                raise NotNegotiated(
                    Setting.ENABLE_CONNECT_PROTOCOL,
                    "the server did not enable extended CONNECT (SETTINGS_ENABLE_CONNECT_PROTOCOL)",
                )
            fields: RawHeaders = [
                (b":method", b"CONNECT"),
                (b":protocol", protocol.encode("ascii")),
                (b":scheme", b"https"),
                (b":authority", _ascii_or_idna(authority or self.authority)),
                (b":path", (path or "/").encode("latin-1")),
            ]
        else:
            if not authority:
                raise ValueError("a plain CONNECT needs authority='host:port'")
            fields = [(b":method", b"CONNECT"), (b":authority", _ascii_or_idna(authority))]
        fields += to_raw(headers)
        if self.h3.error is not None:
            raise self.h3.error
        stream = await self.connection.open_stream()
        sid = stream.stream_id
        datagrams = self.h3.datagrams.bind(sid)  # before the request: the server may answer with some
        reader = MessageReader(self.h3, stream, "response")
        try:
            self.h3.check_new_request(sid)
            writer = MessageWriter(self.h3, stream)
            await writer.send_headers(fields)
            await reader.read_headers()
            status = int(reader.pseudo[b":status"])
            if not 200 <= status < 300:
                body = bytearray()
                with contextlib.suppress(H3Error, StreamError):
                    while len(body) < MAX_REFUSAL_BODY and (chunk := await reader.read_data()):
                        body += chunk
                raise TunnelRefused(status, reader.headers or [], bytes(body[:MAX_REFUSAL_BODY]))
        except BaseException as exc:
            self.h3.datagrams.release(sid)
            by_peer = isinstance(exc, H3Error) and exc.by_peer
            if not by_peer:
                with contextlib.suppress(StreamError, ConnectionClosed):
                    stream.reset(H3ErrorCode.H3_REQUEST_CANCELLED)
                    stream.stop_sending(H3ErrorCode.H3_REQUEST_CANCELLED)
            raise
        return Tunnel(
            self.h3,
            reader,
            writer,
            datagrams,
            protocol=protocol,
            status=status,
            headers=Headers(reader.headers or []),
        )

    async def get(self, path: str, *, headers: HeadersArg = None) -> Response:
        """``request("GET", path)``."""
        return await self.request("GET", path, headers=headers)

    async def post(self, path: str, body: Body, *, headers: HeadersArg = None) -> Response:
        """``request("POST", path, body=body)``."""
        return await self.request("POST", path, headers=headers, body=body)

    async def aclose(self) -> None:
        """Close with H3_NO_ERROR and wait for the connection to end."""
        self.h3.close()
        await self.connection.wait_closed()

    async def __aenter__(self) -> H3Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # reported through Response; never "exception was never retrieved"


def h3_config(config: Config | None, settings: H3Settings | None = None) -> Config:
    """``config`` with ALPN "h3" (the only protocol an HTTP/3 endpoint offers), and QUIC datagrams
    (RFC 9221) on when ``settings`` asks for HTTP Datagrams (RFC 9297 §2.1.1 needs them)."""
    config = dataclasses.replace(config or Config(), alpn=[H3_ALPN])
    if settings is not None and settings.datagrams and not config.datagrams:
        config = dataclasses.replace(config, datagrams=True)
    return config


def _ascii_or_idna(name: str) -> bytes:
    try:
        return name.encode("ascii")
    except UnicodeEncodeError:
        return name.encode("idna")


async def start_client(
    conn: rudp.Connection, host: str, port: int, settings: H3Settings | None = None
) -> H3Client:
    """Speak HTTP/3 as a client on an established rudp connection (its ALPN must be "h3").

    Raises:
        ConnectionClosed: the connection closed first.
    """
    h3 = H3Connection(conn, settings=settings)
    await h3.start()
    authority = host if port == 443 else (f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return H3Client(conn, h3, authority)


async def _open(host: str, port: int, config: Config | None, settings: H3Settings | None) -> H3Client:
    conn = await rudp.connect(host, port, config=h3_config(config, settings))
    try:
        return await start_client(conn, host, port, settings)
    except BaseException:
        conn.close()
        raise


class Connect:
    """What :func:`connect` returns: ``await`` it, or use it with ``async with`` (closed on exit)."""

    def __init__(self, host: str, port: int, config: Config | None, settings: H3Settings | None) -> None:
        self._args = (host, port, config, settings)
        self._client: H3Client | None = None

    def __await__(self) -> Generator[Any, None, H3Client]:
        return _open(*self._args).__await__()

    async def __aenter__(self) -> H3Client:
        self._client = await _open(*self._args)
        return self._client

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def connect(
    host: str, port: int = 443, *, config: Config | None = None, settings: H3Settings | None = None
) -> Connect:
    """Open an HTTP/3 connection to ``host``:``port`` (ALPN "h3" over rudp's QUIC).

    ``async with rudp.h3.connect(host, port, config=...) as client:`` then ``await client.request(...)``.

    Raises:
        HandshakeFailed, ConnectionRefused, ConnectTimeout, NetworkError: as :func:`rudp.connect`.
    """
    return Connect(host, port, config, settings)


__all__ = ["UNKNOWN_LIMIT_SECTION", "Connect", "H3Client", "Response", "connect", "h3_config", "start_client"]
