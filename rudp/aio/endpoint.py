"""UdpEndpoint: one UDP socket driving a sans-IO :class:`~rudp.quic.endpoint.QuicEndpoint`.

Owns the socket (4 MiB kernel buffers; its batched I/O — GSO, GRO, ECN marks — lives in
:mod:`rudp.aio.udp_io`), the endpoint's single timer (``loop.call_at``, with ``loop.time()`` as the
core's clock), transmission and event dispatch: after the timer and after every batch of application
commands it transmits all datagrams, re-arms the timer, then hands each connection's events to its
:class:`~rudp.aio.connection.Connection` (the order of :mod:`rudp.aio.driver`). A batch of datagrams is
the exception: its events go to the application first and the transmission waits for its answer (see
:meth:`UdpEndpoint.request_flush`), so the ACKs owed leave with the answers.
It does not own connection logic (the core) nor the public API (``rudp.connect``/``rudp.serve``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from collections.abc import Callable

from rudp.aio.connection import Connection
from rudp.aio.driver import (
    Address,
    ConnectionDriver,
    LoopTimer,
    loop_ready_queue,
    loop_timer_granularity,
)
from rudp.aio.multihome import ExtraSockets
from rudp.aio.udp_io import (
    ECT_0,
    NOT_ECT,
    DatagramSocket,
    Received,
    TransportDatagramSocket,
    open_datagram_socket,
)
from rudp.config import Config
from rudp.errors import ConnectionRefused, NetworkError, RudpError
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.quic.preferred import MigrationState
from rudp.quic.weak_callbacks import weak_callback, weak_method
from rudp.tls.config import TlsConfig

SOCKET_BUFFER_BYTES = 4 << 20
"""SO_RCVBUF / SO_SNDBUF asked for: loopback bursts overflow the default buffers."""

FLUSH_DEFERRALS = 8
"""Loop passes the flush an input scheduled waits at most for the application's answer."""
FLUSH_PORTION = 32
"""Commands (a write, a FIN, ...) after which what the ones of one loop pass made leaves while the
application goes on making the rest (issue 13). 32 requests in flight answered in one burst otherwise
travel as one round: each end handles all 32 while the other waits; in two portions of ~16 answers
(two commands each) both ends work at once (``benchmarks/small_rounds.py``)."""

_log = logging.getLogger("rudp.aio")


def normalize_address(addr: tuple[object, ...]) -> Address:
    """(host, port) from a socket address (IPv6 addresses carry flowinfo and scope id)."""
    return (str(addr[0]), int(addr[1]))  # type: ignore[call-overload]


def _normalized(batch: list[Received]) -> list[tuple[bytes | memoryview, Address, int]]:
    """``batch`` with each address normalized (:func:`normalize_address`), each distinct one once."""
    routed: list[tuple[bytes | memoryview, Address, int]] = []
    raw: object = None
    peer: Address = ("", 0)
    for data, addr, ecn in batch:
        if addr is not raw and addr != raw:
            raw, peer = addr, normalize_address(addr)
        routed.append((data, peer, ecn))
    return routed


# Linux values (the socket module does not name them): set Don't Fragment and ignore the kernel's
# path-MTU cache, as DPLPMTUD wants (RFC 9000 §14, RFC 8899 §3): QUIC never relies on IP fragmentation.
_IP_MTU_DISCOVER = 10
_IPV6_MTU_DISCOVER = 23
_PMTUDISC_PROBE = 3


def _tune_socket(sock: socket.socket | None) -> None:
    if sock is None:
        return
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
        except OSError:  # a capped or unsupported option only costs drops under bursts
            _log.debug("could not set socket buffer option %s", option)
    levels = [(socket.IPPROTO_IP, _IP_MTU_DISCOVER)]
    if sock.family == socket.AF_INET6:
        levels.append((socket.IPPROTO_IPV6, _IPV6_MTU_DISCOVER))
    for level, option in levels:
        try:
            sock.setsockopt(level, option, _PMTUDISC_PROBE)
        except OSError:  # not Linux: large probes may then be fragmented or refused; both are safe
            _log.debug("could not set Don't Fragment (level %s)", level)


class UdpEndpoint:
    """A UDP socket serving many QUIC connections (server) or one (client).

    Create with :meth:`create_server` or :meth:`create_client`. New server connections are announced
    to ``on_connection`` once their handshake completes.

    ECN (RFC 9000 §13.4): with ``ecn=True`` (``Config.ecn``) each batch of datagrams leaves marked
    ECT(0) while the connections in it test or have validated ECN, and unmarked once validation failed;
    the marks of received datagrams are counted in :attr:`ecn_counts` and handed to the core with each
    datagram (its ACK_ECN counts and validation).
    """

    def __init__(
        self,
        config: Config,
        *,
        tls_config: TlsConfig | None = None,
        on_connection: Callable[[Connection], None] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        granularity = loop_timer_granularity(self._loop)
        if config.timer_granularity < granularity:
            # The pacer must not ask for waits this loop cannot honour (issue 13: timer spin).
            config = dataclasses.replace(config, timer_granularity=granularity)
        self.config = config
        self.quic = QuicEndpoint(config, tls_config=tls_config)
        self._on_connection = on_connection
        self._io: DatagramSocket | TransportDatagramSocket | None = None
        self._ecn = False
        self._marking = NOT_ECT  # the codepoint the socket marks with now
        #: datagrams received per ECN codepoint: [Not-ECT, ECT(1), ECT(0), CE]
        self.ecn_counts = [0, 0, 0, 0]
        self._connected_to: Address | None = None  # client sockets are connected (ICMP errors reach us)
        # (weak callbacks: the extra sockets and the timer are this endpoint's, and callbacks holding it
        # would make reference cycles, freed only by a garbage collection)
        self._extra = ExtraSockets(
            weak_callback(self._on_datagrams),
            weak_callback(self.error_received),
            weak_callback(self._socket_closed),
            _tune_socket,
            weak_method(self._current_marking),
        )
        """Preferred-address sockets (RFC 9000 §9.6): a server's extra listening addresses, a client's
        socket toward the server's preferred address while it probes it."""
        self._client_core: QuicConnection | None = None
        self._connections: dict[QuicConnection, Connection] = {}
        self._timer = LoopTimer(self._loop, weak_callback(self._on_timer))
        self.timer_stats = {"callbacks": 0, "empty": 0}
        """Endpoint timer callbacks so far, and those after which no datagram left (``empty``): a
        pacer or timer that fits the loop's clock keeps ``empty`` a small share (issue 13)."""
        self._flush_scheduled = False
        self._deferrals = 0  # loop passes the scheduled flush has waited so far
        self._ready = loop_ready_queue(self._loop)  # (None: the loop does not tell, e.g. uvloop)
        self._commands = 0  # commands since the scheduled flush was asked for (or the last portion)
        self._portions: dict[QuicConnection, None] = {}  # transmitted for by a portion, not yet dispatched
        self._closed = asyncio.Event()

    # ------------------------------------------------------------------ creation

    @classmethod
    async def create_server(
        cls,
        config: Config,
        local_addr: tuple[str, int],
        *,
        on_connection: Callable[[Connection], None],
        family: int = 0,
        tls_config: TlsConfig | None = None,
        ecn: bool | None = None,
    ) -> UdpEndpoint:
        """Bind a server socket at ``local_addr``.

        ``tls_config`` (built from ``config`` when None) holds the ticket key and replay cache: share
        one between the endpoints of one server so tickets work on all of them. ``ecn``: mark outgoing
        packets ECT(0) (None: ``config.ecn`` when the configuration has that flag, else off).

        Raises:
            ConfigError: unreadable certificate or key.
            NetworkError: the address cannot be bound (``errno`` as the socket's, e.g. EADDRINUSE).
        """
        tls = tls_config or config.tls_config(is_client=False)
        endpoint = cls(config, tls_config=tls, on_connection=on_connection)
        if not family:
            family = socket.AF_INET6 if ":" in local_addr[0] else socket.AF_INET
        where = f"cannot listen on {local_addr[0]} port {local_addr[1]} (UDP)"
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:
            raise NetworkError.wrap(where, exc) from exc
        try:
            if family == socket.AF_INET6:
                # The wildcard address serves IPv4 too (dual-stack), whatever the system default is.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if local_addr[0] == "::" else 1)
            _tune_socket(sock)
            sock.bind(local_addr)
            sock.setblocking(False)
            await endpoint._open(sock, ecn)
        except OSError as exc:
            sock.close()
            raise NetworkError.wrap(where, exc) from exc
        except BaseException:
            sock.close()
            raise
        return endpoint

    @classmethod
    async def create_client(
        cls, config: Config, remote_addr: Address, *, ecn: bool | None = None
    ) -> UdpEndpoint:
        """Open a client socket connected to ``remote_addr`` (a resolved address literal).

        ``ecn`` as for :meth:`create_server`.

        Raises:
            OSError: no route, or the socket cannot be created.
        """
        endpoint = cls(config)
        family = socket.AF_INET6 if ":" in remote_addr[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            _tune_socket(sock)
            sock.setblocking(False)
            sock.connect(remote_addr)
            await endpoint._open(sock, ecn)
        except BaseException:
            sock.close()
            raise
        endpoint._connected_to = remote_addr
        return endpoint

    async def _open(self, sock: socket.socket, ecn: bool | None) -> None:
        if ecn is None:
            ecn = bool(getattr(self.config, "ecn", False))
        self._ecn = ecn
        self._io = await self._open_io(sock)

    async def _open_io(self, sock: socket.socket) -> DatagramSocket | TransportDatagramSocket:
        io = await open_datagram_socket(sock, self._on_datagrams, self.error_received, self._socket_closed)
        if self._ecn:
            if io.set_ecn_marking(ECT_0):
                self._marking = ECT_0
            else:
                _log.debug("could not mark packets ECT(0) on this socket")
                self._ecn = False
        return io

    def connect(self, server_name: str | None) -> Connection:
        """Start the client connection of this endpoint (its first flight goes out at once)."""
        if self._connected_to is None:
            raise RuntimeError("connect() needs a client endpoint")
        core = self.quic.connect(self._connected_to, self._loop.time(), server_name=server_name)
        self._client_core = core
        conn = self._adopt(core, is_client=True)
        self.flush()
        return conn

    def _adopt(self, core: QuicConnection, *, is_client: bool) -> Connection:
        conn = Connection(ConnectionDriver(core, self), is_client=is_client)
        self._connections[core] = conn
        if not is_client and self._on_connection is not None:
            conn._add_established_callback(self._on_connection)
        return conn

    # ------------------------------------------------------------------ properties

    @property
    def local_address(self) -> Address:
        """The bound (host, port)."""
        if self._io is None:
            raise RuntimeError("endpoint is not open")
        return normalize_address(self._io.sockname)

    @property
    def sockname(self) -> Address | None:
        """The bound (host, port), or None once the socket is closed."""
        return None if self._io is None else self.local_address

    @property
    def io(self) -> DatagramSocket | TransportDatagramSocket | None:
        """The socket layer (its features and counters), None once closed."""
        return self._io

    @property
    def port(self) -> int:
        """The bound port number."""
        return self.local_address[1]

    @property
    def connections(self) -> list[Connection]:
        """The connections currently served (including handshaking ones)."""
        return list(self._connections.values())

    # ------------------------------------------------------------------ socket input

    def _on_datagrams(self, batch: list[Received], local: Address | None = None) -> None:
        """Route every datagram the socket layer drained in one wake-up, hand their events to the
        connections, then request one flush.

        One flush per burst: one ACK for many packets, one transmission round for many ACKs. The events
        go first and the flush waits for the answer they make the application give (:meth:`request_flush`):
        the answers and the ACKs owed leave together, where flushing at once sent an ACK-only datagram
        whenever two or more packets had arrived (RFC 9000 §13.2.2) and the answers in a second one
        (issue 13: half the client's datagrams of 32 concurrent requests at MTU 1500). The ACK delay
        this adds is a few loop passes, well within max_ack_delay (RFC 9000 §13.2.1). ``local`` is the
        address of the (extra) server socket they arrived at; None for the main socket.
        """
        now = self._loop.time()
        counts = self.ecn_counts
        # The datagrams of one GRO buffer share one address object, and a burst mostly one peer:
        # each distinct address is looked at once. An IPv4 socket's (host, port) is normalized
        # already (a socket's (str, int) pair; IPv6 ones carry flowinfo and scope id too): then the
        # batch goes to the core as it is. ``ecn``: the datagram's IP ECN codepoint, counted per QUIC
        # packet in ACK_ECN (RFC 9000 §13.4.1).
        normalized = True
        raw: object = None
        for _, addr, ecn in batch:
            counts[ecn] += 1
            if addr is not raw and addr != raw:
                raw = addr
                normalized = normalized and len(addr) == 2
        quic = self.quic
        routed = batch if normalized else _normalized(batch)
        for new in quic.receive_datagrams(routed, now, local=local):
            self._adopt(new, is_client=False)
        if quic.stateless_pending:
            # Stateless replies answer no application: out at once, so that a flood of handshakes
            # never piles more than one receive batch of them up.
            self.flush()
            return
        self._dispatch(quic.changed, transmitted=False)
        if not self._flush_scheduled:  # (one already waiting keeps its count: inputs never starve it)
            ready = self._ready
            if ready is not None and not ready and self._handshaking():
                # Nothing else to run, neither in this loop pass nor in the next (the events woke no
                # task), and a handshake under way (the scheduled flush would not wait): the next pass
                # would run that flush first, so it goes now, without the extra pass (and its poll).
                self.flush()
                return
            self._deferrals = 0
            self._schedule_flush()

    def error_received(self, exc: Exception) -> None:
        """ICMP errors: a refused client handshake fails at once instead of timing out."""
        if not isinstance(exc, ConnectionRefusedError) or self._connected_to is None:
            _log.debug("socket error ignored: %r", exc)
            return
        host, port = self._connected_to
        for conn in list(self._connections.values()):
            if not conn.is_established:
                conn._abort(ConnectionRefused.nobody_listening(host, port))

    def _socket_closed(self) -> None:
        """The socket is closed: stop the timer and end every connection still alive."""
        if self._io is None or not self._io.closing:
            return  # the socket a migration left behind
        self._io = None
        self._set_timer(None)
        for core in list(self._connections):
            core.close(0, "endpoint closed")
        self._dispatch(list(self._connections))
        self._closed.set()

    # ------------------------------------------------------------------ Link

    def request_flush(self) -> None:
        """Flush on the next loop pass (coalesces the commands of one pass).

        The flush an input scheduled (:meth:`_on_datagrams`) waits for the application's answer: while
        other callbacks are ready (the tasks the input woke, and the ones they wake in turn), at most
        :data:`FLUSH_DEFERRALS` loop passes, and only until a command asks for a flush here. So the
        answer and the ACK owed leave together, and what the loop runs after the answer (tasks
        finishing) runs while the peer already works on it. A loop that does not tell what is ready
        (uvloop), and an endpoint with a handshake under way, do not wait. A long burst of commands in
        one pass (many tasks answering) leaves in portions of :data:`FLUSH_PORTION` commands, so the
        peer starts on the first answers while the rest are made.
        """
        self._deferrals = FLUSH_DEFERRALS  # the answer is here: no more waiting
        if not self._flush_scheduled:
            self._schedule_flush()
            return
        self._commands += 1
        if self._commands >= FLUSH_PORTION:
            self._transmit_portion()

    def _transmit_portion(self) -> None:
        """Transmit what the commands so far made while a flush is scheduled (the application is making
        a burst of answers): the peer works on these while the rest are made. Only the transmission: the
        events of the connections it flushed wait for the scheduled flush (never dispatched from inside
        an application's command)."""
        self._commands = 0
        io = self._io
        if io is None or io.closing or self._handshaking():
            return
        self._transmit(io)
        self._portions.update(dict.fromkeys(self.quic.flushed))  # each connection once, however many

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._scheduled_flush)

    def output_due(self) -> bool:
        """True when a connection has something to transmit (see :attr:`QuicEndpoint.output_pending`)
        and no flush is scheduled yet (one that is will send it: a request would add nothing)."""
        return not self._flush_scheduled and self.quic.output_pending

    def _handshaking(self) -> bool:
        """True while a handshake is under way here: its flights (and a client's 0-RTT data, RFC 9001
        §4.6.1) go out on the next loop pass, not after the application's other work."""
        client = self._client_core
        if client is not None:
            return not client.handshake_complete
        return self.quic.handshakes_in_progress > 0

    def _scheduled_flush(self) -> None:
        ready = self._ready  # (loop_has_ready_work, without the call: once or more per input)
        if self._deferrals < FLUSH_DEFERRALS and ready and not self._handshaking():
            self._deferrals += 1
            self._loop.call_soon(self._scheduled_flush)
            return
        self._flush_scheduled = False
        self.flush()

    def flush(self) -> int:
        """Transmit every datagram, re-arm the endpoint timer, then dispatch every connection's events.

        Returns how many datagrams left."""
        io = self._io
        self._commands = 0
        portions, self._portions = self._portions, {}
        if io is not None and not io.closing:
            sent = self._transmit(io)
            self._dispatch([*portions, *self.quic.flushed] if portions else self.quic.flushed)
            return sent
        self._dispatch(list(self._connections))
        return 0

    def _transmit(self, io: DatagramSocket | TransportDatagramSocket) -> int:
        """Send every datagram the connections have now and re-arm the timer; how many left."""
        quic = self.quic
        datagrams = quic.datagrams_to_send(self._loop.time())
        if self._ecn and datagrams:
            wanted = ECT_0 if quic.ecn_codepoint else NOT_ECT
            if wanted != self._marking:
                self._follow_ecn_validation(io, wanted)
        client = self._client_core
        if client is not None and client.migration.target is not None:
            self._send_client(io, datagrams, client)  # (also when empty: it settles the move)
        elif quic.sources is not None and self._extra:
            self._extra.send_from(io, datagrams, quic.sources)
        elif datagrams:
            io.send(datagrams)
        self._timer.arm(quic.next_timer())
        return len(datagrams)

    def _follow_ecn_validation(self, io: DatagramSocket | TransportDatagramSocket, wanted: int) -> None:
        """Mark this batch as the connections in it ask (RFC 9000 §13.4.2), ``wanted`` when it is not
        what the socket marks with now: ECT(0) while a path tests or has validated ECN, unmarked once
        validation failed (a path that bleaches or drops marks)."""
        if io.set_ecn_marking(wanted):
            self._marking = wanted
            self._extra.set_ecn_marking(wanted)

    # ------------------------------------------------------------------ preferred address

    async def listen_also(self, local_addr: Address) -> Address:
        """(server) Listen at ``local_addr`` too (a preferred address, RFC 9000 §9.6): its datagrams
        feed the same connections, and each path is answered from the address it reached. Returns
        the address bound.

        Raises:
            NetworkError: the address cannot be bound.
        """
        try:
            return await self._extra.listen(local_addr)
        except OSError as exc:
            where = f"cannot listen on {local_addr[0]} port {local_addr[1]} (UDP)"
            raise NetworkError.wrap(where, exc) from exc

    def _send_client(
        self,
        io: DatagramSocket | TransportDatagramSocket,
        datagrams: list[tuple[bytes, Address]],
        core: QuicConnection,
    ) -> None:
        """A client moving to the server's preferred address (RFC 9000 §9.6.1): probes go there from a
        socket of their own; once the move is settled, one socket is left."""
        migration = core.migration
        target = migration.target
        state = migration.state
        if target is None or state in (MigrationState.PENDING, MigrationState.DECLINED):
            io.send(datagrams)
            return
        if state is MigrationState.PROBING:
            if any(dst == target for _, dst in datagrams):
                self._extra.connect_now(target, self._loop)
            self._extra.send_to(io, datagrams, target)
            return
        if state is MigrationState.MIGRATED:
            new = self._extra.take(target)
            if new is not None:
                # RFC 9000 §9.6.1: everything goes to the preferred address now; the old socket goes.
                self._io, self._connected_to = new, target
                io.close()
                io = new
        else:
            self._extra.close()  # validation failed: the connection stays on the original address
        io.send(datagrams)

    def _dispatch(self, cores: list[QuicConnection], *, transmitted: bool = True) -> None:
        """Hand the events of ``cores`` (the connections that changed) to their Connection objects
        (``transmitted``: as :meth:`ConnectionDriver.dispatch_events` takes it)."""
        for core in cores:
            conn = self._connections.get(core)
            if conn is None:
                continue
            conn._driver.dispatch_events(transmitted=transmitted)
            if core.is_closed or (self._io is None and conn.is_closed):
                self._connections.pop(core, None)

    def _set_timer(self, deadline: float | None) -> None:
        self._timer.arm(deadline)

    def _current_marking(self) -> int:
        """The ECN codepoint the sockets mark with now (asked by the extra sockets)."""
        return self._marking

    def _on_timer(self) -> None:
        if self._io is None:
            return
        self.quic.handle_timer(self._loop.time())
        sent = self.flush()
        stats = self.timer_stats
        stats["callbacks"] += 1
        if not sent:
            stats["empty"] += 1

    # ------------------------------------------------------------------ migration

    async def migrate(self, core: QuicConnection) -> Address:
        """Move this client endpoint to a new socket (a new local port) and migrate ``core`` to it.

        The old socket is closed; the connection continues on the new path (RFC 9000 §9). Returns the
        new local address.

        Raises:
            RudpError: not a client endpoint, the endpoint is closed, or the connection cannot migrate
                yet (handshake not confirmed).
            NetworkError: the new socket cannot be opened.
        """
        remote, old = self._connected_to, self._io
        if remote is None or old is None:
            raise RudpError("only an open client endpoint can migrate")
        if not core.can_migrate:
            raise RudpError("migration needs an established client connection with a confirmed handshake")
        core.migration.check_migrate()  # MigrationDisabled (RFC 9000 §9), or a preferred address probe
        family = socket.AF_INET6 if ":" in remote[0] else socket.AF_INET
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:
            raise NetworkError.wrap("cannot open a new UDP socket to migrate to", exc) from exc
        try:
            _tune_socket(sock)
            sock.setblocking(False)
            sock.connect(remote)
            new = await self._open_io(sock)
        except OSError as exc:
            sock.close()
            raise NetworkError.wrap("cannot open a new UDP socket to migrate to", exc) from exc
        except BaseException:
            sock.close()
            raise
        if self._io is not old:  # closed meanwhile
            new.abort()
            raise RudpError("the endpoint closed during migration")
        # One synchronous step: the new socket and the new connection ID start together, so no packet
        # carries the new ID from the old address or the old ID from the new one (RFC 9000 §9.5).
        self._io = new
        core.migrate(self._loop.time())
        old.close()
        self.flush()
        return self.local_address

    # ------------------------------------------------------------------ closing

    def close(self, *, code: int = 0, reason: str = "") -> None:
        """Close every connection (CONNECTION_CLOSE goes out first), then the socket; idempotent.

        A server's connections are closed with the reason "server closing" unless ``reason`` is given,
        as the TCP baseline's listener closes its own.
        """
        if self._io is None:
            return
        if not reason and self._connected_to is None:
            reason = "server closing"
        for conn in list(self._connections.values()):
            conn.close(code, reason)
        self.flush()
        # A closed endpoint announces no more connections; and its owner (a Server, whose bound method
        # this is, and which holds this endpoint) is no longer kept in a reference cycle with it.
        self._on_connection = None
        self._extra.close()
        if self._io is not None:
            self._io.close()

    async def wait_closed(self) -> None:
        """Wait until the socket is closed."""
        await self._closed.wait()


__all__ = ["SOCKET_BUFFER_BYTES", "UdpEndpoint", "normalize_address"]
