"""QuicEndpoint: many connections behind one UDP socket, without I/O (RFC 9000 §5.2, §6, §8.1, §10.3).

Owns routing datagrams to connections by destination connection ID, the per-connection bookkeeping of
one socket (routes, reset tokens, timers, handshakes in progress) and the caps on it, Version
Negotiation for unknown versions, and recognising stateless resets addressed to our connections.
What to answer a client we hold no state for (Retry, CONNECTION_REFUSED, stateless reset, address
tokens) is :class:`~rudp.quic.admission.Admission`'s. Connections do everything else.

Every per-connection structure here is keyed by the connection and released in O(its own CIDs) when
it closes, so a server that ran for a month holds what its live connections need, nothing more. A
server connection whose handshake has not completed and whose client has not been heard from (an
authenticated packet) for ``Config.handshake_timeout`` is dropped without a word (its client went
silent: the half-open slot goes back to real clients), as a TCP listener drops a SYN_RECV entry that
never sees the final ACK; one still talking is dropped ``HANDSHAKE_LIFETIME`` timeouts after its
acceptance (:mod:`rudp.quic.handshake_deadline` says why, and computes the deadline).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization

from rudp.codec.codes import SUPPORTED_VERSIONS, PacketType
from rudp.codec.packet import (
    MIN_INITIAL_DATAGRAM_SIZE,
    PacketHeader,
    encode_version_negotiation,
    parse_header,
)
from rudp.config import Config
from rudp.errors import DecodeError
from rudp.quic.admission import MIN_STATELESS_RESET_SIZE, Admission, Verdict
from rudp.quic.cids import RESET_TOKEN_SIZE
from rudp.quic.connection import QuicConnection
from rudp.quic.paths import Address
from rudp.tls.config import TlsConfig

MAX_ADDRESS_TOKENS = 256
"""(client) servers whose NEW_TOKEN token a Config keeps; the oldest is forgotten beyond it."""


@dataclass(slots=True, eq=False)
class _Entry:
    """What the endpoint holds for one connection (all of it goes when the connection does)."""

    cids: set[bytes] = field(default_factory=set)
    reset_tokens: tuple[bytes, ...] = ()
    reset_generation: int = -1  # the connection's peer_reset_tokens_generation they were read at
    address: Address | None = None  # routed by address (zero-length CIDs only)
    deadline: float | None = None
    handshaking: bool = False  # a server connection whose handshake is not complete yet
    handshake_deadline: float | None = None  # (server) dropped if still handshaking then
    address_token: bytes | None = None  # (client) the NEW_TOKEN token last stored in the Config
    routing_key: tuple[int, int, bytes | None] | None = None  # the connection's, when last routed


def _master_secret(tls_config: TlsConfig | None, randbytes: Callable[[int], bytes]) -> bytes:
    """The endpoint's secret for reset and address tokens: derived from the server's private key when
    there is one (stable across restarts), random otherwise."""
    key = None if tls_config is None or tls_config.is_client else tls_config.private_key
    if key is None:
        return randbytes(32)
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return hashlib.sha256(b"rudp endpoint master secret\x00" + der).digest()


class QuicEndpoint:
    """Demultiplexes datagrams of one socket to :class:`QuicConnection` objects.

    Use as a server (``tls_config`` with a certificate) or as a client (``connect``). After every
    input call :meth:`datagrams_to_send`, then :meth:`next_timer`; new server connections are
    returned by :meth:`receive_datagram` (the endpoint keeps no queue of them).
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
        self._is_server = tls_config is not None and not tls_config.is_client
        self._randbytes = randbytes or config.randbytes
        self.admission = Admission(config, _master_secret(tls_config, self._randbytes), self._randbytes)
        self._entries: dict[QuicConnection, _Entry] = {}
        self._routes: dict[bytes, QuicConnection] = {}
        self._by_address: dict[Address, QuicConnection] = {}
        self._by_reset_token: dict[bytes, QuicConnection] = {}
        self._handshakes = 0
        # Handshake deadlines in insertion order, which is deadline order: each is the time of
        # acceptance (or of the last packet heard, when one is re-queued at its deadline) plus one
        # fixed timeout, never earlier than the one before (see _accept, _expire_handshakes). The
        # earliest is the first; one completing or going is removed in O(1).
        self._handshake_deadlines: dict[QuicConnection, float] = {}
        self.connections_accepted = 0
        """Server connections created since the endpoint started."""
        self.handshakes_timed_out = 0
        """Server connections dropped because their client went silent for ``Config.handshake_timeout``
        before the handshake completed (half-open clients)."""
        self._stateless: list[tuple[bytes, Address]] = []
        self._stateless_sources: list[Address | None] = []
        # Only connections that changed are flushed, and timers live in a heap, so one datagram costs
        # O(log n) for n connections, not O(n).
        self._dirty: dict[QuicConnection, None] = {}
        self._timer_heap: list[tuple[float, int, QuicConnection]] = []
        self._timer_seq = itertools.count()
        self.flushed: list[QuicConnection] = []
        """The connections the last :meth:`datagrams_to_send` went through (they may have events)."""
        self.sources: list[Address | None] | None = None
        """For the datagrams the last :meth:`datagrams_to_send` returned, the local address each must
        leave from (one entry per datagram; None: the endpoint's main address), or None when all leave
        from the main address. An endpoint listening on several addresses (a server's preferred
        address, RFC 9000 §9.6) sends each datagram from the local address of its connection's path
        (:attr:`QuicConnection.datagram_sources`; stateless replies from where their trigger arrived)."""
        self.ecn_codepoint = 0
        """The ECN codepoint for the datagrams the last :meth:`datagrams_to_send` returned: ECT(0) if
        any connection with datagrams in it marks (RFC 9000 §13.4.2; the socket marks per batch, so a
        connection whose validation failed may see its packets marked when they share a batch with one
        that marks: extra marks only raise the peer's counts, which validation allows)."""

    @property
    def connections(self) -> list[QuicConnection]:
        """The connections of this socket (handshaking or established; closed ones are dropped)."""
        return list(self._entries)

    @property
    def handshakes_in_progress(self) -> int:
        """Server connections whose handshake has not completed yet."""
        return self._handshakes

    @property
    def stateless_resets_sent(self) -> int:
        """Stateless resets sent for datagrams of connections we do not know."""
        return self.admission.resets_sent

    def state_sizes(self) -> dict[str, int]:
        """The size of every per-connection structure (for tests and monitoring: each returns to its
        starting value when the connections go)."""
        return {
            "connections": len(self._entries),
            "routes": len(self._routes),
            "by_address": len(self._by_address),
            "reset_tokens": len(self._by_reset_token),
            "handshakes": self._handshakes,
            "handshake_deadlines": len(self._handshake_deadlines),
            "dirty": len(self._dirty),
            "timer_heap": len(self._timer_heap),
            "stateless_queue": len(self._stateless),
        }

    # -- client side ------------------------------------------------------------------------------

    def connect(
        self, server_address: Address, now: float, *, server_name: str | None = None
    ) -> QuicConnection:
        """Start a client connection through this endpoint (with the server's address token from an
        earlier connection, if this Config holds one)."""
        conn = QuicConnection.client(
            self.config,
            server_address=server_address,
            now=now,
            server_name=server_name,
            tls_config=self._tls_config,
            token=self.config.address_tokens.get(_server_key(server_address, self.config.version), b""),
        )
        self._add(conn)
        return conn

    # -- inputs -----------------------------------------------------------------------------------

    def receive_datagram(
        self, data: bytes, addr: Address, now: float, ecn: int = 0, *, local: Address | None = None
    ) -> QuicConnection | None:
        """Route one datagram; return the new connection if this datagram created one.

        ``ecn`` is the datagram's IP ECN codepoint (RFC 9000 §13.4.1; 0 = Not-ECT). ``local`` is the
        local address it arrived at when the endpoint listens on more than one (None: the main one):
        the connection's path to ``addr`` through it answers from there (:attr:`sources`).

        Never raises for bad input, and keeps no state for a datagram that is not routed to a
        connection and does not decrypt as a client's first Initial.
        """
        cid_length = self.config.connection_id_length
        if not data:
            return None
        if not data[0] & 0x80:
            conn = (
                self._routes.get(bytes(data[1 : 1 + cid_length]))
                if cid_length
                else self._by_address.get(addr)
            )
            if conn is None and len(data) >= MIN_STATELESS_RESET_SIZE:
                # RFC 9000 §10.3.1: an unroutable datagram may be a stateless reset for one of ours;
                # the connection compares the token in constant time.
                conn = self._by_reset_token.get(bytes(data[-RESET_TOKEN_SIZE:]))
            if conn is not None:
                conn.receive_datagram(data, addr, now, ecn, local=local)
                self._dirty[conn] = None
            elif len(data) >= MIN_STATELESS_RESET_SIZE + cid_length and self._is_server:
                reset = self.admission.stateless_reset(data, cid_length, now)
                if reset is not None:
                    self._reply(reset, addr, local)
            return None
        try:
            header = parse_header(data, short_dcid_length=cid_length)
        except DecodeError:
            return None
        conn = self._routes.get(header.dcid) or (self._by_address.get(addr) if not header.dcid else None)
        if conn is not None:
            conn.receive_datagram(data, addr, now, ecn, local=local, header=header)  # (parsed once)
            self._dirty[conn] = None
            return None
        if not self._is_server:
            return None
        if header.version not in SUPPORTED_VERSIONS:
            # RFC 9000 §6.1: answer unknown versions (only for datagrams big enough to be Initials).
            big_enough = len(data) >= MIN_INITIAL_DATAGRAM_SIZE
            if header.version != 0 and big_enough and self.admission.allow_reply(now):
                unused = self._randbytes(1)[0]
                packet = encode_version_negotiation(
                    header.scid, header.dcid, list(SUPPORTED_VERSIONS), unused
                )
                self._reply(packet, addr, local)
            return None
        if header.packet_type is not PacketType.INITIAL or len(data) < MIN_INITIAL_DATAGRAM_SIZE:
            return None  # RFC 9000 §14.1: a server drops Initials in datagrams under 1200 bytes
        if len(header.dcid) < 8:
            return None  # RFC 9000 §7.2: a client's first DCID is at least 8 bytes
        return self._accept(data, header, header.version, addr, now, ecn, local)

    def receive_datagrams(
        self,
        datagrams: Iterable[tuple[bytes | memoryview, Address, int]],
        now: float,
        *,
        local: Address | None = None,
    ) -> list[QuicConnection]:
        """Route the datagrams of one socket wake-up, each ``(data, peer address, ECN codepoint)``, all
        arrived at ``now`` at ``local``; return the connections they created.

        Exactly :meth:`receive_datagram` on each in turn, in order, except that consecutive short-header
        datagrams routed by connection ID to the same connection go to it in one
        :meth:`QuicConnection.receive_datagrams` call. ``data`` may be a view into a larger receive
        buffer (a GRO batch), read during the call only.
        """
        created: list[QuicConnection] = []
        cid_length = self.config.connection_id_length
        cid_end = 1 + cid_length
        routes = self._routes
        run: list[tuple[bytes | memoryview, Address, int]] = []
        run_conn: QuicConnection | None = None
        # The connection ID the last datagram of the run was routed by: a short-header datagram that
        # carries it goes to the same connection without a lookup (the routes do not change while a
        # run is collected: only a datagram of the general path below can add any).
        run_cid: bytes | tuple[bytes, ...] = ()  # (no prefix at all: nothing matches before a lookup)
        for item in datagrams:
            data = item[0]
            if type(data) is bytes and data.startswith(run_cid, 1) and data[0] < 0x80:
                run.append(item)
                continue
            if cid_length and data and not data[0] & 0x80:
                cid = data[1:cid_end]
                if type(cid) is not bytes:
                    cid = bytes(cid)
                conn = routes.get(cid)
                if conn is not None:
                    if conn is not run_conn:
                        if run_conn is not None:
                            self._receive_run(run_conn, run, now, local)
                        run_conn, run = conn, []
                    run_cid = cid
                    run.append(item)
                    continue
            if run_conn is not None:
                self._receive_run(run_conn, run, now, local)
                run_conn, run, run_cid = None, [], ()
            data, addr, ecn = item
            new = self.receive_datagram(
                data if type(data) is bytes else bytes(data), addr, now, ecn, local=local
            )
            if new is not None:
                created.append(new)
        if run_conn is not None:
            self._receive_run(run_conn, run, now, local)
        return created

    def _receive_run(
        self,
        conn: QuicConnection,
        run: list[tuple[bytes | memoryview, Address, int]],
        now: float,
        local: Address | None,
    ) -> None:
        conn.receive_datagrams(run, now, local)
        self._dirty[conn] = None

    def _reply(self, packet: bytes, addr: Address, local: Address | None) -> None:
        """Queue a stateless packet to ``addr`` from the local address its trigger reached."""
        self._stateless.append((packet, addr))
        self._stateless_sources.append(local)

    def _accept(
        self,
        data: bytes,
        header: PacketHeader,
        version: int,
        addr: Address,
        now: float,
        ecn: int = 0,
        local: Address | None = None,
    ) -> QuicConnection | None:
        admission = self.admission
        verdict, token, initial_read = admission.decide(
            data, header, addr, now, handshakes=self._handshakes, connections=len(self._entries)
        )
        if verdict is Verdict.RETRY:
            self._reply(admission.retry(header, addr, now), addr, local)
            return None
        if verdict is Verdict.REFUSE:
            refusal = admission.refusal(header, now)
            if refusal is not None:
                self._reply(refusal, addr, local)
            return None
        tls_config = self._tls_config
        if verdict is not Verdict.ACCEPT or tls_config is None:
            return None
        from_retry = token is not None and token.retry
        conn = QuicConnection.server(
            self.config,
            tls_config,
            client_address=addr,
            original_dcid=token.original_dcid if token is not None and from_retry else header.dcid,
            client_scid=header.scid,
            version=version,
            now=now,
            retry_source_cid=header.dcid if from_retry else None,
            reset_key=admission.reset_key,
            address_validated=token is not None,
            initial_read=initial_read,
        )
        entry = self._add(conn)
        self.connections_accepted += 1
        entry.handshaking = True
        self._handshakes += 1
        deadlines = self._handshake_deadlines
        deadline = now + self.config.handshake_timeout
        if deadlines:
            # Keep the dict in deadline order even if ``now`` or the timeout went backwards (a
            # timeout lowered at run time): a later client may then get slightly longer.
            deadline = max(deadline, deadlines[next(reversed(deadlines))])
        entry.handshake_deadline = deadlines[conn] = deadline
        # The client uses its chosen DCID until it hears from us (routed: _route, inline).
        self._routes[header.dcid] = conn
        entry.cids.add(header.dcid)
        conn.receive_datagram(data, addr, now, ecn, local=local, header=header)
        return conn

    def handle_timer(self, now: float) -> None:
        """Run the timers of every connection that is due, and drop the server connections whose
        handshake did not complete in time."""
        self._expire_handshakes(now)
        heap = self._timer_heap
        entries = self._entries
        while heap and heap[0][0] <= now:
            deadline, _, conn = heapq.heappop(heap)
            entry = entries.get(conn)
            if entry is None or entry.deadline != deadline:
                continue  # stale entry: that connection's timer moved, or it is gone
            entry.deadline = None
            conn.handle_timer(now)
            self._dirty[conn] = None

    # -- outputs ----------------------------------------------------------------------------------

    @property
    def changed(self) -> list[QuicConnection]:
        """The connections that received, timed out or were given a command since the last
        :meth:`datagrams_to_send`: those that may have new events."""
        return list(self._dirty)

    @property
    def stateless_pending(self) -> bool:
        """True when stateless packets (Retry, Version Negotiation, resets) wait for
        :meth:`datagrams_to_send`."""
        return bool(self._stateless)

    @property
    def output_pending(self) -> bool:
        """True when :meth:`datagrams_to_send` has work: a connection received, timed out or was given
        a command that made something due since the last call, or a stateless packet waits."""
        return bool(self._dirty or self._stateless)

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Address]]:
        """Everything to send now: stateless packets, then the datagrams of every connection that
        received, timed out or was given a command since the last call."""
        sources: list[Address | None] | None = None
        out: list[tuple[bytes, Address]] = []
        if self._stateless:  # (usually none: no lists to swap)
            out, self._stateless = self._stateless, out
            stateless_sources, self._stateless_sources = self._stateless_sources, []
            if any(source is not None for source in stateless_sources):
                sources = stateless_sources
        flushed = list(self._dirty)
        self._dirty.clear()
        entries = self._entries
        ecn = 0
        for conn in flushed:
            entry = entries.get(conn)
            if entry is None:
                continue
            if entry.handshaking and (conn.handshake_complete or conn.close_cause is not None):
                # (a connection that ended, closing or draining, is no handshake in progress: its
                # max_handshakes slot goes back now, not when its draining period is over)
                # (the handshake's end, inline: once per connection)
                entry.handshaking = False
                self._handshakes -= 1
                if entry.handshake_deadline is not None:  # (_forget_handshake_deadline, inline)
                    entry.handshake_deadline = None
                    self._handshake_deadlines.pop(conn, None)
                if conn.handshake_complete and conn.close_cause is None:
                    # RFC 9000 §8.1.3: a token for the client's next connection, so it skips the Retry.
                    conn.send_new_token(self.admission.new_token(conn.peer_address, now, conn.version))
            datagrams = conn.datagrams_to_send(now)
            if datagrams:
                conn_sources = conn.datagram_sources
                if conn_sources is not None or sources is not None:
                    sources = self._sources_of(conn_sources, len(datagrams), len(out), sources)
                out.extend(datagrams)
                ecn |= conn.ecn_codepoint
            if conn.routing_key() != entry.routing_key:  # (usually equal: nothing to read)
                self._update_routes(conn, entry)
                entry.routing_key = conn.routing_key()
            if conn.is_closed:
                self._remove(conn, entry)
            else:
                self._schedule(conn, entry)
        self.flushed = flushed
        self.ecn_codepoint = ecn
        if sources is not None and len(sources) < len(out):
            sources.extend([None] * (len(out) - len(sources)))
        self.sources = sources
        return out

    @staticmethod
    def _sources_of(
        conn_sources: list[Address | None] | None,
        count: int,
        before: int,
        sources: list[Address | None] | None,
    ) -> list[Address | None]:
        """``sources`` (made if None) extended up to ``before`` and then with the source of each of a
        connection's ``count`` datagrams: its path's local address (None: the main one)."""
        if sources is None:
            sources = []
        if len(sources) < before:
            sources.extend([None] * (before - len(sources)))
        sources.extend(conn_sources if conn_sources is not None else [None] * count)
        return sources

    def next_timer(self) -> float | None:
        """The earliest timer of any connection, or handshake deadline."""
        heap = self._timer_heap
        entries = self._entries
        earliest = None
        while heap:
            entry = entries.get(heap[0][2])
            if entry is not None and entry.deadline == heap[0][0]:
                earliest = heap[0][0]
                break
            heapq.heappop(heap)
        deadlines = self._handshake_deadlines
        if deadlines:
            first = deadlines[next(iter(deadlines))]
            if earliest is None or first < earliest:
                return first
        return earliest

    def _expire_handshakes(self, now: float) -> None:
        """Drop every server connection still handshaking past its deadline whose client has been
        silent since ``handshake_timeout`` before now: silently, as an idle
        timeout discards a connection (RFC 9000 §10.1; its client is gone or never was, and half-open
        state is what a handshake flood spends, §21.2), routes, tokens and its handshake slot released
        at the next flush. One heard from since is queued again, at the end. O(1) per connection."""
        deadlines = self._handshake_deadlines
        while deadlines:
            conn = next(iter(deadlines))
            if deadlines[conn] > now:
                return
            del deadlines[conn]
            entry = self._entries.get(conn)
            if entry is None:
                continue
            entry.handshake_deadline = None
            if conn.handshake_complete or conn.is_closed:
                self._dirty[conn] = None  # completed just now: the next flush ends the handshake
                continue
            # The client's last authenticated packet plus one timeout, capped at HANDSHAKE_LIFETIME
            # timeouts after acceptance (Initial keys are public, RFC 9001 §5.2).
            heard_until = conn.handshake_deadline
            if heard_until is not None and heard_until > now:
                # Not silent: its probes still arrive (RFC 9002 §6.2.2.1). Queued again at the end,
                # never before the last deadline, so the dict stays in deadline order.
                last = deadlines[next(reversed(deadlines))] if deadlines else now
                entry.handshake_deadline = deadlines[conn] = max(heard_until, last)
                continue
            conn.abandon("handshake timeout", now)
            entry.deadline = None  # its queued timers are stale now: they never run
            self.handshakes_timed_out += 1
            self._dirty[conn] = None  # the next flush reports its end and forgets it

    def _schedule(self, conn: QuicConnection, entry: _Entry) -> None:
        deadline = conn.next_timer()
        if deadline != entry.deadline:
            entry.deadline = deadline
            if deadline is not None:
                heap = self._timer_heap
                heapq.heappush(heap, (deadline, next(self._timer_seq), conn))
                if len(heap) > 2 * len(self._entries) + 64:
                    self._compact_timers()

    def _compact_timers(self) -> None:
        # Stale entries (timers that moved) would otherwise pile up until their time comes.
        self._timer_heap = [
            (entry.deadline, next(self._timer_seq), conn)
            for conn, entry in self._entries.items()
            if entry.deadline is not None
        ]
        heapq.heapify(self._timer_heap)

    # -- routing ----------------------------------------------------------------------------------

    def _add(self, conn: QuicConnection) -> _Entry:
        entry = _Entry()
        self._entries[conn] = entry
        self._dirty[conn] = None
        conn.set_activity_callback(self._dirty.setdefault)  # dirty[conn] = None
        routes, cids = self._routes, entry.cids
        for cid in conn.local_cids():  # (_route, inline: once per connection)
            routes[cid] = conn
            cids.add(cid)
        if not self.config.connection_id_length:
            entry.address = conn.peer_address
            self._by_address[conn.peer_address] = conn
        return entry

    def _update_routes(self, conn: QuicConnection, entry: _Entry) -> None:
        routes = self._routes
        for added, cid in conn.drain_cid_changes():
            if added:  # (_route, inline: a server issues several CIDs at once)
                routes[cid] = conn
                entry.cids.add(cid)
            else:
                entry.cids.discard(cid)
                if routes.get(cid) is conn:
                    del routes[cid]
        generation = conn.peer_reset_tokens_generation
        if generation != entry.reset_generation:  # read only when they changed, not on every flush
            entry.reset_generation = generation
            tokens = conn.peer_reset_tokens()
            if entry.reset_tokens:  # (none the first time: no call)
                self._drop_reset_tokens(conn, entry)
            entry.reset_tokens = tokens
            for token in tokens:
                self._by_reset_token[token] = conn
        new_token = conn.new_token if conn.is_client else None
        if new_token is not None and new_token is not entry.address_token:
            entry.address_token = new_token  # stored once per NEW_TOKEN, not on every flush
            self._keep_address_token(_server_key(conn.peer_address, conn.version), new_token)

    def _forget_handshake_deadline(self, conn: QuicConnection, entry: _Entry) -> None:
        if entry.handshake_deadline is not None:
            entry.handshake_deadline = None
            self._handshake_deadlines.pop(conn, None)

    def _drop_reset_tokens(self, conn: QuicConnection, entry: _Entry) -> None:
        for token in entry.reset_tokens:
            if self._by_reset_token.get(token) is conn:
                del self._by_reset_token[token]

    def _keep_address_token(self, key: str, token: bytes) -> None:
        tokens = self.config.address_tokens
        tokens.pop(key, None)
        tokens[key] = token
        while len(tokens) > MAX_ADDRESS_TOKENS:
            del tokens[next(iter(tokens))]

    def _remove(self, conn: QuicConnection, entry: _Entry) -> None:
        """Forget a closed connection: O(its own CIDs and tokens), whatever the size of the tables."""
        del self._entries[conn]
        self._dirty.pop(conn, None)
        conn.set_activity_callback(None)
        if entry.handshaking:
            entry.handshaking = False
            self._handshakes -= 1
        self._forget_handshake_deadline(conn, entry)
        for cid in entry.cids:
            if self._routes.get(cid) is conn:
                del self._routes[cid]
        self._drop_reset_tokens(conn, entry)
        if entry.address is not None and self._by_address.get(entry.address) is conn:
            del self._by_address[entry.address]


def _server_key(server: Address, version: int) -> str:
    """The key of ``Config.address_tokens``: a token is for one server and one QUIC version (RFC 9369
    §5: kept from a connection of its Negotiated Version, presented only by one starting in it)."""
    return f"{server[0]} {server[1]} {version:#x}"
