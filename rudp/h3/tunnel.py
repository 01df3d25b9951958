"""CONNECT tunnels over HTTP/3: the CONNECT method (RFC 9114 §4.4) and extended CONNECT (RFC 9220,
the ``:protocol`` pseudo-header of RFC 8441 §4), with the HTTP Datagrams of the request (RFC 9297).

Owns the two sides of an accepted CONNECT: :class:`Tunnel` (bytes both ways in DATA frames, plus
datagrams), used by the client (:meth:`rudp.h3.H3Client.open_tunnel`) and the server alike, and
:class:`ConnectRequest`, what a server's ``connect_handler`` receives and accepts or refuses.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from rudp.aio.stream import Stream
from rudp.errors import ConnectionClosed, RudpError, StreamError, StreamStateError
from rudp.h3.connection import H3Connection
from rudp.h3.datagrams import DatagramQueue
from rudp.h3.errors import H3Error, H3ErrorCode
from rudp.h3.exchange import MessageReader, MessageWriter
from rudp.h3.messages import CONNECTION_SPECIFIC, Headers, RawHeaders

MAX_REFUSAL_BODY: Final = 64 * 1024
"""Bytes of a refused CONNECT's response body kept in :class:`~rudp.h3.errors.TunnelRefused`."""

_log = logging.getLogger("rudp.h3.tunnel")


class Tunnel:
    """The two-way byte stream of an accepted CONNECT request, and its HTTP Datagrams.

    Bytes go in DATA frames on the request stream, reliably and in order, each direction until its
    sender calls :meth:`write_eof` (RFC 9114 §4.4; RFC 9220 §3: the stream stays open both ways after
    the 2xx response). Datagrams (:meth:`send_datagram`, :meth:`receive_datagram`, :meth:`datagrams`)
    are unreliable and need ``H3Settings(datagrams=True)`` on both sides.

    ``async with tunnel:`` closes it on exit (:meth:`aclose`).

    Attributes:
        stream_id: the request stream.
        protocol: the extended CONNECT protocol (``:protocol``), None for a plain CONNECT.
        status: the 2xx status of the response.
        headers: the peer's header fields (the response's for a client, the request's for a server).
    """

    def __init__(
        self,
        h3: H3Connection,
        reader: MessageReader,
        writer: MessageWriter,
        datagrams: DatagramQueue,
        *,
        protocol: str | None,
        status: int,
        headers: Headers,
    ) -> None:
        self._h3 = h3
        self._reader = reader
        self._writer = writer
        self._datagrams = datagrams
        self.stream: Stream = reader.stream
        self.stream_id = reader.stream_id
        self.protocol = protocol
        self.status = status
        self.headers = headers
        self.closed = False

    # ------------------------------------------------------------------ bytes

    async def read(self) -> bytes:
        """The next bytes the peer sent; b"" once it ended its direction.

        Raises:
            H3Error: the peer aborted the stream (``by_peer``), or it broke HTTP/3 framing.
            ConnectionClosed: the connection ended.
        """
        chunk = await self._reader.read_data()
        if not chunk:
            # The receive side is closed: later datagrams for it are dropped (RFC 9297 §2.1).
            self._h3.datagrams.release(self.stream_id)
        return chunk

    async def write(self, data: bytes) -> None:
        """Send ``data`` (waits for flow control).

        Raises:
            H3Error: the peer stopped the stream (``by_peer``).
            ConnectionClosed: the connection ended.
        """
        if data:
            await self._writer.send_data(bytes(data))

    async def write_eof(self) -> None:
        """End our direction (FIN); the peer's may go on."""
        await self._writer.end()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while chunk := await self.read():
            yield chunk

    # ------------------------------------------------------------------ datagrams

    async def send_datagram(self, data: bytes) -> None:
        """Send one HTTP Datagram on this tunnel (unreliable: it may be lost, never retransmitted).

        Waits for the peer's SETTINGS if they have not arrived yet.

        Raises:
            NotNegotiated: either side did not enable HTTP/3 datagrams (RFC 9297 §2.1.1).
            StreamStateError: our direction of the tunnel has ended (RFC 9297 §2.1: datagrams are
                sent only while the stream's send side is open).
            DatagramError: ``data`` is larger than one QUIC DATAGRAM frame can carry.
            ConnectionClosed: the connection ended.
        """
        await self._h3.wait_peer_settings()
        if self._writer.ended or self.closed:
            raise StreamStateError(self.stream_id, "the tunnel's send side is closed: no more datagrams")
        self._h3.datagrams.send(self.stream_id, data)

    async def receive_datagram(self) -> bytes:
        """The next HTTP Datagram from the peer.

        Raises:
            NotNegotiated: this side did not enable HTTP/3 datagrams.
            StreamStateError: the tunnel is closed (its receive side ended) and none is left.
            ConnectionClosed: the connection ended and none is left.
        """
        if not self._h3.datagrams.local_enabled:
            self._h3.datagrams.check_can_send()  # raises NotNegotiated, saying why
        return await self._datagrams.get()

    async def datagrams(self) -> AsyncIterator[bytes]:
        """The peer's datagrams as they arrive, until the tunnel or the connection closes."""
        while True:
            try:
                yield await self.receive_datagram()
            except (StreamStateError, ConnectionClosed):
                return

    @property
    def datagrams_received(self) -> int:
        """Datagrams received for this tunnel so far (read or still queued)."""
        return self._datagrams.received

    # ------------------------------------------------------------------ closing

    def abort(self, code: int = H3ErrorCode.H3_REQUEST_CANCELLED) -> None:
        """Abandon the tunnel at once in both directions (reset and stop the stream with ``code``)."""
        self.closed = True
        self._h3.datagrams.release(self.stream_id)
        self._h3.fail_stream(self.stream, H3Error(code, "tunnel aborted", stream_id=self.stream_id))

    async def aclose(self) -> None:
        """End our direction if still open, stop reading the peer's (H3_NO_ERROR: not needed any
        more, RFC 9114 §4.1), drop further datagrams; idempotent."""
        if self.closed:
            return
        self.closed = True
        self._h3.datagrams.release(self.stream_id)
        with contextlib.suppress(H3Error, ConnectionClosed, StreamError):
            if not self._writer.ended:
                await self._writer.end()
        if not self._reader.complete:
            with contextlib.suppress(StreamError, ConnectionClosed):
                self.stream.stop_sending(H3ErrorCode.H3_NO_ERROR)

    async def __aenter__(self) -> Tunnel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<rudp.h3.Tunnel stream {self.stream_id} protocol={self.protocol!r}>"


ConnectHandler = Callable[["ConnectRequest"], Awaitable[None]]
"""A server's hook for CONNECT requests: ``async def handler(request: ConnectRequest) -> None``."""


class ConnectRequest:
    """A CONNECT request, as a server's ``connect_handler`` receives it: :meth:`accept` opens the
    tunnel, :meth:`reject` answers with a non-2xx response.

    Attributes:
        protocol: ``:protocol`` of an extended CONNECT (RFC 9220), None for a plain CONNECT.
        authority, scheme, path: the target (``scheme`` and ``path`` are None for a plain CONNECT).
        headers: the request's other fields.
        stream_id: the request stream.
    """

    method = "CONNECT"

    def __init__(self, h3: H3Connection, reader: MessageReader) -> None:
        self._h3 = h3
        self._reader = reader
        self._writer = MessageWriter(h3, reader.stream)
        pseudo = reader.pseudo
        self.stream_id = reader.stream_id
        self.protocol = _text(pseudo.get(b":protocol"))
        self.authority = _text(pseudo.get(b":authority")) or ""
        self.scheme = _text(pseudo.get(b":scheme"))
        self.path = _text(pseudo.get(b":path"))
        self.headers = Headers(reader.headers or [])
        # Bound at once: the client may send datagrams before it sees our answer (RFC 9297 §2.1).
        self._datagrams = h3.datagrams.bind(self.stream_id)
        self.tunnel: Tunnel | None = None
        self.answered = False

    async def accept(self, status: int = 200, headers: RawHeaders | None = None) -> Tunnel:
        """Answer with ``status`` (2xx) and return the tunnel.

        Raises:
            ValueError: ``status`` is not 2xx, or the request was answered already.
            H3Error, ConnectionClosed: the stream or connection failed.
        """
        if not 200 <= status < 300 or self.answered:
            raise ValueError("accept() takes a 2xx status, once")
        self.answered = True
        await self._writer.send_headers([(b":status", str(status).encode()), *_fields(headers)])
        self.tunnel = Tunnel(
            self._h3,
            self._reader,
            self._writer,
            self._datagrams,
            protocol=self.protocol,
            status=status,
            headers=self.headers,
        )
        return self.tunnel

    async def reject(self, status: int, headers: RawHeaders | None = None, body: bytes = b"") -> None:
        """Refuse the tunnel with a final non-2xx response (``body`` optional) and end the stream.

        Raises:
            ValueError: ``status`` is 2xx or not a final status, or the request was answered already.
        """
        if not 300 <= status < 600 or self.answered:
            raise ValueError("reject() takes a final non-2xx status, once")
        self.answered = True
        self._h3.datagrams.release(self.stream_id)
        fields = [(b":status", str(status).encode()), *_fields(headers)]
        fields.append((b"content-length", str(len(body)).encode()))
        await self._writer.send_headers(fields, end=not body)
        if body:
            await self._writer.send_data(body, end=True)
        if not self._reader.complete:
            with contextlib.suppress(StreamError, ConnectionClosed):
                self._reader.stream.stop_sending(H3ErrorCode.H3_NO_ERROR)

    async def _run(self, handler: ConnectHandler) -> None:
        """Run ``handler``; whatever it leaves undone is finished here (500, or the tunnel closed)."""
        try:
            await handler(self)
        except (ConnectionClosed, StreamError) as exc:
            _log.debug("CONNECT on stream %d abandoned: %s", self.stream_id, exc)
            return
        except H3Error as exc:
            if exc.by_peer:
                _log.debug("CONNECT on stream %d aborted by the client: %s", self.stream_id, exc)
                if self.tunnel is not None:
                    self.tunnel.abort(exc.code)
                return
            _log.error("connect_handler failed on stream %d", self.stream_id, exc_info=exc)
            await self._fail()
            return
        except Exception as exc:
            _log.error("connect_handler raised on stream %d", self.stream_id, exc_info=exc)
            await self._fail()
            return
        if self.tunnel is not None:
            await self.tunnel.aclose()
        elif not self.answered:
            _log.error("connect_handler returned without accepting or rejecting stream %d", self.stream_id)
            await self._fail()

    async def _fail(self) -> None:
        if self.tunnel is not None:
            self.tunnel.abort(H3ErrorCode.H3_INTERNAL_ERROR)
        elif not self.answered:
            with contextlib.suppress(RudpError, ValueError):
                await self.reject(500, [(b"content-type", b"text/plain")], b"Internal Server Error")
        else:
            self._writer.abort(H3ErrorCode.H3_INTERNAL_ERROR)
            self._h3.datagrams.release(self.stream_id)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _fields(headers: RawHeaders | None) -> RawHeaders:
    return [
        (bytes(n).lower(), bytes(v)) for n, v in headers or [] if bytes(n).lower() not in CONNECTION_SPECIFIC
    ]


async def serve_connect(h3: H3Connection, reader: MessageReader, handler: ConnectHandler) -> None:
    """Give the CONNECT request ``reader`` just read to ``handler`` (the server's hook)."""
    await ConnectRequest(h3, reader)._run(handler)


__all__ = ["MAX_REFUSAL_BODY", "ConnectHandler", "ConnectRequest", "Tunnel", "serve_connect"]
