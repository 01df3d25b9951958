"""A loopback asyncio UDP relay that impairs datagrams, for quick QUIC tests without namespaces.

Clients send to :attr:`UdpRelay.address`; the relay forwards each client's datagrams to the upstream
server from a socket of its own per client (like a NAT), and the server's replies back. Each direction
applies an :class:`rudp.netem.Impairments` through the same engine as the namespace emulator
(:class:`rudp.netem.channel.Channel`): delay, jitter, loss, bursty loss, drop list, blackholes,
duplication, reordering, corruption (bytes flipped anywhere in the datagram) and a rate-limited
drop-tail queue. :meth:`UdpRelay.rebind` gives every client a new upstream port, so the server sees a
NAT rebinding.

ECN is not available here: the relay handles UDP payloads, not IP packets, so it can neither see the
ECN field of what it receives nor set CE on what it sends. Every datagram counts as Not-ECT, so an
`aqm` marker (step, RED, CoDel) drops (cause `aqm`) where it would mark, and `ce_marked` stays 0. Use
:mod:`rudp.netem` to test ECN.

Timing precision is the event loop's (about 1 ms); use :mod:`rudp.netem` when it matters.
This module owns no sockets beyond its own and never leaves loopback unless told an upstream elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import socket
from typing import Any, Literal, TypeAlias

from rudp.netem.channel import Channel
from rudp.netem.impairments import DIRECTIONS, Direction, Impairments, coerce_fields
from rudp.netem.stats import DirectionStats, LinkStats

Address: TypeAlias = tuple[str, int]
_SLACK = 0.0005
_BUFFER_BYTES = 4 * 1024 * 1024


def _enlarge_buffers(transport: asyncio.BaseTransport) -> None:
    """Loopback bursts overflow default socket buffers; 4 MiB removes those drops."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, _BUFFER_BYTES)


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpRelay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.relay._from_client(data, (str(addr[0]), int(addr[1])))


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, relay: UdpRelay, client: Address) -> None:
        self.relay = relay
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.relay._from_server(data, self)


class UdpRelay:
    """An impairing UDP relay in front of `upstream`. Use `async with UdpRelay(...) as relay:`.

    `relay.address` is where clients send. Impairments can be changed at any time with
    :meth:`set_impairments`; :attr:`stats` counts per direction like the namespace emulator.
    """

    def __init__(
        self,
        upstream: Address,
        *,
        c2s: Impairments | None = None,
        s2c: Impairments | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
    ) -> None:
        self.upstream = upstream
        self._host, self._port = host, port
        self._seed = seed
        self.stats = LinkStats(DirectionStats(), DirectionStats())
        self._pending: dict[Direction, Impairments] = {
            "c2s": c2s or Impairments(),
            "s2c": s2c or Impairments(),
        }
        self._channels: dict[Direction, Channel] = {}
        self._rng = random.Random(seed + 2)
        self._listener: asyncio.DatagramTransport | None = None
        self._upstreams: dict[Address, _Upstream] = {}
        self._connecting: dict[Address, list[bytes]] = {}
        self._heap: list[tuple[float, int, Direction, bytes, object]] = []
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.address: Address = (host, port)

    async def start(self) -> Address:
        """Bind the listening socket; returns the address clients should send to."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        now = loop.time()
        for i, d in enumerate(DIRECTIONS):
            self._channels[d] = Channel(self._pending[d], self.stats[d], random.Random(self._seed + i), now)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Listener(self), local_addr=(self._host, self._port)
        )
        self._listener = transport
        _enlarge_buffers(transport)
        sockname = transport.get_extra_info("sockname")
        self.address = (str(sockname[0]), int(sockname[1]))
        return self.address

    async def close(self) -> None:
        """Close every socket and drop what is still in flight."""
        if self._timer is not None:
            self._timer.cancel()
        self._heap.clear()
        for up in self._upstreams.values():
            if up.transport is not None:
                up.transport.close()
        self._upstreams.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    async def __aenter__(self) -> UdpRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def impairments(self, direction: Direction) -> Impairments:
        """The settings in force for `direction`."""
        channel = self._channels.get(direction)
        return channel.impairments if channel is not None else self._pending[direction]

    def set_impairments(
        self,
        direction: Direction | Literal["both"],
        impairments: Impairments | None = None,
        **changes: object,
    ) -> None:
        """Replace (`impairments`) or update (`changes`) a direction's settings, as
        :meth:`rudp.netem.Network.set_impairments` does."""
        for d in DIRECTIONS if direction == "both" else (direction,):
            base = impairments if impairments is not None else self.impairments(d)
            new = base.replace(**coerce_fields(changes)) if changes else base
            restart = impairments is not None or "drop_list" in changes or "blackhole_periods" in changes
            self._pending[d] = new
            if d in self._channels and self._loop is not None:
                self._channels[d].configure(new, self._loop.time(), restart)

    def rebind(self) -> None:
        """Give every client a fresh upstream socket (new source port); replies to old ones are lost."""
        for up in self._upstreams.values():
            if up.transport is not None:
                up.transport.close()
        self._upstreams.clear()

    @property
    def upstream_ports(self) -> dict[Address, int]:
        """The relay-side source port currently used for each client."""
        out = {}
        for client, up in self._upstreams.items():
            if up.transport is not None:
                out[client] = int(up.transport.get_extra_info("sockname")[1])
        return out

    # -- packet path ---------------------------------------------------------------------------------

    def _from_client(self, data: bytes, client: Address) -> None:
        self._admit("c2s", data, client)

    def _from_server(self, data: bytes, up: _Upstream) -> None:
        if self._upstreams.get(up.client) is not up:
            return
        self._admit("s2c", data, up.client)

    def _admit(self, direction: Direction, data: bytes, client: Address) -> None:
        loop = self._loop
        if loop is None:
            return
        now = loop.time()
        channel = self._channels[direction]
        verdict = channel.process(len(data), now)
        if verdict.cause is not None:
            return
        if verdict.corrupt and data:
            buf = bytearray(data)
            for _ in range(channel.impairments.corrupt_bytes):
                buf[self._rng.randrange(len(buf))] ^= self._rng.randrange(1, 256)
            data = bytes(buf)
        for at in verdict.deliver_at:
            if at <= now and not self._heap:
                self._send(direction, data, client)
            else:
                self._seq += 1
                heapq.heappush(self._heap, (at, self._seq, direction, data, client))
        self._arm()

    def _arm(self) -> None:
        if not self._heap or self._loop is None:
            return
        at = self._heap[0][0]
        if self._timer is not None:
            if self._timer.when() <= at:
                return
            self._timer.cancel()
        self._timer = self._loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._loop is None:
            return
        limit = self._loop.time() + _SLACK
        heap = self._heap
        while heap and heap[0][0] <= limit:
            _, _, direction, data, client = heapq.heappop(heap)
            self._send(direction, data, client)  # type: ignore[arg-type]
        self._arm()

    def _send(self, direction: Direction, data: bytes, client: Address) -> None:
        stats = self.stats[direction]
        if direction == "s2c":
            if self._listener is None:
                return
            self._listener.sendto(data, client)
        else:
            up = self._upstreams.get(client)
            if up is None or up.transport is None:
                self._open_upstream(client, data)
                return
            up.transport.sendto(data)
        stats.forwarded_packets += 1
        stats.forwarded_bytes += len(data)

    def _open_upstream(self, client: Address, first: bytes) -> None:
        """Create the client's upstream socket, then send what queued up meanwhile."""
        waiting = self._connecting.get(client)
        if waiting is not None:
            waiting.append(first)
            return
        self._connecting[client] = [first]
        if self._loop is not None:
            self._loop.create_task(self._connect(client))

    async def _connect(self, client: Address) -> None:
        loop = asyncio.get_running_loop()
        proto = _Upstream(self, client)
        try:
            await loop.create_datagram_endpoint(lambda: proto, remote_addr=self.upstream)
        finally:
            waiting = self._connecting.pop(client, [])
        self._upstreams[client] = proto
        if proto.transport is not None:
            _enlarge_buffers(proto.transport)
        stats = self.stats["c2s"]
        for data in waiting:
            if proto.transport is not None:
                proto.transport.sendto(data)
                stats.forwarded_packets += 1
                stats.forwarded_bytes += len(data)
