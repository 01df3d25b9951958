"""An hq-interop and HTTP/3 file server on aioquic's public asyncio API (the interop peer for rudp clients).

Owns :class:`AioquicFileServer`: aioquic's ``QuicServer`` on an ephemeral port, with a protocol that
answers ``GET /path\\r\\n`` on each bidirectional stream with the file's bytes then FIN (hq-interop), or
an HTTP/3 GET with 200 and the file or 404 (aioquic's ``H3Connection``, when the client chose h3), a
ticket store so clients can resume and send 0-RTT, optional Retry, and a report per connection. Run it
alone with ``python -m interop.peers.aioquic_server --root DIR --cert cert.pem --key key.pem``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
from pathlib import Path
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.h3.connection import H3Connection
from aioquic.h3.events import H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    HandshakeCompleted,
    ProtocolNegotiated,
    QuicEvent,
    StreamDataReceived,
    StreamReset,
)
from aioquic.quic.logger import QuicLogger
from aioquic.tls import SessionTicket

from interop.peers.aioquic_observe import count_key_updates, on_handshake
from interop.peers.base import (
    ALPN,
    H3_ALPN,
    HQ_BAD_REQUEST,
    MAX_REQUEST_BYTES,
    EndpointReport,
    ServerOptions,
    resolve_request,
)


class HqServerProtocol(QuicConnectionProtocol):
    """One server connection: serves each request stream once its request line (or FIN) arrived."""

    def __init__(
        self, quic: QuicConnection, stream_handler: Any = None, *, server: AioquicFileServer
    ) -> None:
        super().__init__(quic, stream_handler=stream_handler)
        self.connection = quic  # our own reference: the protocol keeps its copy private
        self.report = EndpointReport("aioquic", "server")
        self._server = server
        self._requests: dict[int, bytearray] = {}
        self._answered: set[int] = set()
        self._h3: H3Connection | None = None

    def quic_event_received(self, event: QuicEvent) -> None:
        """Route aioquic's events: handshake reports, request bytes (to HTTP/3 once h3 was chosen), resets."""
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol == H3_ALPN:
            self._h3 = H3Connection(self.connection)
        if isinstance(event, HandshakeCompleted):
            on_handshake(self.report, self.connection, event)
            self._server.connections.append(self)
        elif self._h3 is not None:
            for h3_event in self._h3.handle_event(event):
                self._on_h3_event(h3_event)
        elif isinstance(event, StreamDataReceived):
            self._on_request_data(event.stream_id, event.data, event.end_stream)
        elif isinstance(event, StreamReset):
            self._requests.pop(event.stream_id, None)

    def _on_request_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        if stream_id in self._answered:
            return
        buffer = self._requests.setdefault(stream_id, bytearray())
        buffer += data
        if len(buffer) > MAX_REQUEST_BYTES:
            self._answer(stream_id, HQ_BAD_REQUEST)
        elif b"\n" in buffer or end_stream:
            self._answer(stream_id, resolve_request(self._server.root, bytes(buffer).split(b"\n", 1)[0]))

    def _on_h3_event(self, event: H3Event) -> None:
        if not isinstance(event, HeadersReceived) or self._h3 is None:
            return  # a GET has no body: its HEADERS carry the request
        fields = dict(event.headers)
        target = resolve_request(self._server.root, b"GET " + fields.get(b":path", b"") + b"\r\n")
        if fields.get(b":method") != b"GET" or isinstance(target, int):
            self._h3.send_headers(event.stream_id, [(b":status", b"404")], end_stream=True)
        else:
            body = target.read_bytes()
            self._h3.send_headers(
                event.stream_id, [(b":status", b"200"), (b"content-length", str(len(body)).encode())]
            )
            self._h3.send_data(event.stream_id, body, end_stream=True)
        self.transmit()

    def _answer(self, stream_id: int, target: Path | int) -> None:
        self._answered.add(stream_id)
        self._requests.pop(stream_id, None)
        if isinstance(target, int):
            self.connection.reset_stream(stream_id, target)
        else:
            self.connection.send_stream_data(stream_id, target.read_bytes(), end_stream=True)
        self.transmit()


class AioquicFileServer:
    """aioquic serving the files under ``root`` over hq-interop; see :meth:`start`."""

    def __init__(self, root: Path, certfile: Path, keyfile: Path, options: ServerOptions) -> None:
        self.root = root.resolve()
        self.options = options
        self.connections: list[HqServerProtocol] = []
        self.logger = QuicLogger()
        self.configuration = QuicConfiguration(
            is_client=False, alpn_protocols=[ALPN, H3_ALPN], quic_logger=self.logger
        )
        self.configuration.load_cert_chain(certfile, keyfile)
        self._tickets: dict[bytes, SessionTicket] = {}
        self._quic_server: QuicServer | None = None
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> AioquicFileServer:
        """Listen on ``host``:``port`` (0: an ephemeral port, see :attr:`port`)."""
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: QuicServer(
                configuration=self.configuration,
                create_protocol=functools.partial(HqServerProtocol, server=self),
                session_ticket_fetcher=self._tickets.pop,  # single use, as anti-replay for 0-RTT
                session_ticket_handler=self._store_ticket,
                retry=self.options.retry,
            ),
            local_addr=(host, port),
        )
        self._transport = transport
        self._quic_server = protocol
        return self

    def _store_ticket(self, ticket: SessionTicket) -> None:
        self._tickets[ticket.ticket] = ticket

    @property
    def port(self) -> int:
        """The UDP port listened on."""
        if self._transport is None:
            raise RuntimeError("server not started")
        return int(self._transport.get_extra_info("sockname")[1])

    @property
    def cid_length(self) -> int:
        """The length of the connection IDs it issues."""
        return self.configuration.connection_id_length

    def reports(self) -> list[EndpointReport]:
        """One report per connection whose handshake completed, key updates counted from the qlog."""
        for protocol in self.connections:
            protocol.report.key_updates = count_key_updates(self.logger, protocol.connection, is_client=False)
        return [protocol.report for protocol in self.connections]

    async def close(self) -> None:
        """Close every connection and the socket."""
        if self._quic_server is not None:
            self._quic_server.close()
            self._quic_server = None


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="directory whose files are served")
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4433)
    parser.add_argument("--retry", action="store_true", help="send a Retry before accepting a client")
    args = parser.parse_args()
    server = AioquicFileServer(args.root, args.cert, args.key, ServerOptions(retry=args.retry))
    await server.start(args.host, args.port)
    print(f"aioquic hq-interop server on {args.host} port {server.port}, serving {server.root}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())


__all__ = ["AioquicFileServer", "HqServerProtocol"]
