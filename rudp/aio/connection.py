"""Connection: the public asyncio connection object, the same for QUIC and the TCP baseline.

Owns the application-facing view of one connection: opening and accepting streams, datagrams, pings,
closing, and turning core events into wake-ups of the right :class:`~rudp.aio.stream.Stream` or waiter.
It does not own sockets or timers (the link does, see :mod:`rudp.aio.driver`) nor protocol state (the
sans-IO core does).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from rudp.aio.driver import Address, ConnectionDriver
from rudp.aio.stream import Stream, Wakeup
from rudp.errors import (
    ConnectionClosed,
    ConnectionRefused,
    HandshakeFailed,
    RudpError,
    StreamLimitReached,
    TransportErrorCode,
    fresh_close_error,
)
from rudp.quic.events import (
    ConnectionTerminated,
    DatagramReceived,
    Event,
    HandshakeCompleted,
    PingAcknowledged,
    StopSendingReceived,
    StreamOpened,
    StreamReadable,
    StreamReset,
    StreamsAvailable,
    StreamWritable,
)
from rudp.quic.stats import ConnectionStats

if TYPE_CHECKING:
    from cryptography import x509

    from rudp.quic.connection import QuicConnection

MAX_QUEUED_DATAGRAMS = 1024
"""Received datagrams kept for :meth:`Connection.receive_datagram`; older ones are dropped beyond it."""


class Connection:
    """One established (or establishing) connection: streams, datagrams, pings and closing.

    Obtained from ``rudp.connect()`` or passed to a ``rudp.serve()`` handler; never construct it
    directly. ``async with conn:`` closes it on exit. ``async for stream in conn`` yields the streams
    the peer opens until the connection closes.

    Once the connection is closed (by either side, a failure or the idle timeout), nothing waits any
    more: every pending call (``accept_stream``, ``receive_datagram``, ``open_stream``, ``ping``, and a
    stream's ``read``/``readexactly``/``readuntil``/``drain``) fails at once with the close error
    (:attr:`close_error`, a :class:`~rudp.errors.ConnectionClosed` carrying code, reason and
    ``by_peer``), and so does every later call that would have to wait or send. What had fully arrived
    before the close is still handed out first, as ``asyncio.StreamReader`` does with buffered data:
    streams the peer opened and data they carried (even when the close came in the same packet),
    received datagrams, and a stream's buffered bytes (a stream whose FIN had arrived reads to its end
    normally; one without raises the close error after its last byte).
    """

    def __init__(self, driver: ConnectionDriver, *, is_client: bool) -> None:
        self._driver = driver
        self._is_client = is_client
        # Streams the application dropped are forgotten, except while they still have data queued
        # (``_busy`` holds those). Weak references in a plain dict, each entry removed by its stream's
        # ``__del__`` (:meth:`_forget_stream`): a WeakValueDictionary costs four Python calls per
        # stream and one per look-up (issue 13: two streams per small request).
        self._streams: dict[int, weakref.ref[Stream]] = {}
        self._busy: set[Stream] = set()
        self._delivery_waiters: set[asyncio.Future[None]] = set()
        """Futures of the :meth:`_wait_delivered` calls in progress (several tasks may close at once)."""
        self._incoming: deque[Stream] = deque()
        self._incoming_event = Wakeup()  # (no asyncio.Event: one wait per incoming stream)
        self._datagrams: deque[bytes] = deque(maxlen=MAX_QUEUED_DATAGRAMS)
        # Wakeups, not asyncio.Events (each of which runs Python code to make): few connections ever
        # wait for a datagram or a stream credit, and every waiter re-checks its condition.
        self._datagram_event = Wakeup()
        self._streams_available = {True: Wakeup(), False: Wakeup()}
        self._pings: dict[int, asyncio.Future[None]] = {}
        self._established = driver.core.handshake_complete
        self._terminated = False
        self._state_changed = Wakeup()
        """Wakes :meth:`wait_established` and :meth:`wait_closed` (flags and one Wakeup, not two asyncio
        Events: most connections never wait on them)."""
        self._error: ConnectionClosed | None = None
        self._on_established: list[Callable[[Connection], None]] = []
        self._on_terminated: list[Callable[[Connection], None]] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []  # awaited by wait_closed (sockets)
        driver.sink = self

    # ------------------------------------------------------------------ properties

    @property
    def is_client(self) -> bool:
        """True on the side that called ``connect()``."""
        return self._is_client

    @property
    def alpn_protocol(self) -> str | None:
        """The negotiated ALPN protocol (None before the handshake completes)."""
        return self._driver.core.alpn_protocol

    @property
    def peer_address(self) -> Address:
        """The peer's current (host, port)."""
        return self._driver.core.peer_address

    @property
    def session_resumed(self) -> bool:
        """True when the handshake resumed an earlier session from a ticket."""
        return self._driver.core.session_resumed

    @property
    def zero_rtt_accepted(self) -> bool:
        """True when the server accepted 0-RTT early data."""
        return self._driver.core.early_data_accepted

    @property
    def cipher_suite(self) -> str | None:
        """The negotiated TLS cipher suite (e.g. ``"TLS_AES_128_GCM_SHA256"``); None over TCP."""
        core = self._quic_core()
        suite = None if core is None else core.cipher_suite
        return None if suite is None else f"TLS_{suite.name}"

    @property
    def peer_certificate(self) -> x509.Certificate | None:
        """The certificate the peer presented (a client's only with ``Config.client_auth``), over
        either transport."""
        return self._peer_certificate_any_transport()

    @property
    def version(self) -> int | None:
        """The QUIC version in use (``0x1`` or ``0x6b3343cf`` for v2); None over the TCP baseline."""
        core = self._quic_core()
        return None if core is None else core.version

    def request_key_update(self) -> bool:
        """Start a 1-RTT key update (RFC 9001 §6); False if one cannot start yet (handshake not
        confirmed, or the previous update not yet acknowledged).

        Raises:
            RudpError: over the TCP baseline (TLS over TCP has no QUIC key update).
        """
        core = self._quic_core()
        if core is None:
            raise RudpError("key updates need the QUIC transport")
        started = core.request_key_update()
        if started:
            self._driver.after_command()
        return started

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Details with the names of ``asyncio.Transport.get_extra_info()``, the same on both transports.

        ``"peername"`` and ``"sockname"``: (host, port) tuples (a QUIC server bound to a wildcard
        address reports that address as ``sockname``); ``"cipher"``: ``(name, "TLSv1.3", secret bits)``
        as ``ssl.SSLSocket.cipher()``; ``"peercert"``: the peer's certificate as the dictionary
        ``ssl.SSLSocket.getpeercert()`` returns (None when the peer sent none). Other names, and
        details not known yet, give ``default``.
        """
        from rudp.aio.info import cipher_tuple, ssl_style_certificate

        link = self._driver.link
        value: Any = None
        if name == "peername":
            value = self.peer_address
        elif name == "sockname":
            value = getattr(link, "sockname", None)
        elif name == "cipher":
            core = self._quic_core()
            if core is None:
                value = getattr(link, "tls_cipher", None)
            elif core.cipher_suite is not None:
                value = cipher_tuple(core.cipher_suite)
        elif name == "peercert":
            certificate = self._peer_certificate_any_transport()
            value = None if certificate is None else ssl_style_certificate(certificate)
        return default if value is None else value

    def _peer_certificate_any_transport(self) -> x509.Certificate | None:
        core = self._quic_core()
        if core is not None:
            return core.peer_certificate
        der = getattr(self._driver.link, "peer_certificate_der", None)
        if not der:
            return None
        from cryptography import x509 as x509_module

        return x509_module.load_der_x509_certificate(der)

    def _quic_core(self) -> QuicConnection | None:
        from rudp.quic.connection import QuicConnection

        core = self._driver.core
        return core if isinstance(core, QuicConnection) else None

    @property
    def stats(self) -> ConnectionStats:
        """A snapshot of the connection's statistics (RTT, window, packets, bytes...)."""
        return self._driver.core.stats

    @property
    def is_established(self) -> bool:
        """True once the handshake completed."""
        return self._established

    @property
    def is_closed(self) -> bool:
        """True once the connection ended (closed by either side, failed or timed out)."""
        return self._error is not None

    @property
    def close_error(self) -> ConnectionClosed | None:
        """Why the connection ended (code, reason, by_peer), or None while it is alive."""
        return self._error

    @property
    def peer_accepts_datagrams(self) -> bool:
        """True when the peer announced it receives datagrams (RFC 9221 §3: it sent the
        max_datagram_frame_size transport parameter; over TCP, a datagram size in its HELLO). False
        until the peer's parameters are known."""
        quic = self._quic_core()
        if quic is not None:
            return quic.peer_max_datagram_frame_size is not None
        hello = getattr(self._driver.core, "_peer_hello", None)
        return hello is not None and hello.max_datagram_bytes > 0

    @property
    def datagrams_enabled(self) -> bool:
        """True when both endpoints enabled datagrams (``Config.datagrams`` here, and
        :attr:`peer_accepts_datagrams`), so :meth:`send_datagram` can succeed."""
        quic = self._quic_core()
        if quic is not None:
            return quic.datagrams_enabled
        config = getattr(self._driver.core, "_config", None)
        return bool(getattr(config, "datagrams", False)) and self.peer_accepts_datagrams

    # ------------------------------------------------------------------ streams

    async def open_stream(self, *, wait: bool = True) -> Stream:
        """Open a bidirectional stream.

        When the peer's stream limit (MAX_STREAMS) is reached, waits for it to rise (or raises
        :class:`StreamLimitReached` with ``wait=False``). Before the handshake completes it waits for
        the peer's limits, unless 0-RTT lets the stream be used early.

        Raises:
            StreamLimitReached: the limit is reached and ``wait`` is False.
            ConnectionClosed: the connection is closed.
        """
        return await self._open(bidirectional=True, wait=wait)

    async def open_uni_stream(self, *, wait: bool = True) -> Stream:
        """Open a unidirectional (send-only) stream; as :meth:`open_stream`.

        Raises:
            StreamLimitReached: the limit is reached and ``wait`` is False.
            ConnectionClosed: the connection is closed.
        """
        return await self._open(bidirectional=False, wait=wait)

    async def _open(self, *, bidirectional: bool, wait: bool) -> Stream:
        core = self._driver.core
        while True:
            self._raise_if_closed()
            try:
                stream_id = core.open_stream(bidirectional=bidirectional)
            except StreamLimitReached:
                self._driver.after_command()  # STREAMS_BLOCKED was queued
                if not wait:
                    raise
                await self._streams_available[bidirectional].wait()
                continue
            return self._new_stream(stream_id)

    async def accept_stream(self) -> Stream:
        """Wait for the next stream opened by the peer.

        Raises:
            ConnectionClosed: the connection is closed and no stream the peer opened is left (those that
                arrived before the close, even in the packet that carried it, are still returned first;
                their reads fail with the close error after their buffered bytes).
        """
        while not self._incoming:
            self._raise_if_closed()
            await self._incoming_event.wait()
        return self._incoming.popleft()

    def __aiter__(self) -> Connection:
        """Iterate over the streams the peer opens; ends when the connection closes."""
        return self

    async def __anext__(self) -> Stream:
        """The next incoming stream; StopAsyncIteration once the connection is closed."""
        # (accept_stream's loop, without making the close error only to turn it into StopAsyncIteration)
        while not self._incoming:
            if self._error is not None:
                raise StopAsyncIteration
            await self._incoming_event.wait()
        return self._incoming.popleft()

    # ------------------------------------------------------------------ datagrams and pings

    def send_datagram(self, data: bytes) -> None:
        """Send an unreliable datagram (RFC 9221; ``Config.datagrams`` must be on at both ends).

        Over the TCP baseline datagrams are delivered reliably and in order (see
        :class:`~rudp.errors.DatagramError` for why); the same misuse raises the same error.

        Raises:
            DatagramError: datagrams are not enabled by both sides, or ``data`` is too large.
            ConnectionClosed: the connection is closed.
        """
        self._raise_if_closed()
        self._driver.core.send_datagram(bytes(data))
        self._driver.after_command()

    async def receive_datagram(self) -> bytes:
        """Wait for the next datagram from the peer.

        Raises:
            ConnectionClosed: the connection closed and no datagram is left.
        """
        while not self._datagrams:
            self._raise_if_closed()
            await self._datagram_event.wait()
        return self._datagrams.popleft()

    async def ping(self) -> float:
        """Send a PING and wait for its acknowledgement; return the round-trip time in seconds.

        Raises:
            ConnectionClosed: the connection closed before the acknowledgement.
        """
        self._raise_if_closed()
        loop = asyncio.get_running_loop()
        started = loop.time()
        uid = self._driver.core.ping()
        future: asyncio.Future[None] = loop.create_future()
        self._pings[uid] = future
        self._driver.after_command()
        try:
            await future
        finally:
            self._pings.pop(uid, None)
        return loop.time() - started

    # ------------------------------------------------------------------ closing

    async def migrate(self) -> Address:
        """Move this client connection to a new local address (a new UDP socket): QUIC only.

        The server sees packets from a new address and a new connection ID, validates the path and
        the connection carries on (RFC 9000 §9) — what TCP cannot do. Returns the new local address.

        Raises:
            RudpError: over the TCP baseline, on a server connection, or before the handshake is
                confirmed.
            NetworkError: the new socket cannot be opened.
            ConnectionClosed: the connection is closed.
        """
        self._raise_if_closed()
        from rudp.aio.endpoint import UdpEndpoint

        link, core = self._driver.link, self._quic_core()
        if not isinstance(link, UdpEndpoint) or core is None:
            raise RudpError("connection migration needs the QUIC transport")
        return await link.migrate(core)

    def close(self, code: int = 0, reason: str = "") -> None:
        """Close the connection with an application error ``code`` and ``reason``; idempotent.

        Unsent stream data is abandoned (QUIC semantics): drain and read what matters first. Blocked
        readers and writers get :class:`ConnectionClosed`.
        """
        if self._error is not None:
            return
        self._driver.core.close(code, reason)
        self._driver.after_command()

    async def aclose(self, code: int = 0, reason: str = "", *, linger: float = 10.0) -> None:
        """Close gracefully: wait until the peer has everything written on streams (acknowledged over
        QUIC, handed to the socket over TCP; at most ``linger`` seconds), then close with ``code`` and
        ``reason`` and wait until the connection ended. Idempotent; returns at once once closed.

        This is what a server does when its handler returns; an application protocol closes this way
        with its own "no error" code (HTTP/3: H3_NO_ERROR, RFC 9114 §8.1).
        """
        if self._error is None:
            await self._wait_delivered(linger)
            self.close(code, reason)
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the connection ended (by either side, an error or the idle timeout).

        For a client connection this also waits until its socket is released.
        """
        while not self._terminated:
            await self._state_changed.wait()
        for closer in self._closers:
            await closer()

    async def wait_established(self) -> None:
        """Wait for the handshake to complete.

        Raises:
            HandshakeFailed: the handshake failed (the code carries the TLS alert or transport error).
            ConnectionClosed: the connection closed first.
        """
        while not self._established:
            self._raise_if_closed()
            await self._state_changed.wait()

    async def _wait_delivered(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until everything written on streams has been delivered,
        or the connection ended; True if it was delivered (see :meth:`_delivered`).

        Checked after each transmission of the link (no polling): an acknowledgement from the peer is
        an input, and every input is followed by a dispatch.
        """
        if self._error is None and not self._delivered():
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._delivery_waiters.add(done)
            self._driver.on_dispatched = self._check_delivered
            try:
                await asyncio.wait_for(done, timeout)
            except TimeoutError:
                pass
            finally:
                self._delivery_waiters.discard(done)
                if not self._delivery_waiters:
                    self._driver.on_dispatched = None
        return self._error is None and self._delivered()

    def _check_delivered(self) -> None:
        """After a dispatch: wake every :meth:`_wait_delivered` once delivered (or closed)."""
        if self._error is not None or self._delivered():
            for waiter in self._delivery_waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def _delivered(self) -> bool:
        """True when no stream data, FIN or reset written by the application still waits to reach the
        peer: nothing in the streams' local queues, no command output left untransmitted, and the core
        holds nothing undelivered. QUIC: every STREAM byte acknowledged and nothing in flight (so FINs
        and resets were acknowledged too); TCP: everything handed to the socket, which delivers it
        before the CLOSE that follows."""
        if self._busy or self._driver.unflushed:
            return False
        core = self._driver.core
        quic = self._quic_core()
        if quic is not None:
            stats = quic.stats
            return stats.send_buffered_bytes == 0 and stats.bytes_in_flight == 0
        from rudp.tcp.mux import TcpMux

        if isinstance(core, TcpMux):
            return core.send_settled
        return core.stats.send_buffered_bytes == 0

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()

    def _raise_if_closed(self) -> None:
        if self._error is not None:
            raise fresh_close_error(self._error)

    def _abort(self, error: ConnectionClosed) -> None:
        """End the connection locally with ``error`` as the cause seen by the API (link failures)."""
        if self._error is not None:
            return
        self._error = error
        self._driver.core.close(error.code, error.reason, application=error.application)
        self._driver.after_command()

    def _add_established_callback(self, callback: Callable[[Connection], None]) -> None:
        if self._established:
            callback(self)
        else:
            self._on_established.append(callback)

    def _add_terminated_callback(self, callback: Callable[[Connection], None]) -> None:
        if self._terminated:
            callback(self)
        else:
            self._on_terminated.append(callback)

    def _add_closer(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Make :meth:`wait_closed` also await ``closer()`` (used by transports owning a socket)."""
        self._closers.append(closer)

    # ------------------------------------------------------------------ events (EventSink)

    def handle_event(self, event: Event) -> None:
        """Apply one core event (called by the driver; not for applications)."""
        match event:
            case StreamReadable(stream_id=sid):
                ref = self._streams.get(sid)
                stream = ref() if ref is not None else None  # (self._stream, inline: per request)
                if stream is not None:
                    stream._on_readable()
            case StreamWritable(stream_id=sid):
                stream = self._stream(sid)
                if stream is not None:
                    stream._on_writable()
            case StreamOpened(stream_id=sid):
                # May follow ConnectionTerminated (a packet with STREAM then CONNECTION_CLOSE): the new
                # stream then starts closed, so its reader gets the data and the error, never a wait.
                self._incoming.append(self._new_stream(sid))
                self._incoming_event.set()
                if not self._is_client and not self._established:
                    # 0-RTT: the client's early request is here before the handshake ends. Start the
                    # server's handler now, or 0-RTT would save nothing (early data may be replayed:
                    # RFC 9001 §9.2; rudp's server accepts each ticket's 0-RTT once).
                    self._run_established_callbacks()
            case StreamReset(stream_id=sid, error_code=code):
                stream = self._stream(sid)
                if stream is not None:
                    stream._on_peer_reset(code)
            case StopSendingReceived(stream_id=sid, error_code=code):
                stream = self._stream(sid)
                if stream is not None:
                    stream._on_peer_stop(code)
            case StreamsAvailable(bidirectional=bidi):
                self._streams_available[bidi].set()
            case DatagramReceived(data=data):
                self._datagrams.append(data)
                self._datagram_event.set()
            case PingAcknowledged(uid=uid):
                future = self._pings.pop(uid, None)
                if future is not None and not future.done():
                    future.set_result(None)
            case HandshakeCompleted():
                if not self._established:  # (once per connection: setting it established, inline)
                    self._established = True
                    if self._state_changed:
                        self._state_changed.set()
                    self._run_established_callbacks()
            case ConnectionTerminated():
                self._on_connection_terminated(event)

    def _run_established_callbacks(self) -> None:
        callbacks, self._on_established = self._on_established, []
        if self._error is not None:
            return  # ended before the application saw it: no handler for a closed connection
        for callback in callbacks:
            callback(self)

    def _new_stream(self, stream_id: int) -> Stream:
        """The Stream object of a stream just opened (by either side), closed at once if we are."""
        stream = Stream(self._driver, stream_id, is_client=self._is_client, busy=self._busy, connection=self)
        self._streams[stream_id] = weakref.ref(stream)
        if self._error is not None:
            stream._on_connection_closed(self._error)
        return stream

    def _stream(self, stream_id: int) -> Stream | None:
        """The live Stream object of ``stream_id``, or None (never opened here, or dropped)."""
        ref = self._streams.get(stream_id)
        return ref() if ref is not None else None

    def _live_streams(self) -> list[Stream]:
        """Every Stream object of this connection the application still holds (or that has data
        queued)."""
        return [stream for ref in list(self._streams.values()) if (stream := ref()) is not None]

    def _forget_stream(self, stream_id: int) -> None:
        """Called by a Stream as it is destroyed: drop its entry (stream IDs are never reused)."""
        self._streams.pop(stream_id, None)

    def _on_connection_terminated(self, event: ConnectionTerminated) -> None:
        if self._error is None:
            kind: type[ConnectionClosed] = ConnectionClosed
            if not self._established:
                refused = event.code == TransportErrorCode.CONNECTION_REFUSED and not event.application
                kind = ConnectionRefused if refused else HandshakeFailed
            self._error = kind(event.code, event.reason, by_peer=event.by_peer, application=event.application)
        error = self._error
        if self._streams:  # (most connections end with none left: no list of them to make)
            for stream in self._live_streams():
                stream._on_connection_closed(error)
        if self._pings:
            for future in self._pings.values():
                if not future.done():
                    future.set_exception(fresh_close_error(error))
            self._pings.clear()
        self._terminated = True
        available = self._streams_available
        wakeups = (self._incoming_event, self._datagram_event, *available.values(), self._state_changed)
        for waiter in wakeups:
            if waiter:  # (someone waits: most connections have nobody on most of these)
                waiter.set()
        callbacks, self._on_terminated = self._on_terminated, []
        for callback in callbacks:
            callback(self)

    def __repr__(self) -> str:
        state = "closed" if self.is_closed else "established" if self.is_established else "handshaking"
        return f"<rudp.Connection {'client' if self._is_client else 'server'} {state} {self.peer_address}>"


__all__ = ["MAX_QUEUED_DATAGRAMS", "Connection"]
