"""QuicEndpoint: many connections behind one UDP socket, without I/O (RFC 9000 §5.2, §6, §8.1, §10.3).

Owns routing datagrams to connections by destination connection ID, creating server connections from
valid client Initials, Version Negotiation for unknown versions, stateless Retry (address validation),
and stateless resets for packets of connections we no longer know. Connections do everything else.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from functools import partial

from rudp.codec.codes import SUPPORTED_VERSIONS, PacketType
from rudp.codec.packet import (
    MIN_INITIAL_DATAGRAM_SIZE,
    encode_retry,
    encode_version_negotiation,
    parse_header,
)
from rudp.config import Config
from rudp.crypto.retry import TokenSealer, retry_integrity_tag
from rudp.errors import DecodeError
from rudp.quic.cids import stateless_reset_token
from rudp.quic.connection import QuicConnection
from rudp.quic.state import Address
from rudp.tls.config import TlsConfig

RETRY_TOKEN_LIFETIME = 10.0
MIN_STATELESS_RESET_SIZE = 21


def _address_bytes(addr: Address) -> bytes:
    return f"{addr[0]}|{addr[1]}".encode()


class QuicEndpoint:
    """Demultiplexes datagrams of one socket to :class:`QuicConnection` objects.

    Use as a server (``tls_config`` with a certificate) or as a client (``connect``). After every
    input call :meth:`datagrams_to_send`, then :meth:`next_timer`; new server connections are
    returned by :meth:`receive_datagram` and also queued in :attr:`accepted`.
    """

    def __init__(
        self,
        config: Config,
        *,
        tls_config: TlsConfig | None = None,
        randbytes: Callable[[int], bytes] | None = None,
    ) -> None:
        self.config = config
        self._tls_config = tls_config
        self._randbytes = randbytes or config.randbytes
        self._reset_key = config.stateless_reset_key or self._randbytes(32)
        self._tokens = TokenSealer(self._randbytes(32), self._randbytes)
        self._routes: dict[bytes, QuicConnection] = {}
        self._by_address: dict[Address, QuicConnection] = {}
        self.connections: list[QuicConnection] = []
        self.accepted: deque[QuicConnection] = deque()
        self._stateless: list[tuple[bytes, Address]] = []
        self.stateless_resets_sent = 0
        # Only connections that changed are flushed, and timers live in a heap, so one datagram costs
        # O(log n) for n connections, not O(n).
        self._dirty: dict[QuicConnection, None] = {}
        self._deadlines: dict[QuicConnection, float | None] = {}
        self._timer_heap: list[tuple[float, int, QuicConnection]] = []
        self._timer_seq = itertools.count()
        self.flushed: list[QuicConnection] = []
        """The connections the last :meth:`datagrams_to_send` went through (they may have events)."""

    # -- client side ------------------------------------------------------------------------------

    def connect(
        self, server_address: Address, now: float, *, server_name: str | None = None
    ) -> QuicConnection:
        """Start a client connection through this endpoint."""
        conn = QuicConnection.client(
            self.config,
            server_address=server_address,
            now=now,
            server_name=server_name,
            tls_config=self._tls_config,
        )
        self._add(conn)
        return conn

    # -- inputs -----------------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> QuicConnection | None:
        """Route one datagram; return the new connection if this datagram created one."""
        cid_length = self.config.connection_id_length
        if not data:
            return None
        if not data[0] & 0x80:
            conn = (
                self._routes.get(bytes(data[1 : 1 + cid_length]))
                if cid_length
                else self._by_address.get(addr)
            )
            if conn is not None:
                conn.receive_datagram(data, addr, now)
                self._dirty[conn] = None
            elif len(data) >= MIN_STATELESS_RESET_SIZE + cid_length:
                self._send_stateless_reset(data, addr, cid_length)
            return None
        try:
            header = parse_header(data, short_dcid_length=cid_length)
        except DecodeError:
            return None
        conn = self._routes.get(header.dcid) or (self._by_address.get(addr) if not header.dcid else None)
        if conn is not None:
            conn.receive_datagram(data, addr, now)
            self._dirty[conn] = None
            return None
        if self._tls_config is None or self._tls_config.is_client:
            return None
        if header.version not in SUPPORTED_VERSIONS:
            # RFC 9000 §6.1: answer unknown versions (only for datagrams big enough to be Initials).
            if header.version != 0 and len(data) >= MIN_INITIAL_DATAGRAM_SIZE:
                unused = self._randbytes(1)[0]
                packet = encode_version_negotiation(
                    header.scid, header.dcid, list(SUPPORTED_VERSIONS), unused
                )
                self._stateless.append((packet, addr))
            return None
        if header.packet_type is not PacketType.INITIAL or len(data) < MIN_INITIAL_DATAGRAM_SIZE:
            return None  # RFC 9000 §14.1: a server drops Initials in datagrams under 1200 bytes
        return self._accept(data, header.dcid, header.scid, header.token, header.version, addr, now)

    def _accept(
        self, data: bytes, dcid: bytes, scid: bytes, token: bytes, version: int, addr: Address, now: float
    ) -> QuicConnection | None:
        if len(dcid) < 8:
            return None  # RFC 9000 §7.2: a client's first DCID is at least 8 bytes
        original_dcid, retry_source, validated = dcid, None, False
        if self.config.retry:
            opened = (
                self._tokens.open(token, _address_bytes(addr), now, RETRY_TOKEN_LIFETIME) if token else None
            )
            if opened is None or not opened.retry:
                self._send_retry(dcid, scid, version, addr, now)
                return None
            original_dcid, retry_source, validated = opened.original_dcid, dcid, True
        tls_config = self._tls_config
        if tls_config is None:
            return None
        conn = QuicConnection.server(
            self.config,
            tls_config,
            client_address=addr,
            original_dcid=original_dcid,
            client_scid=scid,
            version=version,
            now=now,
            retry_source_cid=retry_source,
            reset_key=self._reset_key,
            address_validated=validated,
        )
        self._add(conn)
        self._routes[dcid] = conn  # the client keeps using its chosen DCID until it hears from us
        conn.receive_datagram(data, addr, now)
        self._dirty[conn] = None
        self.accepted.append(conn)
        return conn

    def _send_retry(self, dcid: bytes, scid: bytes, version: int, addr: Address, now: float) -> None:
        new_scid = self._randbytes(self.config.connection_id_length or 8)
        token = self._tokens.seal(_address_bytes(addr), dcid, now, retry=True)
        pseudo = encode_retry(version, scid, new_scid, token)
        tag = retry_integrity_tag(pseudo, dcid, version)
        self._stateless.append((pseudo + tag, addr))

    def _send_stateless_reset(self, data: bytes, addr: Address, cid_length: int) -> None:
        # RFC 9000 §10.3: looks like a short-header packet, smaller than what triggered it.
        dcid = bytes(data[1 : 1 + cid_length])
        size = min(len(data) - 1, 43)
        if size < MIN_STATELESS_RESET_SIZE:
            return
        body = bytearray(self._randbytes(size - 16))
        body[0] = 0x40 | (body[0] & 0x3F)
        self._stateless.append((bytes(body) + stateless_reset_token(self._reset_key, dcid), addr))
        self.stateless_resets_sent += 1

    def handle_timer(self, now: float) -> None:
        """Run the timers of every connection that is due."""
        heap = self._timer_heap
        while heap and heap[0][0] <= now:
            deadline, _, conn = heapq.heappop(heap)
            if self._deadlines.get(conn) != deadline:
                continue  # stale entry: that connection's timer moved
            self._deadlines[conn] = None
            conn.handle_timer(now)
            self._dirty[conn] = None

    # -- outputs ----------------------------------------------------------------------------------

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """Everything to send now: stateless packets, then the datagrams of every connection that
        received, timed out or was given a command since the last call."""
        out, self._stateless = self._stateless, []
        flushed = list(self._dirty)
        self._dirty.clear()
        for conn in flushed:
            out.extend(conn.datagrams_to_send(now))
            self._update_routes(conn)
            self._schedule(conn)
        self.flushed = flushed
        self._collect_closed(flushed)
        return out

    def next_timer(self) -> float | None:
        """The earliest timer of any connection."""
        heap = self._timer_heap
        while heap and self._deadlines.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _schedule(self, conn: QuicConnection) -> None:
        deadline = conn.next_timer()
        if deadline != self._deadlines.get(conn):
            self._deadlines[conn] = deadline
            if deadline is not None:
                heapq.heappush(self._timer_heap, (deadline, next(self._timer_seq), conn))

    # -- routing ----------------------------------------------------------------------------------

    def _add(self, conn: QuicConnection) -> None:
        self.connections.append(conn)
        self._dirty[conn] = None
        self._deadlines[conn] = None
        conn.set_activity_callback(partial(self._dirty.__setitem__, conn, None))
        for cid in conn.local_cids():
            self._routes[cid] = conn
        if not self.config.connection_id_length:
            self._by_address[conn.peer_address] = conn

    def _update_routes(self, conn: QuicConnection) -> None:
        for added, cid in conn.drain_cid_changes():
            if added:
                self._routes[cid] = conn
            elif self._routes.get(cid) is conn:
                del self._routes[cid]

    def _collect_closed(self, candidates: list[QuicConnection]) -> None:
        closed = [c for c in candidates if c.is_closed and c in self._deadlines]
        for conn in closed:
            self.connections.remove(conn)
            del self._deadlines[conn]
            conn.set_activity_callback(None)
            for cid in [cid for cid, owner in self._routes.items() if owner is conn]:
                del self._routes[cid]
            for addr in [a for a, owner in self._by_address.items() if owner is conn]:
                del self._by_address[addr]
