"""Endpoint-level behaviour on real sockets: datagrams, many clients, garbage input, failing connects,
resumption and 0-RTT, handler errors, and UDP + TCP on one port.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

import rudp
from rudp.aio.server import HANDLER_ERROR_CODE
from tests.aio.test_streams import echo_handler

WAIT = 10.0


def _unused_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _echo_roundtrip(conn: rudp.Connection, payload: bytes) -> None:
    stream = await conn.open_stream()
    stream.write(payload)
    stream.write_eof()
    await stream.drain()
    assert await asyncio.wait_for(stream.read(), WAIT) == payload


async def test_datagrams_both_ways(running_server: Any, client_config: Callable[..., rudp.Config]) -> None:
    async def handler(conn: rudp.Connection) -> None:
        while True:
            conn.send_datagram(b"echo:" + await conn.receive_datagram())

    async with (
        running_server(handler, datagrams=True) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(datagrams=True)) as conn,
    ):
        sent = {f"datagram {i}".encode() for i in range(20)}
        for payload in sorted(sent):
            conn.send_datagram(payload)
        received = set()
        while len(received) < 10:  # unreliable: loopback delivers nearly all, demand half
            received.add(await asyncio.wait_for(conn.receive_datagram(), WAIT))
        assert all(d.startswith(b"echo:") and d[5:] in sent for d in received)


async def test_datagrams_need_both_sides(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async with (
        running_server(echo_handler) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(datagrams=True)) as conn,
    ):
        with pytest.raises(rudp.DatagramError, match="not enabled"):
            conn.send_datagram(b"nope")


async def test_ping_measures_rtt(running_server: Any, client_config: Callable[..., rudp.Config]) -> None:
    async with (
        running_server(echo_handler) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config()) as conn,
    ):
        rtt = await asyncio.wait_for(conn.ping(), WAIT)
        assert 0 <= rtt < 1.0


async def test_many_clients(running_server: Any, client_config: Callable[..., rudp.Config]) -> None:
    async def client(index: int, port: int) -> None:
        async with rudp.connect("127.0.0.1", port, config=client_config()) as conn:
            await _echo_roundtrip(conn, os.urandom(10_000 + index))

    async with running_server(echo_handler) as server:
        await asyncio.wait_for(asyncio.gather(*(client(i, server.port) for i in range(25))), 30)


async def test_garbage_datagrams_are_ignored(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    rng = random.Random(1)
    async with (
        running_server(echo_handler) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config()) as conn,
    ):
        await _echo_roundtrip(conn, b"before")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
            for i in range(300):
                size = rng.choice([0, 1, 5, 20, 50, 1200, 1350, 1500])
                data = bytearray(rng.randbytes(size))
                if data and i % 3 == 0:
                    data[0] |= 0xC0  # looks like a long header (Initial, Handshake...)
                    data[1:5] = b"\x00\x00\x00\x01"
                junk.sendto(bytes(data), ("127.0.0.1", server.port))
        await _echo_roundtrip(conn, b"after" * 1000)
        async with rudp.connect("127.0.0.1", server.port, config=client_config()) as second:
            await _echo_roundtrip(second, b"new connection")


async def test_connect_without_server_fails_fast(client_config: Callable[..., rudp.Config]) -> None:
    port = _unused_udp_port()
    started = time.monotonic()
    with pytest.raises(rudp.HandshakeFailed, match=r"refused|did not complete"):
        await rudp.connect("127.0.0.1", port, config=client_config(handshake_timeout=3.0))
    assert time.monotonic() - started < 3.5


async def test_connect_to_silent_peer_times_out(client_config: Callable[..., rudp.Config]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound: no ICMP, never answers
        silent.bind(("127.0.0.1", 0))
        started = time.monotonic()
        with pytest.raises(rudp.ConnectTimeout, match="did not complete"):
            await rudp.connect(
                "127.0.0.1", silent.getsockname()[1], config=client_config(handshake_timeout=0.5)
            )
        assert time.monotonic() - started < 2.0


async def test_tcp_connect_without_server_fails_fast(client_config: Callable[..., rudp.Config]) -> None:
    with pytest.raises(OSError):
        await rudp.connect("127.0.0.1", _unused_udp_port(), config=client_config(), transport="tcp")


async def test_untrusted_certificate_fails_handshake(running_server: Any) -> None:
    async with running_server(echo_handler) as server:
        config = rudp.Config(handshake_timeout=5.0)  # the system trust store does not know our test CA
        with pytest.raises(rudp.HandshakeFailed) as info:
            await rudp.connect("127.0.0.1", server.port, config=config)
        assert info.value.code >= 0x100  # CRYPTO_ERROR range: a TLS alert


async def test_handler_error_closes_connection(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async def handler(conn: rudp.Connection) -> None:
        await conn.accept_stream()
        raise RuntimeError("handler bug")

    async with (
        running_server(handler) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config()) as conn,
    ):
        stream = await conn.open_stream()
        stream.write(b"x")
        await stream.drain()
        await asyncio.wait_for(conn.wait_closed(), WAIT)
        assert conn.close_error is not None and conn.close_error.code == HANDLER_ERROR_CODE


async def test_resumption_and_zero_rtt(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    tickets = rudp.TicketStore()
    async with running_server(echo_handler, enable_0rtt=True) as server:
        config = client_config(session_ticket_store=tickets, enable_0rtt=True)
        async with rudp.connect("127.0.0.1", server.port, config=config) as first:
            await first.wait_established()
            assert not first.session_resumed
            await _echo_roundtrip(first, b"first")
        assert len(tickets) > 0
        async with rudp.connect("127.0.0.1", server.port, config=config) as second:
            stream = await second.open_stream()  # before the handshake completes: 0-RTT
            stream.write(b"early data")
            stream.write_eof()
            assert await asyncio.wait_for(stream.read(), WAIT) == b"early data"
            await second.wait_established()
            assert second.session_resumed and second.zero_rtt_accepted


async def test_serve_both_transports_on_one_port(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async with running_server(echo_handler, transport="both") as server:
        for transport in ("quic", "tcp"):
            async with rudp.connect(
                "127.0.0.1", server.port, config=client_config(), transport=transport
            ) as conn:
                await _echo_roundtrip(conn, transport.encode())


async def test_serve_needs_certificate() -> None:
    with pytest.raises(rudp.ConfigError):
        await rudp.serve("127.0.0.1", 0, echo_handler, config=rudp.Config())


async def test_zero_rtt_request_reaches_the_handler_before_the_handshake_ends(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    established_at_request: list[bool] = []

    async def handler(conn: rudp.Connection) -> None:
        async for stream in conn:
            request = await stream.read()
            established_at_request.append(conn.is_established)
            stream.write(request)
            stream.write_eof()
            await stream.drain()

    tickets = rudp.TicketStore()
    async with running_server(handler, enable_0rtt=True) as server:
        config = client_config(session_ticket_store=tickets, enable_0rtt=True)
        async with rudp.connect("127.0.0.1", server.port, config=config) as first:
            await _echo_roundtrip(first, b"first")
        assert len(tickets) > 0
        async with rudp.connect("127.0.0.1", server.port, config=config) as second:
            stream = await second.open_stream()
            stream.write(b"early")
            stream.write_eof()
            assert await asyncio.wait_for(stream.read(), WAIT) == b"early"
            assert second.zero_rtt_accepted
    # The 0-RTT request was served while the server's handshake was still running: 0-RTT saves the
    # round trip only if the handler starts with the early data, not after the handshake.
    assert established_at_request == [True, False]
