"""An hq-interop and HTTP/3 client on aioquic's public asyncio API (the interop peer for rudp servers).

Owns :func:`run_aioquic_client`, which carries out a :class:`~interop.peers.base.ClientPlan`: one
connection after the other, each requesting its paths concurrently (one stream per request), resuming
with the previous connection's ticket, sending 0-RTT requests and initiating a key update when the plan
says so, over aioquic's ``H3Connection`` when the plan's ALPN is h3. Run it alone with
``python -m interop.peers.aioquic_client --ca ca.pem --port 4433 /a /b``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
from pathlib import Path
from typing import Any

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    QuicEvent,
    StreamDataReceived,
    StreamReset,
)
from aioquic.quic.logger import QuicLogger
from aioquic.tls import CipherSuite, SessionTicket

from interop.peers.aioquic_observe import count_key_updates, on_handshake
from interop.peers.base import (
    H3_ALPN,
    SERVER_NAME,
    TICKET_TIMEOUT,
    VERSION_1,
    BodyHasher,
    ClientConnectionResult,
    ClientPlan,
    Digest,
    EndpointReport,
    request_line,
)


class HqClientProtocol(QuicConnectionProtocol):
    """One client connection: :meth:`get` sends a request on a new stream and hashes the response."""

    def __init__(self, quic: QuicConnection, stream_handler: Any = None, *, h3: bool = False) -> None:
        super().__init__(quic, stream_handler=stream_handler)
        self.connection = quic  # our own reference: the protocol keeps its copy private
        self._h3 = H3Connection(quic) if h3 else None
        """HTTP/3 over this connection (the http3 case); None: hq-interop."""
        self.report = EndpointReport("aioquic", "client")
        self.key_update_wanted = False
        self.handshake_completed = asyncio.Event()
        """Set on HandshakeCompleted (aioquic's ``wait_connected()`` misses a handshake completed before
        it is called, which happens when 0-RTT requests are answered first)."""
        self._key_update_requested = False
        self._bodies: dict[int, BodyHasher] = {}
        self._waiters: dict[int, asyncio.Future[Digest]] = {}

    async def get(self, path: str) -> Digest:
        """Request ``path`` and return the digest of the response body.

        Raises:
            ConnectionError: the server reset the stream or the connection ended first.
        """
        stream_id = self.connection.get_next_available_stream_id()
        waiter: asyncio.Future[Digest] = asyncio.get_running_loop().create_future()
        self._waiters[stream_id] = waiter
        self._bodies[stream_id] = BodyHasher()
        if self._h3 is None:
            self.connection.send_stream_data(stream_id, request_line(path), end_stream=True)
        else:
            fields = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", SERVER_NAME.encode())]
            self._h3.send_headers(stream_id, [*fields, (b":path", path.encode())], end_stream=True)
        self.transmit()
        return await waiter

    def quic_event_received(self, event: QuicEvent) -> None:
        """Route aioquic's events: handshake report, response bytes, resets, termination."""
        if isinstance(event, HandshakeCompleted):
            on_handshake(self.report, self.connection, event)
            self.handshake_completed.set()
        elif isinstance(event, StreamDataReceived) and self._h3 is not None:
            for h3_event in self._h3.handle_event(event):
                self._on_h3_event(h3_event)
        elif isinstance(event, StreamDataReceived):
            self._on_data(event.stream_id, event.data, event.end_stream)
        elif isinstance(event, StreamReset):
            self._fail(
                event.stream_id, ConnectionError(f"stream {event.stream_id} reset: {event.error_code:#x}")
            )
        elif isinstance(event, ConnectionTerminated):
            error = ConnectionError(f"connection closed: {event.error_code:#x} {event.reason_phrase!r}")
            for stream_id in list(self._waiters):
                self._fail(stream_id, error)

    def _on_h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            status = dict(event.headers).get(b":status")
            if status != b"200":
                self._fail(event.stream_id, ConnectionError(f"stream {event.stream_id}: status {status!r}"))
            elif event.stream_ended:
                self._on_data(event.stream_id, b"", True)
        elif isinstance(event, DataReceived):
            self._on_data(event.stream_id, event.data, event.stream_ended)

    def _on_data(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        hasher = self._bodies.get(stream_id)
        if hasher is None:
            return
        hasher.update(data)
        if self.key_update_wanted and not self._key_update_requested and data:
            # aioquic defers the update until the handshake is confirmed (RFC 9001 §6.1).
            self._key_update_requested = True
            self.request_key_update()
        if end_stream:
            waiter = self._waiters.pop(stream_id)
            del self._bodies[stream_id]
            if not waiter.done():
                waiter.set_result(hasher.digest())

    def _fail(self, stream_id: int, error: Exception) -> None:
        self._bodies.pop(stream_id, None)
        waiter = self._waiters.pop(stream_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)


def _configuration(plan: ClientPlan, cafile: Path, logger: QuicLogger) -> QuicConfiguration:
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=[plan.alpn], server_name=SERVER_NAME, quic_logger=logger
    )
    configuration.load_verify_locations(str(cafile))
    if plan.cipher_suites is not None:
        configuration.cipher_suites = [CipherSuite(suite) for suite in plan.cipher_suites]
    if plan.version != VERSION_1:
        configuration.original_version = plan.version
        configuration.supported_versions = [plan.version, VERSION_1]
    return configuration


async def run_aioquic_client(
    plan: ClientPlan, host: str, port: int, cafile: Path
) -> list[ClientConnectionResult]:
    """Carry out ``plan`` against ``host``:``port``; one result per connection, in order.

    Raises:
        ConnectionError: a request failed or a connection ended early.
        TimeoutError: no session ticket arrived when the next connection needs one.
    """
    tickets: list[SessionTicket] = []
    ticket_arrived = asyncio.Event()

    def keep_ticket(ticket: SessionTicket) -> None:
        tickets.append(ticket)
        ticket_arrived.set()

    results: list[ClientConnectionResult] = []
    for index, paths in enumerate(plan.connections):
        logger = QuicLogger()
        configuration = _configuration(plan, cafile, logger)
        if index > 0 and (plan.resume or plan.early_data):
            configuration.session_ticket = tickets[-1]
        early = plan.early_data and index > 0
        needs_ticket = (plan.resume or plan.early_data) and index + 1 < len(plan.connections)
        ticket_arrived.clear()
        async with connect(
            host,
            port,
            configuration=configuration,
            create_protocol=functools.partial(HqClientProtocol, h3=plan.alpn == H3_ALPN),
            session_ticket_handler=keep_ticket,
            wait_connected=not early,  # without waiting, the first requests travel as 0-RTT
        ) as protocol:
            assert isinstance(protocol, HqClientProtocol)
            protocol.key_update_wanted = plan.key_update
            digests = await asyncio.gather(*(protocol.get(path) for path in paths))
            await protocol.handshake_completed.wait()
            if needs_ticket:
                await asyncio.wait_for(ticket_arrived.wait(), TICKET_TIMEOUT)
            protocol.report.key_updates = count_key_updates(logger, protocol.connection, is_client=True)
            results.append(ClientConnectionResult(protocol.report, dict(zip(paths, digests, strict=True))))
    return results


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="paths to request, e.g. /index.html")
    parser.add_argument("--ca", type=Path, required=True, help="CA bundle to verify the server with")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4433)
    args = parser.parse_args()
    for result in await run_aioquic_client(ClientPlan((tuple(args.paths),)), args.host, args.port, args.ca):
        for path, digest in result.bodies.items():
            print(f"{path}: {digest.size} bytes sha256 {digest.sha256}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())


__all__ = ["HqClientProtocol", "run_aioquic_client"]
