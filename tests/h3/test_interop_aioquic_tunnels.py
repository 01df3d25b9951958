"""Extended CONNECT (RFC 9220) and HTTP Datagrams (RFC 9297) against aioquic's HTTP/3 (used only as a
test peer, with ``enable_webtransport=True``, which makes it speak both): aioquic's client through a
rudp.h3 server's tunnel, and rudp.h3's client through an aioquic server's; bytes and datagrams
hash-compared in both directions."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aioquic.asyncio import connect as aioquic_connect
from aioquic.asyncio import serve as aioquic_serve
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN
from aioquic.h3.connection import H3Connection as AioquicH3
from aioquic.h3.events import DatagramReceived, DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated, QuicEvent

import rudp
import rudp.h3
from rudp.h3 import H3Settings
from rudp.testing.certs import TestPki

from .conftest import TestApp, pattern
from .test_tunnels import COUNT, EchoHandler, digest, payloads

DATAGRAMS = H3Settings(datagrams=True)
SIZE = 1_000_000


class TunnelEnd:
    """What one aioquic side saw on one tunnel stream."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.answered = asyncio.Event()
        self.data = bytearray()
        self.ended = asyncio.Event()
        self.datagrams: list[bytes] = []
        self.all_datagrams = asyncio.Event()

    def on_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            self.headers.update(event.headers)
            self.answered.set()
        elif isinstance(event, DataReceived):
            self.data += event.data
        elif isinstance(event, DatagramReceived):
            self.datagrams.append(event.data)
            if len(self.datagrams) == COUNT:
                self.all_datagrams.set()
        if isinstance(event, HeadersReceived | DataReceived) and event.stream_ended:
            self.ended.set()


class AioquicTunnelClient(QuicConnectionProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http = AioquicH3(self._quic, enable_webtransport=True)
        self.tunnels: dict[int, TunnelEnd] = {}

    def open(self, protocol: bytes, path: bytes) -> tuple[int, TunnelEnd]:
        sid = self._quic.get_next_available_stream_id()
        self.tunnels[sid] = end = TunnelEnd()
        self.http.send_headers(
            sid,
            [
                (b":method", b"CONNECT"),
                (b":protocol", protocol),
                (b":scheme", b"https"),
                (b":authority", b"localhost"),
                (b":path", path),
            ],
        )
        self.transmit()
        return sid, end

    def quic_event_received(self, event: QuicEvent) -> None:
        for h3_event in self.http.handle_event(event):
            sid = getattr(h3_event, "stream_id", None)
            if sid in self.tunnels:
                self.tunnels[sid].on_event(h3_event)


async def test_aioquic_client_through_a_rudp_tunnel(pki: TestPki, server_config: rudp.Config) -> None:
    handler = EchoHandler()
    data = pattern(SIZE, seed=21)
    sent = payloads(seed=300)
    server = await rudp.h3.serve_asgi(
        TestApp(), "127.0.0.1", 0, config=server_config, settings=DATAGRAMS, connect_handler=handler
    )
    try:
        configuration = QuicConfiguration(
            is_client=True, alpn_protocols=H3_ALPN, server_name="localhost", max_datagram_frame_size=65536
        )
        configuration.load_verify_locations(str(pki.ca_file))
        async with aioquic_connect(
            "127.0.0.1", server.port, configuration=configuration, create_protocol=AioquicTunnelClient
        ) as client:
            assert isinstance(client, AioquicTunnelClient)
            sid, end = client.open(b"echo", b"/tunnel")
            await end.answered.wait()
            assert end.headers[b":status"] == b"200" and end.headers[b"x-protocol"] == b"echo"
            for start in range(0, SIZE, 100_000):
                client.http.send_data(sid, data[start : start + 100_000], end_stream=False)
            for item in sent:
                client.http.send_datagram(sid, item)
            client.transmit()
            # The tunnel ends only once every datagram is echoed: those arriving after the end of the
            # stream would be dropped (RFC 9297 §2.1), and QUIC may send them after the stream data.
            await end.all_datagrams.wait()
            await handler.received_all.wait()
            client.http.send_data(sid, b"", end_stream=True)
            client.transmit()
            await end.ended.wait()
            assert hashlib.sha256(end.data).digest() == hashlib.sha256(data).digest()
            assert digest(handler.datagrams) == digest(sent)
            assert digest(end.datagrams) == digest([b"E" + item for item in sent])
            assert handler.requests[0].protocol == "echo" and handler.requests[0].path == "/tunnel"
    finally:
        server.close()
        await server.wait_closed()


class AioquicTunnelServer(QuicConnectionProtocol):
    """Accepts every extended CONNECT with 200, echoes its bytes and each datagram prefixed "E"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http: AioquicH3 | None = None

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated):
            self.http = AioquicH3(self._quic, enable_webtransport=True)
        if self.http is None:
            return
        for h3_event in self.http.handle_event(event):
            if isinstance(h3_event, HeadersReceived):
                fields = dict(h3_event.headers)
                assert fields[b":method"] == b"CONNECT" and fields[b":protocol"] == b"echo"
                self.http.send_headers(
                    h3_event.stream_id, [(b":status", b"200"), (b"x-seen", fields[b":path"])]
                )
            elif isinstance(h3_event, DataReceived):
                self.http.send_data(h3_event.stream_id, h3_event.data, end_stream=h3_event.stream_ended)
            elif isinstance(h3_event, DatagramReceived):
                self.http.send_datagram(h3_event.stream_id, b"E" + h3_event.data)
        self.transmit()


@pytest.fixture
async def aioquic_tunnel_server(pki: TestPki) -> AsyncIterator[int]:
    configuration = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN, max_datagram_frame_size=65536)
    configuration.load_cert_chain(str(pki.cert_file), str(pki.key_file))
    server = await aioquic_serve(
        "127.0.0.1", 0, configuration=configuration, create_protocol=AioquicTunnelServer
    )
    try:
        yield server._transport.get_extra_info("sockname")[1]
    finally:
        server.close()


async def test_rudp_client_through_an_aioquic_tunnel(
    aioquic_tunnel_server: int, client_config: rudp.Config
) -> None:
    data = pattern(SIZE, seed=23)
    sent = payloads(seed=500)
    async with rudp.h3.connect(
        "127.0.0.1", aioquic_tunnel_server, config=client_config, settings=DATAGRAMS
    ) as client:
        tunnel = await client.open_tunnel("/over-aioquic", protocol="echo")
        assert tunnel.status == 200 and tunnel.headers["x-seen"] == "/over-aioquic"

        echoes_in = asyncio.Event()

        async def upload() -> None:
            for start in range(0, SIZE, 64_000):
                await tunnel.write(data[start : start + 64_000])
            await echoes_in.wait()  # datagrams after the end of the stream would be dropped (§2.1)
            await tunnel.write_eof()

        async def download() -> bytes:
            received = bytearray()
            async for chunk in tunnel:
                received += chunk
            return bytes(received)

        writer = asyncio.create_task(upload())
        reader = asyncio.create_task(download())
        for item in sent:
            await tunnel.send_datagram(item)
        echoed = [await tunnel.receive_datagram() for _ in range(COUNT)]
        echoes_in.set()
        await writer
        assert hashlib.sha256(await reader).digest() == hashlib.sha256(data).digest()
        assert digest(echoed) == digest([b"E" + item for item in sent])
