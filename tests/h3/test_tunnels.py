"""Extended CONNECT (RFC 9220) tunnels and HTTP Datagrams (RFC 9297) between rudp.h3's client and
server over real rudp connections: bytes and datagrams hash-compared, negotiation, the error codes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

import rudp
import rudp.h3
from rudp.codec.varint import encode_varint
from rudp.h3 import (
    ConnectRequest,
    H3Error,
    H3ErrorCode,
    H3Settings,
    NotNegotiated,
    TunnelRefused,
)
from rudp.h3.exchange import MessageReader, MessageWriter
from rudp.netem.impairments import Impairments
from rudp.testing.relay import UdpRelay

from .conftest import TestApp, pattern

DATAGRAMS = H3Settings(datagrams=True)
COUNT = 60


def payloads(seed: int) -> list[bytes]:
    """COUNT distinct datagram payloads of 1 to 1100 bytes."""
    return [bytes([i]) + pattern(1 + (i * 37) % 1100, seed=seed + i)[1:] for i in range(COUNT)]


def digest(items: list[bytes]) -> str:
    return hashlib.sha256(b"".join(hashlib.sha256(item).digest() for item in sorted(items))).hexdigest()


class EchoHandler:
    """connect_handler: accepts any protocol but "refuse" (refused with 403); echoes the tunnel's bytes
    as they come and each datagram with an "E" prefix; records what it saw."""

    def __init__(self) -> None:
        self.requests: list[ConnectRequest] = []
        self.datagrams: list[bytes] = []
        self.received_all = asyncio.Event()
        self.send_errors: list[BaseException] = []

    async def __call__(self, request: ConnectRequest) -> None:
        self.requests.append(request)
        if request.protocol == "refuse":
            await request.reject(403, [(b"x-why", b"refused")], b"not here")
            return
        tunnel = await request.accept(headers=[(b"x-protocol", (request.protocol or "").encode())])

        async def echo_datagrams() -> None:
            async for data in tunnel.datagrams():
                self.datagrams.append(data)
                try:
                    await tunnel.send_datagram(b"E" + data)
                except NotNegotiated as exc:
                    self.send_errors.append(exc)
                if len(self.datagrams) == COUNT:
                    self.received_all.set()

        echo = asyncio.create_task(echo_datagrams())
        try:
            async for chunk in tunnel:
                await tunnel.write(chunk)
            await tunnel.write_eof()
        finally:
            echo.cancel()


async def test_extended_connect_echo_tunnel_bytes_and_datagrams_both_ways(
    h3_server: Callable[..., Any], client_config: rudp.Config
) -> None:
    handler = EchoHandler()
    data = pattern(1_500_000, seed=11)
    sent = payloads(seed=100)
    async with (
        h3_server(TestApp(), settings=DATAGRAMS, connect_handler=handler) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config, settings=DATAGRAMS) as client,
    ):
        peer = await client.h3.wait_peer_settings()
        assert peer[0x08] == 1 and peer[0x33] == 1  # ENABLE_CONNECT_PROTOCOL and H3_DATAGRAM
        tunnel = await client.open_tunnel("/chat?room=1", protocol="echo")
        assert tunnel.status == 200 and tunnel.headers["x-protocol"] == "echo"
        request = handler.requests[0]
        assert (request.protocol, request.path, request.scheme) == ("echo", "/chat?room=1", "https")
        assert request.authority == f"127.0.0.1:{server.port}"

        # Datagrams both ways, while bytes flow both ways on the same stream. The stream ends once the
        # datagrams are in: those arriving after the end of the stream are dropped (RFC 9297 §2.1).
        echoes_in = asyncio.Event()

        async def upload() -> None:
            for start in range(0, len(data), 40_000):
                await tunnel.write(data[start : start + 40_000])
            await echoes_in.wait()
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
        await handler.received_all.wait()
        echoes_in.set()
        await writer
        assert hashlib.sha256(await reader).digest() == hashlib.sha256(data).digest()
        assert digest(handler.datagrams) == digest(sent)
        assert digest(echoed) == digest([b"E" + item for item in sent])
        assert tunnel.datagrams_received == COUNT and not handler.send_errors
        await tunnel.aclose()
        # The connection carries on with ordinary requests.
        assert (await client.get("/sha256")).status == 200


async def test_connect_refused_and_extended_connect_not_enabled(
    h3_server: Callable[..., Any], client_config: rudp.Config
) -> None:
    handler = EchoHandler()
    async with (
        h3_server(TestApp(), connect_handler=handler) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client,
    ):
        with pytest.raises(TunnelRefused) as refused:
            await client.open_tunnel("/", protocol="refuse")
        assert refused.value.status == 403 and refused.value.body == b"not here"
        assert (b"x-why", b"refused") in refused.value.headers
        # A plain CONNECT (RFC 9114 §4.4): only :method and :authority; the handler sees no protocol.
        async with await client.open_tunnel(authority="example.com:443") as plain:
            await plain.write(b"plain bytes")
            await plain.write_eof()
            assert await plain.read() == b"plain bytes" and await plain.read() == b""
        request = handler.requests[-1]
        assert (request.protocol, request.authority, request.path, request.scheme) == (
            None,
            "example.com:443",
            None,
            None,
        )
    # Without a connect_handler the server does not announce extended CONNECT: the client refuses.
    async with (
        h3_server(TestApp()) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client,
    ):
        with pytest.raises(NotNegotiated) as missing:
            await client.open_tunnel("/", protocol="echo")
        assert missing.value.setting == 0x08
        assert (await client.get("/sha256")).status == 200


async def test_datagrams_off_on_one_side_is_a_typed_error(
    h3_server: Callable[..., Any], client_config: rudp.Config, server_config: rudp.Config
) -> None:
    # The server's QUIC accepts datagrams but its HTTP/3 does not offer them: the client may not send.
    quic_only = dataclasses.replace(server_config, datagrams=True)
    server = await rudp.h3.serve_asgi(
        TestApp(), "127.0.0.1", 0, config=quic_only, connect_handler=EchoHandler()
    )
    async with (
        server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config, settings=DATAGRAMS) as client,
    ):
        tunnel = await client.open_tunnel("/", protocol="echo")
        with pytest.raises(NotNegotiated) as off:
            await tunnel.send_datagram(b"x")
        assert off.value.setting == 0x33 and "the peer did not enable" in str(off.value)
        assert not client.h3.datagrams.peer_enabled and client.h3.datagrams.local_enabled
        await tunnel.write(b"still works")
        await tunnel.write_eof()
        assert await tunnel.read() == b"still works"
    # The server has no QUIC datagrams at all: HTTP datagrams cannot be on here either.
    async with (
        h3_server(TestApp(), connect_handler=EchoHandler()) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config, settings=DATAGRAMS) as client,
    ):
        tunnel = await client.open_tunnel("/", protocol="echo")
        with pytest.raises(NotNegotiated) as quic_off:
            await tunnel.send_datagram(b"x")
        assert quic_off.value.setting == 0x33 and "QUIC datagrams" in str(quic_off.value)
    # The client's HTTP/3 does not enable them (its QUIC does): it can neither send nor receive, and
    # the server may not send.
    handler = EchoHandler()
    async with (
        h3_server(TestApp(), settings=DATAGRAMS, connect_handler=handler) as server,
        rudp.h3.connect(
            "127.0.0.1", server.port, config=dataclasses.replace(client_config, datagrams=True)
        ) as client,
    ):
        tunnel = await client.open_tunnel("/", protocol="echo")
        with pytest.raises(NotNegotiated) as local_off:
            await tunnel.send_datagram(b"x")
        assert "H3Settings(datagrams=True)" in str(local_off.value)
        with pytest.raises(NotNegotiated):
            await tunnel.receive_datagram()
        server_h3 = next(iter(server.handler.connections))
        assert server_h3.datagrams.local_enabled and not server_h3.datagrams.peer_enabled
        with pytest.raises(NotNegotiated) as peer_off:
            server_h3.datagrams.send(tunnel.stream_id, b"x")
        assert "the peer did not enable" in str(peer_off.value)
        await tunnel.aclose()


async def test_malformed_connect_requests_get_h3_message_error(
    h3_server: Callable[..., Any], client_config: rudp.Config
) -> None:
    base = [(b":method", b"CONNECT"), (b":protocol", b"echo"), (b":scheme", b"https")]
    cases = [
        (True, [*base, (b":authority", b"localhost")]),  # no :path
        (True, [*base, (b":path", b"/")]),  # no :authority
        (
            True,
            [
                (b":method", b"GET"),
                (b":protocol", b"echo"),
                (b":scheme", b"https"),
                (b":path", b"/"),
                (b":authority", b"localhost"),
            ],
        ),  # :protocol on GET
        (True, [(b":method", b"CONNECT"), (b":authority", b"localhost"), (b":path", b"/")]),  # plain + :path
        (False, [*base, (b":path", b"/"), (b":authority", b"localhost")]),  # extended CONNECT not enabled
    ]
    handler = EchoHandler()
    async with (
        h3_server(TestApp(), connect_handler=handler) as with_connect,
        h3_server(TestApp()) as without,
    ):
        for enabled, fields in cases:
            port = with_connect.port if enabled else without.port
            async with rudp.h3.connect("127.0.0.1", port, config=client_config) as client:
                stream = await client.connection.open_stream()
                await MessageWriter(client.h3, stream).send_headers(fields)
                with pytest.raises(H3Error) as malformed:
                    await MessageReader(client.h3, stream, "response").read_headers()
                assert malformed.value.code == H3ErrorCode.H3_MESSAGE_ERROR and malformed.value.by_peer
                assert (await client.get("/sha256")).status == 200  # only that stream was affected
    assert handler.requests == []


async def test_datagram_routing_rules(h3_server: Callable[..., Any], client_config: rudp.Config) -> None:
    app = TestApp()
    handler = EchoHandler()
    async with (
        h3_server(app, settings=DATAGRAMS, connect_handler=handler) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config, settings=DATAGRAMS) as client,
    ):
        await client.h3.wait_peer_settings()
        server_h3 = next(iter(server.handler.connections))
        # A datagram sent right behind the CONNECT request, before any answer: buffered, delivered.
        stream = await client.connection.open_stream()
        queue = client.h3.datagrams.bind(stream.stream_id)
        await MessageWriter(client.h3, stream).send_headers(
            [
                (b":method", b"CONNECT"),
                (b":protocol", b"echo"),
                (b":scheme", b"https"),
                (b":path", b"/"),
                (b":authority", b"localhost"),
            ]
        )
        client.connection.send_datagram(encode_varint(stream.stream_id // 4) + b"early")
        reader = MessageReader(client.h3, stream, "response")
        await reader.read_headers()
        assert await queue.get() == b"Eearly"
        # A closed stream's datagrams are dropped (RFC 9297 §2.1), the connection carries on.
        stream.write_eof()
        while await reader.read_data():
            pass
        await server_h3.wait_requests_done()  # the tunnel's request is over on the server
        dropped = server_h3.datagrams.dropped
        client.connection.send_datagram(encode_varint(stream.stream_id // 4) + b"late")
        assert (await client.get("/sha256")).status == 200
        await client.connection.ping()
        assert server_h3.datagrams.dropped == dropped + 1
        # A datagram for a stream the client never opened is dropped too.
        client_dropped = client.h3.datagrams.dropped
        server_h3.datagrams.send(400, b"nobody's")
        assert (await client.get("/sha256")).status == 200
        assert client.h3.datagrams.dropped == client_dropped + 1
        # A datagram on a request without datagram semantics aborts that request only (§2.1).
        slow = await client.connection.open_stream()
        await MessageWriter(client.h3, slow).send_headers(
            [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/slow"), (b":authority", b"x")],
            end=True,
        )
        await app.slow_started.wait()
        client.connection.send_datagram(encode_varint(slow.stream_id // 4) + b"unexpected")
        with pytest.raises(H3Error) as aborted:
            await MessageReader(client.h3, slow, "response").read_headers()
        assert aborted.value.code == H3ErrorCode.H3_DATAGRAM_ERROR and aborted.value.by_peer
        assert (await client.get("/sha256")).status == 200


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"\x40", "truncated Quarter Stream ID"),
        (encode_varint(1 << 60) + b"x", "Quarter Stream ID > 2**60-1"),
    ],
)
async def test_malformed_datagram_closes_the_connection_with_h3_datagram_error(
    h3_server: Callable[..., Any], client_config: rudp.Config, payload: bytes, why: str
) -> None:
    async with (
        h3_server(TestApp(), settings=DATAGRAMS) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config, settings=DATAGRAMS) as client,
    ):
        await client.h3.wait_peer_settings()
        client.connection.send_datagram(payload)
        await client.connection.wait_closed()
        closed = client.connection.close_error
        assert closed is not None and closed.by_peer, why
        assert closed.code == H3ErrorCode.H3_DATAGRAM_ERROR, why


async def test_extended_connect_to_an_asgi_app_without_connect_handler(
    h3_server: Callable[..., Any], client_config: rudp.Config
) -> None:
    app = TestApp()
    data = pattern(700_000, seed=31)
    settings = H3Settings(enable_connect_protocol=True)
    async with (
        h3_server(app, settings=settings) as server,
        rudp.h3.connect("127.0.0.1", server.port, config=client_config) as client,
    ):
        tunnel = await client.open_tunnel("/echo", protocol="bytestream")
        assert tunnel.status == 200
        assert app.scopes[0]["method"] == "CONNECT"
        assert app.scopes[0]["extensions"]["rudp.h3.connect"] == {"protocol": "bytestream"}

        async def upload() -> None:
            for start in range(0, len(data), 50_000):
                await tunnel.write(data[start : start + 50_000])
            await tunnel.write_eof()

        writer = asyncio.create_task(upload())
        received = bytearray()
        async for chunk in tunnel:
            received += chunk
        await writer
        assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()


class BulkSinkHandler:
    """connect_handler: takes the tunnel's bytes (answering their SHA-256 at the end) and echoes each
    datagram, noting how many tunnel bytes had arrived when it came."""

    def __init__(self, started_at: int) -> None:
        self.received = 0
        self.bytes_seen_by_datagram: list[int] = []
        self.started = asyncio.Event()
        self._started_at = started_at

    async def __call__(self, request: ConnectRequest) -> None:
        tunnel = await request.accept()

        async def echo_datagrams() -> None:
            async for data in tunnel.datagrams():
                self.bytes_seen_by_datagram.append(self.received)
                await tunnel.send_datagram(b"E" + data)

        echo = asyncio.create_task(echo_datagrams())
        digest = hashlib.sha256()
        try:
            async for chunk in tunnel:
                digest.update(chunk)
                self.received += len(chunk)
                if self.received >= self._started_at:
                    self.started.set()
            await tunnel.write(digest.digest())
            await tunnel.write_eof()
        finally:
            echo.cancel()


async def _echo_round(tunnel: Any, items: list[bytes], tries: int = 20) -> list[bytes]:
    """Send ``items`` as HTTP Datagrams and return their echoes (each once, in arrival order).

    QUIC DATAGRAM frames are never retransmitted (RFC 9221 §5): one the bottleneck queue drops is gone
    (CI saw a round wait 30 s for it), so what was not echoed within half a second is sent again."""
    missing = {b"E" + item: item for item in items}
    echoes: list[bytes] = []
    for _ in range(tries):
        for item in list(missing.values()):
            await tunnel.send_datagram(item)
        with contextlib.suppress(TimeoutError):
            while missing:
                echo = await asyncio.wait_for(tunnel.receive_datagram(), 0.5)
                if missing.pop(echo, None) is not None:
                    echoes.append(echo)
        if not missing:
            return echoes
    raise AssertionError(f"{len(missing)} of {len(items)} datagrams never echoed in {tries} tries")


async def test_datagrams_interleave_with_a_bulk_tunnel(
    h3_server: Callable[..., Any], client_config: rudp.Config
) -> None:
    # Queued QUIC datagrams go ahead of stream data (within Config.datagram_share of the bytes sent),
    # so HTTP Datagrams cross while the tunnel's bulk upload still runs, not after it. The upload goes
    # through a 20 Mbit/s relay with a 100 kB queue, so the bottleneck queue is the relay's (on bare
    # loopback it is the receiver's socket buffer, megabytes, which no sender-side priority shortens).
    data = pattern(4 << 20, seed=41)
    handler = BulkSinkHandler(started_at=500_000)
    sent = payloads(seed=200)[:40]
    bottleneck = Impairments(rate_bps=20e6, queue_bytes=100_000, delay=0.005)
    async with (
        h3_server(TestApp(), settings=DATAGRAMS, connect_handler=handler) as server,
        UdpRelay(("127.0.0.1", server.port), c2s=bottleneck, s2c=Impairments(delay=0.005)) as relay,
        rudp.h3.connect(*relay.address, config=client_config, settings=DATAGRAMS) as client,
    ):
        tunnel = await client.open_tunnel("/bulk", protocol="sink")

        echoes_in = asyncio.Event()

        async def upload() -> bytes:
            for start in range(0, len(data), 64_000):
                await tunnel.write(data[start : start + 64_000])
            await echoes_in.wait()  # datagrams go only while our side of the tunnel is open
            await tunnel.write_eof()
            return b"".join([chunk async for chunk in tunnel])

        writer = asyncio.create_task(upload())
        await asyncio.wait_for(handler.started.wait(), 30)
        echoed: list[bytes] = []
        for round_start in range(0, len(sent), 20):  # two rounds of twenty, each waiting for its echoes
            echoed += await _echo_round(tunnel, sent[round_start : round_start + 20])
        echoes_in.set()
        answer = await asyncio.wait_for(writer, 60)
        assert answer == hashlib.sha256(data).digest()
        assert digest(echoed) == digest([b"E" + item for item in sent])
        assert len(handler.bytes_seen_by_datagram) >= len(sent)
        seen = sorted(set(handler.bytes_seen_by_datagram))
        print(f"\ntunnel bytes received when the datagram rounds arrived: {seen} of {len(data)}")
        assert max(seen) < len(data)  # every one arrived mid-transfer (with datagram_share=0: at its end)
