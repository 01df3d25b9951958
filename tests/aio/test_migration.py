"""Connection migration on real sockets: a QUIC client moves to a new UDP port mid-transfer and the
download completes intact; the TCP baseline refuses (TCP cannot migrate)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import rudp

PAYLOAD = os.urandom(3_000_000)


def _payload_server(
    seen: list[tuple[str, int]], done: asyncio.Event
) -> Callable[[rudp.Connection], Awaitable[None]]:
    async def handler(conn: rudp.Connection) -> None:
        async for stream in conn:
            await stream.read()
            stream.write(PAYLOAD)
            stream.write_eof()
            await stream.drain()
            seen.append(conn.peer_address)
            done.set()

    return handler


async def test_quic_client_migrates_mid_download(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    seen: list[tuple[str, int]] = []
    done = asyncio.Event()
    async with (
        running_server(_payload_server(seen, done)) as server,
        rudp.connect("127.0.0.1", server.port, config=client_config()) as conn,
    ):
        await conn.ping()  # the handshake is confirmed once this round trip is done
        stream = await conn.open_stream()
        stream.write(b"GET /big\r\n")
        stream.write_eof()
        first = await stream.readexactly(200_000)
        changes_before = conn.stats.path_changes
        new_address = await conn.migrate()
        # The receive window (256 KB) holds the server back: most of the body crosses the new path.
        rest = await asyncio.wait_for(stream.read(), timeout=30)
        assert hashlib.sha256(first + rest).digest() == hashlib.sha256(PAYLOAD).digest()
        assert conn.stats.path_changes == changes_before + 1
        await asyncio.wait_for(done.wait(), timeout=5)
        assert seen[-1][1] == new_address[1]  # the server now talks to the new port


async def test_tcp_cannot_migrate(running_server: Any, client_config: Callable[..., rudp.Config]) -> None:
    seen: list[tuple[str, int]] = []
    async with (
        running_server(_payload_server(seen, asyncio.Event()), transport="tcp") as server,
        rudp.connect("127.0.0.1", server.port, config=client_config(), transport="tcp") as conn,
    ):
        with pytest.raises(rudp.RudpError):
            await conn.migrate()
