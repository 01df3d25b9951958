"""Tests of the loopback UDP impairment relay (no privileges needed)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from rudp.netem import Impairments, StepMarker
from rudp.testing.relay import UdpRelay

pytestmark = pytest.mark.timeout(30)


class Echo(asyncio.DatagramProtocol):
    """A server that echoes every datagram and remembers who sent it."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.peers: list[tuple[str, int]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.peers.append((addr[0], addr[1]))
        if self.transport is not None:
            self.transport.sendto(data, addr)


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


@asynccontextmanager
async def relayed(
    relay_kwargs: dict[str, Any],
) -> AsyncIterator[tuple[UdpRelay, Echo, asyncio.DatagramTransport, Client]]:
    """An echo server behind a relay, and a client socket toward the relay; all three closed on exit
    (the echo server's socket too: it used to be left open, a ResourceWarning late in the suite)."""
    loop = asyncio.get_running_loop()
    echo = Echo()
    server, _ = await loop.create_datagram_endpoint(lambda: echo, local_addr=("127.0.0.1", 0))
    try:
        relay = UdpRelay(server.get_extra_info("sockname"), **relay_kwargs)
        await relay.start()
        try:
            client = Client()
            transport, _ = await loop.create_datagram_endpoint(lambda: client, remote_addr=relay.address)
            try:
                yield relay, echo, transport, client
            finally:
                transport.close()
        finally:
            await relay.close()
    finally:
        server.close()


async def collect(relay: UdpRelay, client: Client, sent: int, seen: int = 0) -> list[bytes]:
    """Echoes received until everything the relay passed on in both directions has come back.

    `sent` counts all datagrams sent so far, `seen` the echoes returned by earlier calls.
    """
    got: list[bytes] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            got.append(await asyncio.wait_for(client.queue.get(), 0.1))
            continue
        except TimeoutError:
            pass
        c2s, s2c = relay.stats.c2s, relay.stats.s2c
        relay_done = c2s.received_packets >= sent and s2c.received_packets >= c2s.forwarded_packets
        if relay_done and seen + len(got) >= s2c.forwarded_packets:
            return got
    raise AssertionError(f"only {len(got)} echoes")


async def test_relay_delay() -> None:
    imp = Impairments(delay=0.02)
    async with relayed({"c2s": imp, "s2c": imp}) as (_, _, transport, client):
        rtts = []
        for _ in range(5):
            start = time.monotonic()
            transport.sendto(b"ping")
            assert await asyncio.wait_for(client.queue.get(), 2) == b"ping"
            rtts.append(time.monotonic() - start)
    assert min(rtts) >= 0.0395
    assert max(rtts) < 0.08


async def test_relay_loss_within_bounds() -> None:
    n, p = 2000, 0.2
    async with relayed({"c2s": Impairments(loss=p), "seed": 11}) as (relay, _, transport, client):
        for i in range(n):
            transport.sendto(i.to_bytes(4, "big"))
            if i % 10 == 0:
                await asyncio.sleep(0)  # let the relay read, so that no socket buffer overflows
        got = await collect(relay, client, n)
    lost = n - len(got)
    assert abs(lost - n * p) < 4 * math.sqrt(n * p * (1 - p))
    assert relay.stats.c2s.dropped == {"loss": lost}


async def test_relay_drop_list_and_runtime_change() -> None:
    async with relayed({"c2s": Impairments(drop_list=frozenset({1, 3}))}) as (relay, _, transport, client):
        for i in range(1, 6):
            transport.sendto(b"%d" % i)
        assert await collect(relay, client, 5) == [b"2", b"4", b"5"]
        relay.set_impairments("s2c", duplicate=1.0)
        transport.sendto(b"dup")
        assert await collect(relay, client, 6, seen=3) == [b"dup", b"dup"]
    assert relay.stats.c2s.dropped == {"drop_list": 2}
    assert relay.stats.s2c.duplicated == 1


async def test_relay_rebind_changes_server_view() -> None:
    async with relayed({}) as (relay, echo, transport, client):
        transport.sendto(b"a")
        assert await asyncio.wait_for(client.queue.get(), 2) == b"a"
        relay.rebind()
        transport.sendto(b"b")
        assert await asyncio.wait_for(client.queue.get(), 2) == b"b"
    assert len(echo.peers) == 2 and echo.peers[0][1] != echo.peers[1][1]


async def test_relay_rate_limit() -> None:
    impairments = Impairments(rate_bps=8e6, queue_packets=1000)
    async with relayed({"c2s": impairments}) as (relay, _, transport, client):
        start = time.monotonic()
        for _ in range(200):
            transport.sendto(bytes(1000))
        got = await collect(relay, client, 200)
        elapsed = time.monotonic() - start
    assert len(got) == 200
    assert elapsed >= 200 * 1000 * 8 / 8e6 * 0.95  # 0.2 s at 8 Mbit/s


async def test_relay_aqm_drops_because_ecn_is_invisible() -> None:
    # The relay sees UDP payloads only, so every datagram counts as Not-ECT: the marker drops instead.
    imp = Impairments(rate_bps=8e6, queue_bytes=20_000, aqm=StepMarker(threshold=0.002))
    async with relayed({"c2s": imp}) as (relay, _, transport, client):
        for _ in range(50):
            transport.sendto(bytes(1000))
        got = await collect(relay, client, 50)
    stats = relay.stats.c2s
    assert stats.ce_marked == 0 and set(stats.dropped) == {"aqm"}
    assert len(got) == 50 - stats.dropped["aqm"] <= 10
    assert stats.queue_delay_max <= 0.0031
