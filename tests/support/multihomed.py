"""A simulated pair where the server listens on several addresses (its preferred address, RFC 9000 §9.6)
and the client may open a socket of its own for one destination, as the asyncio layer does when it
probes a server's preferred address from a new local port.
"""

from __future__ import annotations

from rudp.quic.endpoint import QuicEndpoint
from rudp.testing import Pair
from rudp.testing.link import Datagram
from rudp.testing.netsim import SimEndpoint
from tests.support.peers import RudpPeer

Addr = tuple[str, int]


class MultihomedServer(RudpPeer):
    """A rudp server endpoint told which of its addresses each datagram reached."""

    def __init__(self, endpoint: QuicEndpoint, main: Addr) -> None:
        super().__init__(endpoint)
        self.endpoint = endpoint
        self.main = main
        self.heard: dict[Addr, int] = {}
        """Datagrams received per local address."""

    def receive_at(self, data: bytes, addr: Addr, now: float, ecn: int, local: Addr) -> None:
        self.heard[local] = self.heard.get(local, 0) + 1
        self.endpoint.receive_datagram(data, addr, now, ecn, local=None if local == self.main else local)
        self._pump(now)


class MultihomedPair(Pair):
    """:class:`~rudp.testing.Pair` with extra server addresses and per-destination client sources.

    ``server_addresses`` all reach the server (each datagram is handed over with the address it
    reached); the server's datagrams leave from the address :attr:`QuicEndpoint.sources` names.
    ``client_sources[dst]`` is the address the client's datagrams to ``dst`` come from (a socket of
    its own); everything else comes from ``client_addr``.
    """

    def __init__(self, client: SimEndpoint, server: MultihomedServer, **kwargs: object) -> None:
        super().__init__(client, server, **kwargs)  # type: ignore[arg-type]
        self.mserver = server
        self.server_addresses: set[Addr] = {self.server_addr}
        self.client_sources: dict[Addr, Addr] = {}
        self.sent_from: dict[Addr, int] = {}
        """Server datagrams sent per source address."""
        self.short_dcids: dict[tuple[Addr, Addr], set[bytes]] = {}
        """The destination CIDs of the 1-RTT (short header) packets sent, per (source, destination),
        both directions (the 8 bytes after the first byte: both sides use 8-byte CIDs here)."""

    def _note_dcid(self, data: bytes, src: Addr, dst: Addr) -> None:
        # A datagram ends with its short-header packet, if any; one that starts with it is all 1-RTT.
        if data and not data[0] & 0x80:
            self.short_dcids.setdefault((src, dst), set()).add(bytes(data[1:9]))

    def _reaches_server(self, dst: Addr) -> bool:
        return dst in self.server_addresses or super()._reaches_server(dst)

    def _reaches_client(self, dst: Addr) -> bool:
        return dst in self.client_sources.values() or super()._reaches_client(dst)

    def _collect_client(self) -> int:
        now = self.clock.now
        out = self.client.datagrams_to_send(now)
        for data, dst in out:
            src = self.client_sources.get(dst, self.client_addr)
            self._note_dcid(data, src, dst)
            self.c2s.send(data, src, dst, now)
        return len(out)

    def _collect_server(self) -> int:
        now = self.clock.now
        out = self.server.datagrams_to_send(now)
        sources = self.mserver.endpoint.sources
        for index, (data, dst) in enumerate(out):
            source = sources[index] if sources is not None else None
            src = source if source is not None else self.server_addr
            self.sent_from[src] = self.sent_from.get(src, 0) + 1
            self._note_dcid(data, src, dst)
            self.s2c.send(data, src, dst, now)
        return len(out)

    def _deliver(self, endpoint: SimEndpoint, datagram: Datagram, now: float) -> None:  # type: ignore[override]
        if endpoint is self.mserver:
            self.mserver.receive_at(datagram.data, datagram.src, now, datagram.ecn, datagram.dst)
        else:
            endpoint.receive_datagram(datagram.data, datagram.src, now)
