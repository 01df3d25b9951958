"""Connection.aclose(): close once the peer has everything written, with the caller's code."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from typing import Any

import rudp

WAIT = 10.0


async def test_aclose_delivers_what_was_written_then_closes_with_the_code(
    running_server: Any, client_config: Callable[..., rudp.Config], transport: str
) -> None:
    payload = os.urandom(2_000_000)

    async def handler(conn: rudp.Connection) -> None:
        stream = await conn.accept_stream()
        await stream.read()
        stream.write(payload)  # no drain(): aclose() must wait for delivery itself
        stream.write_eof()
        await conn.aclose(0x42, "done")

    async with running_server(handler, transport=transport) as server:
        conn = await rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport)
        stream = await conn.open_stream()
        stream.write(b"go")
        stream.write_eof()
        received = await asyncio.wait_for(stream.read(), WAIT)
        assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
        await asyncio.wait_for(conn.wait_closed(), WAIT)
        error = conn.close_error
        assert error is not None and error.by_peer and error.code == 0x42 and error.reason == "done"


async def test_concurrent_acloses_all_return_once_delivered(
    running_server: Any, client_config: Callable[..., rudp.Config], transport: str
) -> None:
    payload = os.urandom(500_000)
    outcome: list[str] = []
    finished = asyncio.Event()

    async def handler(conn: rudp.Connection) -> None:
        stream = await conn.accept_stream()
        await stream.read()
        stream.write(payload)
        stream.write_eof()
        # Two tasks closing the same connection: neither may wait out the (long) linger.
        closes = [conn.aclose(0x42, "done", linger=120.0) for _ in range(2)]
        try:
            await asyncio.wait_for(asyncio.gather(*closes), WAIT)
        except TimeoutError:
            outcome.append("timeout")
        else:
            outcome.append("closed")
        finished.set()

    async with running_server(handler, transport=transport) as server:
        conn = await rudp.connect("127.0.0.1", server.port, config=client_config(), transport=transport)
        stream = await conn.open_stream()
        stream.write(b"go")
        stream.write_eof()
        received = await asyncio.wait_for(stream.read(), WAIT)
        assert len(received) == len(payload)
        await asyncio.wait_for(conn.wait_closed(), WAIT)
        await asyncio.wait_for(finished.wait(), 2 * WAIT)
        assert outcome == ["closed"]
