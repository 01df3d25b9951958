"""A loopback UDP forwarder that reads QUIC's invariant headers on the way through.

Owns :class:`WireTap`: clients send to :attr:`WireTap.port`; each client address gets its own upstream
socket towards the server (like a NAT), and replies travel back. Every datagram is split into its
coalesced packets and the long headers are counted by (direction, version, packet type), which lets a
case check what only the wire shows: a Retry really sent, 0-RTT packets really used, the version really
spoken. Nothing is decrypted, delayed or dropped. It owns no sockets beyond its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from typing import Final, Literal

Direction = Literal["to_server", "to_client"]
Address = tuple[str, int]

VERSION_1: Final = 0x00000001
VERSION_2: Final = 0x6B3343CF

# RFC 9000 §17.2 and RFC 9369 §3.2: the two type bits of a long header mean different things per version.
_LONG_TYPES: Final[dict[int, tuple[str, str, str, str]]] = {
    VERSION_1: ("initial", "0rtt", "handshake", "retry"),
    VERSION_2: ("retry", "initial", "0rtt", "handshake"),
}


_BUFFER_BYTES: Final = 4 << 20


def _enlarge_buffers(transport: asyncio.BaseTransport) -> None:
    """Loopback bursts of a fast sender overflow the default socket buffers; the tap must not drop."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, _BUFFER_BYTES)


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    """(value, next offset) of the QUIC variable-length integer at ``offset`` (RFC 9000 §16)."""
    first = data[offset]
    length = 1 << (first >> 6)
    if offset + length > len(data):
        raise ValueError("truncated varint")
    value = first & 0x3F
    for byte in data[offset + 1 : offset + length]:
        value = (value << 8) | byte
    return value, offset + length


def classify(datagram: bytes) -> list[tuple[int | None, str]]:
    """The (version, packet type) of each packet coalesced in ``datagram``; version None for 1-RTT.

    Unknown versions are reported with type ``"unknown"`` and end the walk (their layout is unknown).
    """
    packets: list[tuple[int | None, str]] = []
    offset = 0
    while offset < len(datagram):
        first = datagram[offset]
        if not first & 0x80:
            packets.append((None, "1rtt"))  # a short header runs to the end of the datagram
            break
        if offset + 6 > len(datagram):
            break
        version = int.from_bytes(datagram[offset + 1 : offset + 5], "big")
        if version == 0:
            packets.append((0, "version_negotiation"))
            break
        names = _LONG_TYPES.get(version)
        if names is None:
            packets.append((version, "unknown"))
            break
        kind = names[(first >> 4) & 0x03]
        packets.append((version, kind))
        if kind == "retry":
            break
        try:
            cursor = offset + 5
            cursor += 1 + datagram[cursor]  # destination connection ID
            cursor += 1 + datagram[cursor]  # source connection ID
            if kind == "initial":
                token_length, cursor = _varint(datagram, cursor)
                cursor += token_length
            payload_length, cursor = _varint(datagram, cursor)
        except (IndexError, ValueError):
            break
        offset = cursor + payload_length
    return packets


class _ClientSide(asyncio.DatagramProtocol):
    def __init__(self, tap: WireTap) -> None:
        self.tap = tap

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.tap._from_client(data, (str(addr[0]), int(str(addr[1]))))


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, tap: WireTap, client: Address) -> None:
        self.tap = tap
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.backlog: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        _enlarge_buffers(transport)
        for data in self.backlog:
            transport.sendto(data)  # type: ignore[attr-defined]
        self.backlog.clear()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.tap._from_server(data, self.client)


class WireTap:
    """Forward datagrams between clients and ``server`` and count the packets seen in each direction.

    Use ``async with WireTap(server) as tap:`` and point the client at ``("127.0.0.1", tap.port)``.
    """

    def __init__(self, server: Address, host: str = "127.0.0.1") -> None:
        self.server = server
        self.host = host
        self.packets: Counter[tuple[Direction, int | None, str]] = Counter()
        """Packets seen, by (direction, version or None for short headers, type)."""
        self.datagrams: Counter[Direction] = Counter()
        """Datagrams forwarded per direction."""
        self._listener: asyncio.DatagramTransport | None = None
        self._upstreams: dict[Address, _Upstream] = {}
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port clients send to."""
        if self._listener is None:
            raise RuntimeError("tap is not started")
        return int(self._listener.get_extra_info("sockname")[1])

    async def start(self) -> WireTap:
        """Bind the client-facing socket on an ephemeral port."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _ClientSide(self), local_addr=(self.host, 0)
        )
        _enlarge_buffers(transport)
        self._listener = transport
        return self

    async def close(self) -> None:
        """Close every socket of the tap."""
        for task in list(self._pending):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listener is not None:
            self._listener.close()
        for upstream in self._upstreams.values():
            if upstream.transport is not None:
                upstream.transport.close()
        self._upstreams.clear()

    async def __aenter__(self) -> WireTap:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def count(self, direction: Direction, kind: str, version: int | None = None) -> int:
        """Packets of type ``kind`` seen in ``direction`` (of ``version`` only, when given)."""
        return sum(
            n
            for (d, v, k), n in self.packets.items()
            if d == direction and k == kind and (version is None or v == version)
        )

    def long_header_versions(self, direction: Direction) -> set[int]:
        """The versions of every long-header packet seen in ``direction`` (VN counts as 0)."""
        return {v for (d, v, _), _n in self.packets.items() if d == direction and v is not None}

    def summary(self) -> dict[str, dict[str, int]]:
        """The counters as JSON-friendly nested dicts: direction -> "version/type" -> packets."""
        result: dict[str, dict[str, int]] = {"to_server": {}, "to_client": {}}
        for (direction, version, kind), n in sorted(self.packets.items(), key=str):
            label = kind if version is None else f"{version:#010x}/{kind}"
            result[direction][label] = n
        for direction, n in self.datagrams.items():
            result[direction]["datagrams"] = n
        return result

    def _observe(self, direction: Direction, data: bytes) -> None:
        self.datagrams[direction] += 1
        for version, kind in classify(data):
            self.packets[(direction, version, kind)] += 1

    def _from_client(self, data: bytes, client: Address) -> None:
        self._observe("to_server", data)
        upstream = self._upstreams.get(client)
        if upstream is None:
            upstream = self._upstreams[client] = _Upstream(self, client)
            task = asyncio.get_running_loop().create_task(self._open(upstream))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        if upstream.transport is None:
            upstream.backlog.append(data)
        else:
            upstream.transport.sendto(data)

    def _from_server(self, data: bytes, client: Address) -> None:
        self._observe("to_client", data)
        if self._listener is not None:
            self._listener.sendto(data, client)

    async def _open(self, upstream: _Upstream) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: upstream, remote_addr=self.server)


__all__ = ["VERSION_1", "VERSION_2", "Direction", "WireTap", "classify"]
