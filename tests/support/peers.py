"""Test peers for the simulator: aioquic's and rudp's sans-IO connections as ``SimEndpoint`` objects
that collect stream data and can be given data to send (pumped on every step).
"""

from __future__ import annotations

from collections import deque

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, StreamDataReceived

from rudp.quic import events as ev
from rudp.quic.connection import QuicConnection as RudpConnection
from rudp.quic.endpoint import QuicEndpoint

Addr = tuple[str, int]


class AioquicEndpoint:
    """``SimEndpoint`` adapter around aioquic's sans-IO connection; collects stream data and events.

    A server-side adapter creates its connection from the first datagram's destination CID, as
    aioquic's own asyncio server does.
    """

    def __init__(self, configuration: QuicConfiguration) -> None:
        self.configuration = configuration
        self.conn: QuicConnection | None = None
        if configuration.is_client:
            self.conn = QuicConnection(configuration=configuration)
        self.handshake_done_at: float | None = None
        self.terminated: ConnectionTerminated | None = None
        self.streams: dict[int, bytearray] = {}
        self.finished: set[int] = set()

    def connect(self, addr: Addr, now: float) -> None:
        if self.conn is None:
            raise RuntimeError("only a client connects")
        self.conn.connect(addr, now)

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        if self.conn is None:
            # The first datagram is a client Initial: long header, 4-byte version, then DCID length + DCID.
            original_dcid = data[6 : 6 + data[5]]
            self.conn = QuicConnection(
                configuration=self.configuration, original_destination_connection_id=original_dcid
            )
        self.conn.receive_datagram(data, addr, now)
        self._drain_events(now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        return [] if self.conn is None else self.conn.datagrams_to_send(now)

    def next_timer(self) -> float | None:
        return None if self.conn is None else self.conn.get_timer()

    def handle_timer(self, now: float) -> None:
        if self.conn is not None:
            self.conn.handle_timer(now)
            self._drain_events(now)

    def _drain_events(self, now: float) -> None:
        if self.conn is None:
            return
        while (event := self.conn.next_event()) is not None:
            if isinstance(event, HandshakeCompleted) and self.handshake_done_at is None:
                self.handshake_done_at = now
            elif isinstance(event, StreamDataReceived):
                self.streams.setdefault(event.stream_id, bytearray()).extend(event.data)
                if event.end_stream:
                    self.finished.add(event.stream_id)
            elif isinstance(event, ConnectionTerminated):
                self.terminated = event


class AioquicPeer(AioquicEndpoint):
    """An aioquic endpoint that also sends queued stream data as flow control allows."""

    def __init__(self, configuration: QuicConfiguration, *, echo: bool = False) -> None:
        super().__init__(configuration)
        self.outgoing: deque[tuple[int, bytes, bool]] = deque()
        self.echo = echo
        self._echoed: set[int] = set()

    def send(self, stream_id: int, data: bytes, fin: bool = True) -> None:
        self.outgoing.append((stream_id, data, fin))

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        if self.echo:
            for stream_id in self.finished - self._echoed:
                self._echoed.add(stream_id)
                self.outgoing.append((stream_id, bytes(self.streams[stream_id]), True))
        if self.conn is not None:
            while self.outgoing:
                stream_id, data, fin = self.outgoing.popleft()
                self.conn.send_stream_data(stream_id, data, end_stream=fin)
        return super().datagrams_to_send(now)


class RudpPeer:
    """A rudp client connection or server endpoint that collects stream data and pumps queued writes."""

    def __init__(self, target: RudpConnection | QuicEndpoint, *, echo: bool = False) -> None:
        self.target = target
        self.echo = echo
        self._echoed: set[int] = set()
        self._seen: list[RudpConnection] = []
        self.streams: dict[int, bytearray] = {}
        self.finished: set[int] = set()
        self.events: list[ev.Event] = []
        self.handshake: ev.HandshakeCompleted | None = None
        self.handshake_done_at: float | None = None
        self.terminated: ev.ConnectionTerminated | None = None
        self.outgoing: dict[int, tuple[memoryview, bool]] = {}
        self.read_limit: int | None = None
        """If set, read at most this many bytes per stream per step (a slow reader)."""

    @property
    def connections(self) -> list[RudpConnection]:
        """Every connection seen, including closed ones the endpoint already dropped."""
        if not isinstance(self.target, QuicEndpoint):
            return [self.target]
        for conn in self.target.connections:
            if conn not in self._seen:
                self._seen.append(conn)
        return list(self._seen)

    @property
    def conn(self) -> RudpConnection:
        conns = self.connections
        if not conns:
            raise LookupError("no connection yet")
        return conns[0]

    def send(self, stream_id: int, data: bytes, fin: bool = True) -> None:
        self.outgoing[stream_id] = (memoryview(data), fin)

    def _pump(self, now: float) -> None:
        for conn in self.connections:
            while (event := conn.next_event()) is not None:
                self.events.append(event)
                if isinstance(event, ev.HandshakeCompleted):
                    self.handshake, self.handshake_done_at = event, now
                elif isinstance(event, ev.ConnectionTerminated):
                    self.terminated = event
                elif isinstance(event, ev.StreamReadable):
                    self._read(conn, event.stream_id)
            for stream_id in list(self.streams):
                if stream_id not in self.finished:
                    self._read(conn, stream_id)
            if self.echo:
                for stream_id in self.finished - self._echoed:
                    self._echoed.add(stream_id)
                    self.outgoing[stream_id] = (memoryview(bytes(self.streams[stream_id])), True)
            for stream_id, (data, fin) in list(self.outgoing.items()):
                if conn.is_closed:
                    break
                accepted = conn.send_stream(stream_id, data, fin=fin)
                if accepted == len(data):
                    del self.outgoing[stream_id]
                else:
                    self.outgoing[stream_id] = (data[accepted:], fin)

    def _read(self, conn: RudpConnection, stream_id: int) -> None:
        limit = -1 if self.read_limit is None else self.read_limit
        chunk = conn.read_stream(stream_id, limit)
        self.streams.setdefault(stream_id, bytearray()).extend(chunk)
        if conn.stream_at_eof(stream_id):
            self.finished.add(stream_id)

    # SimEndpoint
    def receive_datagram(self, data: bytes, addr: Addr, now: float, ecn: int = 0) -> None:
        self.target.receive_datagram(data, addr, now, ecn)
        self._pump(now)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        self._pump(now)
        return self.target.datagrams_to_send(now)

    @property
    def ecn_codepoint(self) -> int:
        """The ECN codepoint of the datagrams the last datagrams_to_send returned."""
        return self.target.ecn_codepoint

    def next_timer(self) -> float | None:
        return self.target.next_timer()

    def handle_timer(self, now: float) -> None:
        self.target.handle_timer(now)
        self._pump(now)
