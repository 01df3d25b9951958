"""The extra sockets of a :class:`~rudp.aio.endpoint.UdpEndpoint`: a server's preferred addresses and a
client's socket toward the server's preferred address (RFC 9000 §9.6).

Owns :class:`ExtraSockets`: the sockets beside the endpoint's main one, keyed by the local address a
server socket is bound to (each feeds the same :class:`~rudp.quic.endpoint.QuicEndpoint`, telling it
where a datagram arrived) or by the remote address a client socket is connected to, and the routing of
outgoing datagrams among them: a server answers each peer from the local address the core names
(:attr:`QuicEndpoint.sources`), a client sends to the preferred address through its own socket while it
probes it (a new local port, so the probe is a new path of its own, RFC 9000 §9.6.1, §9.5).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence

from rudp.aio.udp_io import DatagramSocket, Received, TransportDatagramSocket, open_datagram_socket

Address = tuple[str, int]
Io = DatagramSocket | TransportDatagramSocket

_log = logging.getLogger("rudp.aio")


class ExtraSockets:
    """Sockets of one endpoint besides its main one (see the module docstring).

    ``on_datagrams(batch, local)`` gets what a socket received, with the key of that socket (the bound
    address of a server socket, None for a client's: its datagrams carry the remote address anyway).
    ``on_closed`` is the endpoint's own socket-closed callback (a client socket may become the
    endpoint's main one).
    """

    def __init__(
        self,
        on_datagrams: Callable[[list[Received], Address | None], None],
        on_error: Callable[[Exception], None],
        on_closed: Callable[[], None],
        tune: Callable[[socket.socket], None],
        marking: Callable[[], int],
    ) -> None:
        self._on_datagrams = on_datagrams
        self._on_error = on_error
        self._on_closed = on_closed
        self._tune = tune
        self._marking = marking
        self.sockets: dict[Address, Io] = {}

    def _feed(self, local: Address | None) -> Callable[[list[Received]], None]:
        on_datagrams = self._on_datagrams
        return lambda batch: on_datagrams(batch, local)

    def __bool__(self) -> bool:
        return bool(self.sockets)

    async def listen(self, local: Address) -> Address:
        """(server) Bind a socket at ``local`` (a preferred address) feeding the endpoint; returns the
        address bound (the key its datagrams and sources carry).

        Raises:
            OSError: the address cannot be bound.
        """
        family = socket.AF_INET6 if ":" in local[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            self._tune(sock)
            sock.bind(local)
            sock.setblocking(False)
            bound = (str(sock.getsockname()[0]), int(sock.getsockname()[1]))
            io = await open_datagram_socket(sock, self._feed(bound), self._on_error, self._on_closed)
        except BaseException:
            sock.close()
            raise
        io.set_ecn_marking(self._marking())
        self.sockets[bound] = io
        return bound

    def connect_now(self, remote: Address, loop: asyncio.AbstractEventLoop) -> Io | None:
        """(client) A socket connected to ``remote``, opened at once (the core is already sending
        there); None where that cannot be done synchronously (a loop without ``add_reader``) or the
        socket fails: the probe is then lost and the connection stays where it is (RFC 9000 §9.6.1)."""
        io = self.sockets.get(remote)
        if io is not None:
            return io
        family = socket.AF_INET6 if ":" in remote[0] else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:
            _log.debug("no socket for the preferred address %s: %r", remote, exc)
            return None
        try:
            self._tune(sock)
            sock.setblocking(False)
            sock.connect(remote)
            new = DatagramSocket(loop, sock, self._feed(None), self._on_error, self._on_closed)
        except (OSError, NotImplementedError) as exc:
            sock.close()
            _log.debug("no socket for the preferred address %s: %r", remote, exc)
            return None
        new.set_ecn_marking(self._marking())
        self.sockets[remote] = new
        return new

    def take(self, key: Address) -> Io | None:
        """Remove the socket of ``key`` from the set (it becomes the endpoint's main one)."""
        return self.sockets.pop(key, None)

    def close(self, key: Address | None = None) -> None:
        """Close the socket of ``key``, or all of them."""
        keys = list(self.sockets) if key is None else [key]
        for name in keys:
            io = self.sockets.pop(name, None)
            if io is not None:
                io.close()

    def set_ecn_marking(self, codepoint: int) -> None:
        """Mark what every extra socket sends with ``codepoint``."""
        for io in self.sockets.values():
            io.set_ecn_marking(codepoint)

    def send_from(
        self, main: Io, datagrams: Sequence[tuple[bytes, Address]], sources: Sequence[Address | None]
    ) -> None:
        """(server) Send each datagram from the socket bound at its source (None: ``main``), keeping
        the order of consecutive datagrams of one socket (GSO batches stay whole)."""
        start = 0
        count = len(datagrams)
        while start < count:
            source = sources[start]
            end = start + 1
            while end < count and sources[end] == source:
                end += 1
            io = main if source is None else self.sockets.get(source, main)
            io.send(datagrams[start:end])
            start = end

    def send_to(self, main: Io, datagrams: Sequence[tuple[bytes, Address]], remote: Address) -> None:
        """(client) Send the datagrams to ``remote`` through its socket, the others through ``main``."""
        io = self.sockets.get(remote)
        if io is None:
            main.send(datagrams)
            return
        main.send([d for d in datagrams if d[1] != remote])
        io.send([d for d in datagrams if d[1] == remote])


__all__ = ["ExtraSockets"]
