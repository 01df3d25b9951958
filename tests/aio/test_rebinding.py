"""NAT rebinding over real sockets (RFC 9000 §9.3): a download through a UDP relay that gives the client
a new source port again and again. Every rebinding drops the replies still addressed to the old port,
the server must validate the new one within 3x what it received from it, and PMTU discovery is on
(loopback carries large datagrams). The download completes intact and never stands still for long.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from typing import Any

import rudp
from rudp.testing.relay import UdpRelay

PAYLOAD = os.urandom(4_000_000)
REBINDINGS = 20
MAX_STALL = 1.0
"""Seconds without a new byte that count as a stall. Loopback's RTT and PTO are milliseconds; the stall
the issue described waited for the 2 s path-validation timeout, or forever."""


def _payload_server(
    path_changes: list[int], done: asyncio.Event
) -> Callable[[rudp.Connection], Awaitable[None]]:
    async def handler(conn: rudp.Connection) -> None:
        async for stream in conn:
            await stream.read()
            stream.write(PAYLOAD)
            stream.write_eof()
            await stream.drain()
            path_changes.append(conn.stats.path_changes)
            done.set()

    return handler


async def test_repeated_nat_rebinding_during_a_download(
    running_server: Any, client_config: Callable[..., rudp.Config]
) -> None:
    path_changes: list[int] = []
    done = asyncio.Event()
    async with running_server(_payload_server(path_changes, done), max_pmtu=16384) as server:
        relay = UdpRelay(("127.0.0.1", server.port))
        host, port = await relay.start()
        try:
            config = client_config(max_pmtu=16384, server_name="localhost")
            async with rudp.connect(host, port, config=config) as conn:
                stream = await conn.open_stream()
                stream.write(b"GET /big\r\n")
                stream.write_eof()
                loop = asyncio.get_running_loop()
                received = bytearray()
                last = loop.time()
                longest = 0.0
                ports: set[int] = set()
                while len(received) < len(PAYLOAD):
                    chunk = await asyncio.wait_for(stream.read(65536), timeout=10)
                    if not chunk:
                        break
                    now = loop.time()
                    longest = max(longest, now - last)
                    last = now
                    step = len(received) * REBINDINGS // len(PAYLOAD)
                    received += chunk
                    if step < len(received) * REBINDINGS // len(PAYLOAD) and step < REBINDINGS - 1:
                        # Every 1/20th of the body: the client's next datagram leaves from a new port.
                        ports.update(relay.upstream_ports.values())
                        relay.rebind()
                assert hashlib.sha256(received).digest() == hashlib.sha256(PAYLOAD).digest()
                assert longest < MAX_STALL, f"no data for {longest:.3f} s"
                assert len(ports) >= REBINDINGS - 2
                await asyncio.wait_for(done.wait(), timeout=5)  # what the server saw
        finally:
            await relay.close()
    assert path_changes and path_changes[-1] >= REBINDINGS // 2
