"""The TCP baseline over real sockets on 127.0.0.1: TLS 1.3 with ALPN, transfers, close, failures."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import rudp
from rudp.aio.connection import Connection
from rudp.aio.tcp import TcpListener, tcp_connect, tcp_listen
from rudp.config import Config
from rudp.errors import ConnectionClosed, HandshakeFailed, TransportErrorCode
from rudp.tcp.mux import LOST_CODE
from rudp.testing.certs import TestPki, make_test_pki


@dataclass
class Server:
    listener: TcpListener
    accepted: asyncio.Queue[Connection]
    config: Config


@pytest.fixture
def pki(tmp_path: Path) -> TestPki:
    return make_test_pki(tmp_path)


@pytest.fixture
async def server(pki: TestPki) -> AsyncIterator[Server]:
    config = Config(certfile=pki.cert_file, keyfile=pki.key_file, alpn=["rudp/1", "other"])
    accepted: asyncio.Queue[Connection] = asyncio.Queue()
    listener = await tcp_listen("127.0.0.1", 0, config, accepted.put_nowait)
    yield Server(listener, accepted, config)
    listener.close()
    await asyncio.wait_for(listener.wait_closed(), 5)


def client_config(pki: TestPki, **kwargs: object) -> Config:
    return Config(cafile=pki.ca_file, **kwargs)  # type: ignore[arg-type]


async def test_handshake_alpn_and_2mb_echo(server: Server, pki: TestPki) -> None:
    client = await tcp_connect("localhost", server.listener.port, client_config(pki))
    peer = await asyncio.wait_for(server.accepted.get(), 5)
    assert client.alpn_protocol == peer.alpn_protocol == "rudp/1"  # the default ALPN
    assert client.is_established and peer.is_established
    assert client.peer_address == ("127.0.0.1", server.listener.port)

    async def echo() -> None:
        stream = await peer.accept_stream()
        while chunk := await stream.read(65536):
            stream.write(chunk)
            await stream.drain()
        stream.write_eof()
        await stream.drain()

    echo_task = asyncio.create_task(echo())
    data = os.urandom(2 * 1024 * 1024)
    stream = await client.open_stream()

    async def send() -> None:
        stream.write(data)
        stream.write_eof()
        await stream.drain()

    send_task = asyncio.create_task(send())
    received = await asyncio.wait_for(stream.read(), 30)
    await asyncio.wait_for(asyncio.gather(send_task, echo_task), 5)
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()
    rtt = await asyncio.wait_for(client.ping(), 5)
    assert rtt > 0
    assert client.stats.bytes_sent > len(data)
    if hasattr(socket, "TCP_INFO"):
        assert client.stats.congestion_window > 0  # the kernel's figures
    client.close(7, "done")
    await asyncio.wait_for(client.wait_closed(), 5)
    await asyncio.wait_for(peer.wait_closed(), 5)
    assert peer.close_error is not None
    assert (peer.close_error.code, peer.close_error.reason, peer.close_error.by_peer) == (7, "done", True)


async def test_many_concurrent_streams(server: Server, pki: TestPki) -> None:
    client = await tcp_connect("127.0.0.1", server.listener.port, client_config(pki))
    peer = await asyncio.wait_for(server.accepted.get(), 5)

    async def serve() -> None:
        async for stream in peer:
            body = await stream.read()
            stream.write(hashlib.sha256(body).digest())
            stream.write_eof()

    serve_task = asyncio.create_task(serve())

    async def request(i: int) -> None:
        stream = await client.open_stream()
        body = os.urandom(1000 + 997 * i)
        stream.write(body)
        stream.write_eof()
        assert await stream.read() == hashlib.sha256(body).digest()

    await asyncio.wait_for(asyncio.gather(*(request(i) for i in range(100))), 30)
    client.close()
    await asyncio.wait_for(client.wait_closed(), 5)
    await asyncio.wait_for(serve_task, 5)


async def test_abrupt_close_is_seen_by_the_other_side(server: Server, pki: TestPki) -> None:
    client = await tcp_connect("127.0.0.1", server.listener.port, client_config(pki))
    await asyncio.wait_for(server.accepted.get(), 5)
    stream = await client.open_stream()
    stream.write(b"x")
    await stream.drain()
    (link,) = server.listener.links
    link.abort()  # what an address change does to TCP
    with pytest.raises(ConnectionClosed) as info:
        await asyncio.wait_for(stream.read(), 5)
    assert info.value.code == LOST_CODE
    assert not info.value.application
    await asyncio.wait_for(client.wait_closed(), 5)


async def test_alpn_mismatch_fails_the_handshake(server: Server, pki: TestPki) -> None:
    with pytest.raises(HandshakeFailed) as info:
        await tcp_connect("127.0.0.1", server.listener.port, client_config(pki, alpn=["h2"]))
    assert info.value.code == TransportErrorCode.CRYPTO_ERROR + 120


async def test_untrusted_certificate_fails_the_handshake(server: Server, tmp_path: Path) -> None:
    other = make_test_pki(tmp_path / "other")
    with pytest.raises(HandshakeFailed) as info:
        await tcp_connect("127.0.0.1", server.listener.port, Config(cafile=other.ca_file))
    assert info.value.code == TransportErrorCode.CRYPTO_ERROR + 48  # unknown_ca, as over QUIC
    # verification off still connects (tests only)
    conn = await tcp_connect("127.0.0.1", server.listener.port, Config(verify=False))
    conn.close()
    await asyncio.wait_for(conn.wait_closed(), 5)


async def test_connection_refused(pki: TestPki, server: Server) -> None:
    port = server.listener.port
    server.listener.close()
    await server.listener.wait_closed()
    with pytest.raises(ConnectionRefusedError):
        await tcp_connect("127.0.0.1", port, client_config(pki))


async def test_server_close_closes_connections(server: Server, pki: TestPki) -> None:
    client = await tcp_connect("127.0.0.1", server.listener.port, client_config(pki))
    await asyncio.wait_for(server.accepted.get(), 5)
    server.listener.close()
    await asyncio.wait_for(server.listener.wait_closed(), 5)
    await asyncio.wait_for(client.wait_closed(), 5)
    assert client.close_error is not None and client.close_error.by_peer


async def test_tls13_only(server: Server, pki: TestPki) -> None:
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(OSError):  # an alert (SSLError) or a reset, depending on timing
        await asyncio.open_connection(
            "127.0.0.1", server.listener.port, ssl=context, server_hostname="localhost"
        )


async def test_public_api_with_tcp_and_both(pki: TestPki) -> None:
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file)

    async def handler(conn: Connection) -> None:
        stream = await conn.accept_stream()
        stream.write(await stream.read())
        stream.write_eof()
        await stream.drain()

    async with await rudp.serve("127.0.0.1", 0, handler, config=server_config, transport="both") as srv:
        for transport in ("tcp", "quic"):
            async with rudp.connect(
                "127.0.0.1", srv.port, config=client_config(pki), transport=transport
            ) as conn:
                stream = await conn.open_stream()
                stream.write(transport.encode())
                stream.write_eof()
                assert await asyncio.wait_for(stream.read(), 10) == transport.encode()
