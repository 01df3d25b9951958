"""Server's preferred address over real sockets (RFC 9000 §9.6): the server listens on 127.0.0.1 and on a
preferred address on 127.0.0.2, a rudp or aioquic client moves there after the handshake, and the bytes
of an echo hash-compare through the move. Also disable_active_migration (RFC 9000 §9) on a real client.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from collections.abc import Callable
from typing import Any

import pytest
from aioquic.asyncio import connect as aioquic_connect
from aioquic.quic.configuration import QuicConfiguration

import rudp
from rudp.aio.endpoint import UdpEndpoint
from rudp.quic.preferred import MigrationState
from rudp.testing.certs import TestPki

PREFERRED_HOST = "127.0.0.2"
PAYLOAD = os.urandom(1_500_000)


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def echo(conn: rudp.Connection) -> None:
    async for stream in conn:
        data = await stream.read()
        stream.write(data)
        stream.write_eof()
        await stream.drain()


def preferred_socket(server: rudp.Server) -> Any:
    (endpoint,) = server.listeners
    assert isinstance(endpoint, UdpEndpoint)
    (io,) = endpoint._extra.sockets.values()
    return io


async def round_trip(conn: rudp.Connection, payload: bytes) -> bytes:
    stream = await conn.open_stream()
    stream.write(payload)
    stream.write_eof()
    return await asyncio.wait_for(stream.read(), timeout=20)


async def test_rudp_client_moves_to_the_preferred_address(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    preferred = (PREFERRED_HOST, free_port(PREFERRED_HOST))
    async with running_server(echo, preferred_address=[f"{preferred[0]}:{preferred[1]}"]) as server:
        config = client_config(server_name="localhost")
        async with rudp.connect("127.0.0.1", server.port, config=config) as conn:
            echoed = await round_trip(conn, PAYLOAD)
            assert hashlib.sha256(echoed).digest() == hashlib.sha256(PAYLOAD).digest()
            core = conn._driver.core
            assert core.migration.state is MigrationState.MIGRATED  # type: ignore[attr-defined]
            assert core.peer_address == preferred  # type: ignore[attr-defined]
            io = preferred_socket(server)
            before = (io.stats.datagrams_received, io.stats.datagrams_sent)
            echoed = await round_trip(conn, PAYLOAD)
            assert hashlib.sha256(echoed).digest() == hashlib.sha256(PAYLOAD).digest()
            # After the move the whole second echo went through the preferred address, both ways: the
            # payload alone is at least this many datagrams of at most max_pmtu (16 KiB) bytes each.
            least = len(PAYLOAD) // 16384
            assert io.stats.datagrams_received - before[0] >= least
            assert io.stats.datagrams_sent - before[1] >= least
            new_local = conn._driver.link.local_address  # type: ignore[attr-defined]
            (server_conn,) = [c for listener in server.listeners for c in listener.connections]
            # The client probed and moved from a new socket (a new path of its own, RFC 9000 §9.5);
            # the server followed it there.
            assert server_conn.peer_address == new_local
            assert server_conn.stats.path_changes == 1


async def test_rudp_client_declines_the_preferred_address(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    preferred = (PREFERRED_HOST, free_port(PREFERRED_HOST))
    async with running_server(echo, preferred_address=[f"{preferred[0]}:{preferred[1]}"]) as server:
        config = client_config(server_name="localhost", use_preferred_address=False)
        async with rudp.connect("127.0.0.1", server.port, config=config) as conn:
            echoed = await round_trip(conn, PAYLOAD)
            assert hashlib.sha256(echoed).digest() == hashlib.sha256(PAYLOAD).digest()
            assert conn.peer_address == ("127.0.0.1", server.port)
            assert preferred_socket(server).stats.datagrams_received == 0


async def test_unreachable_preferred_address_keeps_the_original_one(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    preferred = (PREFERRED_HOST, free_port(PREFERRED_HOST))
    async with running_server(echo, preferred_address=[f"{preferred[0]}:{preferred[1]}"]) as server:
        preferred_socket(server).close()  # the preferred address stops answering
        config = client_config(server_name="localhost")
        async with rudp.connect("127.0.0.1", server.port, config=config) as conn:
            core = conn._driver.core
            while core.migration.state is not MigrationState.FAILED:  # type: ignore[attr-defined]
                echoed = await round_trip(conn, PAYLOAD[:100_000])  # the connection works meanwhile
                assert echoed == PAYLOAD[:100_000]
            assert conn.peer_address == ("127.0.0.1", server.port)
            echoed = await round_trip(conn, PAYLOAD)
            assert hashlib.sha256(echoed).digest() == hashlib.sha256(PAYLOAD).digest()


async def test_migrate_refused_when_the_server_disables_active_migration(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    async with running_server(echo, disable_active_migration=True) as server:
        config = client_config(server_name="localhost")
        async with rudp.connect("127.0.0.1", server.port, config=config) as conn:
            assert await round_trip(conn, b"hello") == b"hello"
            local = conn._driver.link.local_address  # type: ignore[attr-defined]
            with pytest.raises(rudp.MigrationDisabled):
                await conn.migrate()
            assert conn._driver.link.local_address == local  # type: ignore[attr-defined]
            assert await round_trip(conn, b"still here") == b"still here"


async def test_aioquic_client_moves_to_a_rudp_servers_preferred_address(
    running_server: Any, pki: TestPki
) -> None:
    preferred = (PREFERRED_HOST, free_port(PREFERRED_HOST))
    async with running_server(
        echo, alpn=["hq-interop"], preferred_address=[f"{preferred[0]}:{preferred[1]}"]
    ) as server:
        configuration = QuicConfiguration(
            is_client=True, alpn_protocols=["hq-interop"], server_name="localhost"
        )
        configuration.load_verify_locations(str(pki.ca_file))
        io = preferred_socket(server)
        async with aioquic_connect("127.0.0.1", server.port, configuration=configuration) as client:
            for _ in range(2):
                reader, writer = await client.create_stream()
                writer.write(PAYLOAD)
                writer.write_eof()
                echoed = await asyncio.wait_for(reader.read(), timeout=20)
                assert hashlib.sha256(echoed).digest() == hashlib.sha256(PAYLOAD).digest()
            # aioquic moved (RFC 9000 §9.6.1) and the server answered from the preferred address.
            assert io.stats.datagrams_received > 100 and io.stats.datagrams_sent > 100

