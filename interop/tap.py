"""A loopback UDP forwarder that reads QUIC's invariant headers on the way through.

Owns :class:`WireTap`: clients send to :attr:`WireTap.port`; each client address gets its own upstream
socket towards the server (like a NAT), and replies travel back. Every datagram is split into its
coalesced packets and the long headers are counted by (direction, version, packet type), which lets a
case check what only the wire shows: a Retry really sent, 0-RTT packets really used, the version really
spoken. Each upstream socket is a :class:`TapPath` with its own counters and the destination connection IDs
of the client's short-header packets, so a case can see a client move (a new client address, hence a new
path) and its connection ID change. With ``rebind_after`` the tap imitates a NAT rebinding: once that many
bytes went to the client, the client's packets leave from a new upstream socket (a new source port for
the server) and whatever still reaches the old one is dropped, as a NAT drops traffic to a mapping it
forgot. With an ``impairment`` (:mod:`interop.impair`) the tap is also a lossy link: it drops, corrupts
or blackholes datagrams as the runner's network simulator would, with seeded randomness, and counts each
fate; :attr:`WireTap.history` keeps the order of the first datagrams for checks such as the
amplification limit. Otherwise nothing is decrypted, delayed or dropped. It owns no sockets beyond its
own.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from typing import Final, Literal

from interop.ecn_link import CODEPOINT_NAMES, EcnLink, open_marking
from interop.impair import Fate, Impairer, Impairment

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
    return [(version, kind) for _offset, version, kind in _walk(datagram)]


def short_header_dcid(datagram: bytes, cid_length: int) -> bytes | None:
    """The destination connection ID of the short-header packet in ``datagram``, if it holds one.

    A short header does not encode the length of its connection ID (RFC 9000 §17.3): the receiver knows
    it because it chose its IDs, so the caller passes the server's ``cid_length``.
    """
    for offset, version, _kind in _walk(datagram):
        if version is None and offset + 1 + cid_length <= len(datagram):
            return bytes(datagram[offset + 1 : offset + 1 + cid_length])
    return None


# -- impairment support (loss, corruption, blackhole, amplification cases) --------------------------------

HISTORY_LIMIT: Final = 5000
"""Datagrams kept in :attr:`WireTap.history` (the handshake is what the checks read from it)."""


def initial_scids(datagram: bytes) -> list[bytes]:
    """The source connection IDs of the Initial packets coalesced in ``datagram``."""
    scids = []
    for offset, _version, kind in _walk(datagram):
        if kind == "initial":
            cursor = offset + 5
            cursor += 1 + datagram[cursor]
            if cursor < len(datagram) and cursor + 1 + datagram[cursor] <= len(datagram):
                scids.append(bytes(datagram[cursor + 1 : cursor + 1 + datagram[cursor]]))
    return scids


# -- end of impairment support ---------------------------------------------------------------------------


def _walk(datagram: bytes) -> list[tuple[int, int | None, str]]:
    """(offset, version, type) of each packet coalesced in ``datagram``; see :func:`classify`."""
    packets: list[tuple[int, int | None, str]] = []
    offset = 0
    while offset < len(datagram):
        first = datagram[offset]
        if not first & 0x80:
            packets.append((offset, None, "1rtt"))  # a short header runs to the end of the datagram
            break
        if offset + 6 > len(datagram):
            break
        version = int.from_bytes(datagram[offset + 1 : offset + 5], "big")
        if version == 0:
            packets.append((offset, 0, "version_negotiation"))
            break
        names = _LONG_TYPES.get(version)
        if names is None:
            packets.append((offset, version, "unknown"))
            break
        kind = names[(first >> 4) & 0x03]
        packets.append((offset, version, kind))
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
    def __init__(self, tap: WireTap, preferred: bool = False) -> None:
        self.tap = tap
        self.preferred = preferred  # the listener at the server's preferred address (connectionmigration)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.tap._from_client(data, (str(addr[0]), int(str(addr[1]))), self.preferred)


class TapPath(asyncio.DatagramProtocol):
    """One upstream socket of the tap: the path between one client address and the server.

    The server sees the client at :attr:`port`. A new client address (a migrating client) gets a new
    path; so does the client whose mapping :meth:`WireTap.rebind` renews.
    """

    def __init__(self, tap: WireTap, client: Address, index: int) -> None:
        self.tap = tap
        self.client = client
        """The client's address as the tap's client-facing socket sees it."""
        self.index = index
        """Position in :attr:`WireTap.paths` (order of creation)."""
        self.transport: asyncio.DatagramTransport | None = None
        self.backlog: list[bytes] = []
        self.datagrams: Counter[Direction] = Counter()
        """Datagrams forwarded over this path, per direction."""
        self.bytes: Counter[Direction] = Counter()
        """UDP payload bytes forwarded over this path, per direction."""
        self.dcids: dict[bytes, int] = {}
        """Destination connection IDs of the client's short-header packets -> packets (first-seen order)."""
        self.retired = False
        """Replaced by a rebinding: what the server still sends here is dropped."""
        self.dropped = 0
        """Server datagrams dropped because they arrived after the path was retired."""
        self._port = 0
        # -- rebind-addr and connectionmigration (issue 12) --
        self.host: str | None = None
        """The local IP address of the upstream socket (None: the system's choice, 127.0.0.1): a
        rebind-addr rebinding opens the new path from another address of 127.0.0.0/8."""
        self.preferred = False
        """The client reached the tap's listener at the server's preferred address (RFC 9000 §9.6)."""

    @property
    def port(self) -> int:
        """The local port of this path's socket: the client's port as the server sees it (0 until open)."""
        return self._port

    def summary(self) -> dict[str, int]:
        """This path's counters as a flat JSON-friendly dict."""
        result = {"port": self.port, "client_port": self.client[1], "dropped": self.dropped}
        result["preferred"] = int(self.preferred)
        for direction in ("to_server", "to_client"):
            result[f"{direction}_datagrams"] = self.datagrams[direction]
            result[f"{direction}_bytes"] = self.bytes[direction]
        result["dcids"] = len(self.dcids)
        return result

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._port = int(transport.get_extra_info("sockname")[1])
        _enlarge_buffers(transport)
        for data in self.backlog:
            transport.sendto(data)  # type: ignore[attr-defined]
        self.backlog.clear()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if self.retired:
            self.dropped += 1
            return
        self.datagrams["to_client"] += 1
        self.bytes["to_client"] += len(data)
        self.tap._from_server(data, self.client, self.preferred)


class WireTap:
    """Forward datagrams between clients and ``server`` and count the packets seen in each direction.

    Use ``async with WireTap(server) as tap:`` and point the client at ``("127.0.0.1", tap.port)``.
    ``cid_length`` is the length of the server's connection IDs (what short headers carry, unframed).
    ``rebind_after``: once this many bytes were forwarded to a client, :meth:`rebind` its mapping.
    ``rebind_host``: the rebinding also changes the client's IP address (the runner's rebind-addr): the
    new upstream socket is bound there (another address of 127.0.0.0/8).
    ``preferred``: also listen at this address, the server's preferred address (RFC 9000 §9.6; the
    server advertises it without binding it): what a client sends there reaches the server through paths
    of their own (:attr:`TapPath.preferred`), and the replies leave from there.
    """

    def __init__(
        self,
        server: Address,
        host: str = "127.0.0.1",
        *,
        cid_length: int = 8,
        rebind_after: int | None = None,
        impairment: Impairment | None = None,
        seed: int = 0,
        ecn: bool = False,
        rebind_host: str | None = None,
        preferred: Address | None = None,
    ) -> None:
        self.server = server
        # -- rebind-addr and connectionmigration (issue 12) --
        self.rebind_host = rebind_host
        self.preferred = preferred
        self._preferred_listener: asyncio.DatagramTransport | None = None
        self._preferred_upstreams: dict[Address, TapPath] = {}
        self.host = host
        self.cid_length = cid_length
        self.rebind_after = rebind_after
        self.paths: list[TapPath] = []
        """Every upstream socket opened, in order."""
        self.rebinds = 0
        """Rebindings done."""
        self.packets: Counter[tuple[Direction, int | None, str]] = Counter()
        """Packets seen, by (direction, version or None for short headers, type)."""
        self.datagrams: Counter[Direction] = Counter()
        """Datagrams forwarded per direction."""
        self._listener: asyncio.DatagramTransport | None = None
        self._upstreams: dict[Address, TapPath] = {}
        self._to_client_bytes: Counter[Address] = Counter()
        self._pending: set[asyncio.Task[None]] = set()
        # impairments: what the link does (None: nothing), every datagram's fate, the server's handshakes
        self.impairer = None if impairment is None else Impairer(impairment, seed)
        self.history: list[tuple[Direction, int, tuple[str, ...], Fate]] = []
        """(direction, UDP payload bytes, packet types, fate) of the first :data:`HISTORY_LIMIT`
        datagrams, in the order the tap saw them; the counters above count datagrams as sent."""
        self.server_initial_scids: set[bytes] = set()
        """Source connection IDs of the server's Initial packets: one per handshake, as the runner counts."""
        # ECN: with ecn=True the tap's sockets read each datagram's codepoint and forward it (ecn_link.py)
        self.ecn_link = EcnLink() if ecn else None
        self.ecn_marks: Counter[tuple[Direction, int]] = Counter()
        """Datagrams seen per (direction, ECN codepoint); only counted with ``ecn=True``."""

    @property
    def port(self) -> int:
        """The port clients send to."""
        if self._listener is None:
            raise RuntimeError("tap is not started")
        return int(self._listener.get_extra_info("sockname")[1])

    async def start(self) -> WireTap:
        """Bind the client-facing socket on an ephemeral port."""
        loop = asyncio.get_running_loop()
        if self.ecn_link is not None:
            transport: asyncio.DatagramTransport = open_marking(
                _ClientSide(self), self.ecn_link, local_addr=(self.host, 0)
            )
        else:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _ClientSide(self), local_addr=(self.host, 0)
            )
        _enlarge_buffers(transport)
        self._listener = transport
        if self.preferred is not None:
            listener, _ = await loop.create_datagram_endpoint(
                lambda: _ClientSide(self, preferred=True), local_addr=self.preferred
            )
            _enlarge_buffers(listener)
            self._preferred_listener = listener
        return self

    async def close(self) -> None:
        """Close every socket of the tap."""
        for task in list(self._pending):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listener is not None:
            self._listener.close()
        if self._preferred_listener is not None:
            self._preferred_listener.close()
        for path in self.paths:
            if path.transport is not None:
                path.transport.close()
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
        for path in self.paths:
            result[f"path{path.index}"] = path.summary()
        if self.impairer is not None:
            result["impairment"] = self.impairer.summary()
        if self.ecn_link is not None:
            result["ecn"] = {
                f"{d}_{CODEPOINT_NAMES[mark]}": n for (d, mark), n in sorted(self.ecn_marks.items())
            }
        return result

    def rebind(self, client: Address) -> TapPath:
        """Forward ``client``'s datagrams from a new upstream socket from now on, as a NAT that renewed
        its mapping would: the server sees a new source port. The old path is retired: server datagrams
        reaching it are dropped (and counted). Returns the new path."""
        self._upstreams[client].retired = True
        self.rebinds += 1
        path = self._new_path(client, host=self.rebind_host)
        return path

    def _observe(self, direction: Direction, data: bytes) -> None:
        self.datagrams[direction] += 1
        for version, kind in classify(data):
            self.packets[(direction, version, kind)] += 1
        if self.ecn_link is not None:
            self.ecn_marks[(direction, self.ecn_link.current)] += 1

    def _new_path(self, client: Address, *, host: str | None = None, preferred: bool = False) -> TapPath:
        path = TapPath(self, client, len(self.paths))
        path.host, path.preferred = host, preferred
        (self._preferred_upstreams if preferred else self._upstreams)[client] = path
        self.paths.append(path)
        if self.ecn_link is not None:  # opened at once: the client's first datagram keeps its mark
            open_marking(path, self.ecn_link, remote_addr=self.server)
            return path
        task = asyncio.get_running_loop().create_task(self._open(path))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return path

    def _from_client(self, data: bytes, client: Address, preferred: bool = False) -> None:
        self._observe("to_server", data)
        path = (self._preferred_upstreams if preferred else self._upstreams).get(client)
        if path is None:
            path = self._new_path(client, preferred=preferred)
        path.datagrams["to_server"] += 1
        path.bytes["to_server"] += len(data)
        dcid = short_header_dcid(data, self.cid_length)
        if dcid is not None:
            path.dcids[dcid] = path.dcids.get(dcid, 0) + 1
        delivered = self._impair("to_server", data)
        if delivered is None:
            return
        if path.transport is None:
            path.backlog.append(delivered)
        else:
            path.transport.sendto(delivered)

    def _from_server(self, data: bytes, client: Address, preferred: bool = False) -> None:
        self._observe("to_client", data)
        self.server_initial_scids.update(initial_scids(data))
        delivered = self._impair("to_client", data)
        listener = self._preferred_listener if preferred else self._listener
        if listener is not None and delivered is not None:
            listener.sendto(delivered, client)
        self._to_client_bytes[client] += len(data)
        if (
            self.rebind_after is not None
            and not self.rebinds
            and self._to_client_bytes[client] >= self.rebind_after
        ):
            self.rebind(client)

    def _impair(self, direction: Direction, data: bytes) -> bytes | None:
        """What the link delivers for ``data`` (see :mod:`interop.impair`), recorded in :attr:`history`."""
        if self.impairer is None:
            delivered: bytes | None = data
            fate: Fate = "delivered"
        else:
            delivered = self.impairer.apply(direction, data)
            fate = self.impairer.last_fate
        if len(self.history) < HISTORY_LIMIT:
            self.history.append((direction, len(data), tuple(kind for _v, kind in classify(data)), fate))
        return delivered

    async def _open(self, path: TapPath) -> None:
        loop = asyncio.get_running_loop()
        local = None if path.host is None else (path.host, 0)
        await loop.create_datagram_endpoint(lambda: path, remote_addr=self.server, local_addr=local)


__all__ = [
    "HISTORY_LIMIT",
    "VERSION_1",
    "VERSION_2",
    "Direction",
    "TapPath",
    "WireTap",
    "classify",
    "initial_scids",
    "short_header_dcid",
]
