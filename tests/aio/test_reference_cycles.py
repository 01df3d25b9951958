"""Over real sockets too, a connection is freed by reference counting (see
tests/quic/test_reference_cycles.py): the asyncio Connection, its driver, the client's UDP endpoint
with its timer and extra sockets (QUIC) or the TCP link (the TCP baseline), and the core under them
leave no cycle once closed and dropped."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

import rudp
from tests.support.cycles import collector_off, rudp_objects_in_cycles


async def test_closed_connections_leave_no_cycle(
    running_server: Callable[..., Any], client_config: Callable[..., rudp.Config], transport: str
) -> None:
    async def handler(conn: rudp.Connection) -> None:
        stream = await conn.accept_stream()
        data = await stream.read()
        stream.write(data)
        stream.write_eof()
        await stream.drain()

    async with running_server(handler, transport=transport) as server:

        async def one() -> None:
            payload = os.urandom(50_000)
            async with rudp.connect(
                "127.0.0.1",
                server.port,
                config=client_config(server_name="localhost"),
                transport=transport,  # type: ignore[arg-type]
            ) as conn:
                await conn.ping()
                stream = await conn.open_stream()
                stream.write(payload)
                stream.write_eof()
                echoed = await stream.read()
                assert hashlib.sha256(echoed).digest() == hashlib.sha256(payload).digest()

        await one()  # first use: module-level caches fill outside the measured part
        with collector_off() as garbage:
            for _ in range(3):
                await one()
            server.close()  # every server-side connection goes too (draining ones included)
            await server.wait_closed()
            assert all(not getattr(listener, "connections", ()) for listener in server.listeners)
        assert rudp_objects_in_cycles(garbage) == []
