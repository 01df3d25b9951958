"""TcpMux: the sans-IO TCP baseline connection: QUIC's stream API multiplexed over one byte stream.

Owns the connection-level behaviour of the baseline: the HELLO exchange, stream creation and limits,
routing of :mod:`rudp.tcp.framing` frames to streams, output scheduling, pings and RTT, idle timeout,
keep-alive and close. Per-stream buffers and credit live in :mod:`rudp.tcp.streams`; TLS and the socket
belong to :mod:`rudp.aio.tcp`, which creates the mux once the TLS handshake is done.

It offers the same commands and events as :class:`~rudp.quic.connection.QuicConnection` (the
``StreamCore`` contract of ``rudp.aio.driver``); only the I/O differs: feed the bytes TLS decrypted to
:meth:`TcpMux.receive_data` and write :meth:`TcpMux.data_to_send` to TLS. After every input or command,
call ``data_to_send()``, then ``next_timer()``, then ``next_event()`` until None.

Protocol rules (the wire format is in :mod:`rudp.tcp.framing`):

- Each side sends HELLO first; any other first frame is a PROTOCOL_VIOLATION. So that HELLO costs no
  round trip, a sender assumes the peer grants :data:`STREAM_WINDOW_FLOOR` bytes per stream and
  :data:`STREAM_COUNT_FLOOR` streams of each kind until the peer's HELLO arrives, and every endpoint
  advertises (and enforces) at least those floors, whatever its Config says.
- Stream IDs are numbered as in QUIC (RFC 9000 §2.1); a frame for a new peer stream opens it and every
  lower-numbered stream of its kind, up to the stream count we allow (STREAM_LIMIT_ERROR beyond it). A
  peer stream closed both ways gives the peer one more stream with MAX_STREAMS.
- STOP is answered with a RESET carrying the same code; a RESET's final size must equal the bytes
  received (TCP delivers everything in order).
- Datagrams are delivered reliably and in order (TCP has no other kind); they must be enabled on both
  sides, as in QUIC. Queued datagrams beyond :data:`MAX_QUEUED_DATAGRAMS` are dropped (oldest first).
- A malformed or illegal frame closes the connection with a CLOSE frame carrying the transport error
  code and a :class:`ConnectionTerminated` event; no exception escapes :meth:`TcpMux.receive_data`.
"""

from __future__ import annotations

from typing import Final

from rudp.codec.buffer import Writer
from rudp.config import Config
from rudp.errors import DatagramError, StreamLimitReached, StreamStateError, TransportError
from rudp.errors import TransportErrorCode as Code
from rudp.quic.events import ConnectionTerminated, Event, StreamWritable
from rudp.quic.stats import ConnectionStats
from rudp.quic.streams.ids import make_stream_id
from rudp.tcp.framing import Close, Data, Datagram, MaxStreams, Ping, write_frame
from rudp.tcp.receive import ReceiveMixin
from rudp.tcp.state import STREAM_COUNT_FLOOR, STREAM_WINDOW_FLOOR, KernelInfoSource, KernelTcpInfo

CHUNK_BYTES: Final = 16 * 1024
"""Largest DATA payload written: streams take turns in chunks of this size."""
MAX_QUEUED_DATAGRAMS: Final = 256
"""Datagrams held for sending at most; older ones are dropped."""
LOST_CODE: Final = Code.NO_VIABLE_PATH
"""Code of the ConnectionTerminated reported when TCP dies without a CLOSE."""


class TcpMux(ReceiveMixin):
    """One TCP baseline connection, client or server, as a pure state machine.

    Create it when the TLS handshake has completed; it queues its HELLO and a
    :class:`~rudp.quic.events.HandshakeCompleted` event right away.

    Args:
        config: limits (windows, stream counts, send buffer, datagrams, idle timeout, keep-alive).
        is_client: our role (decides stream numbering).
        now: the current time (seconds on the caller's monotonic clock).
        alpn_protocol: the protocol TLS negotiated, reported in events and :attr:`alpn_protocol`.
        peer_address: the peer's (host, port), reported by :attr:`peer_address`.
        session_resumed: TLS resumed a session (reported by :attr:`session_resumed`).
        kernel_info: where :attr:`stats` gets the kernel's TCP figures (RTT, window, retransmissions).
    """

    def __init__(
        self,
        config: Config,
        *,
        is_client: bool,
        now: float,
        alpn_protocol: str | None = None,
        peer_address: tuple[str, int] = ("", 0),
        session_resumed: bool = False,
        kernel_info: KernelInfoSource | None = None,
    ) -> None:
        super().__init__(config, is_client=is_client, now=now, alpn_protocol=alpn_protocol)
        self._peer_address = peer_address
        self._session_resumed = session_resumed
        self._kernel_info = kernel_info

    # -- commands ------------------------------------------------------------------------------------

    def open_stream(self, *, bidirectional: bool = True) -> int:
        """Open a new stream and return its ID (numbered as in QUIC).

        Raises:
            StreamLimitReached: the peer's stream limit is reached (wait for StreamsAvailable).
            ConnectionClosed: the connection is closing or closed.
        """
        self._check_open()
        index = self._local_opened[bidirectional]
        if index >= self._local_limit[bidirectional]:
            self._streams_wanted[bidirectional] = True
            kind = "bidirectional" if bidirectional else "unidirectional"
            raise StreamLimitReached(f"peer allows {self._local_limit[bidirectional]} {kind} streams")
        self._local_opened[bidirectional] = index + 1
        stream_id = make_stream_id(index, client_initiated=self._is_client, bidirectional=bidirectional)
        self._streams[stream_id] = self._create(stream_id)
        return stream_id

    def send_stream(self, stream_id: int, data: bytes | bytearray | memoryview, *, fin: bool = False) -> int:
        """Buffer ``data`` on a stream; return how many bytes were accepted (bounded send buffer).

        FIN applies only when all of ``data`` was accepted. A short count means the buffer is full: a
        :class:`~rudp.quic.events.StreamWritable` follows once bytes are written out.

        Raises:
            StreamStateError: unknown or receive-only stream, or writing after FIN or reset.
            ConnectionClosed: the connection is closing or closed.
        """
        self._check_open()
        entry = self._streams.get(stream_id)
        if entry is None or entry.send is None or entry.send.closed_for_writing:
            raise StreamStateError(stream_id, f"stream {stream_id} is not open for sending")
        accepted = entry.send.write(data, fin)
        self._schedule(stream_id, entry.send)
        return accepted

    def read_stream(self, stream_id: int, max_bytes: int = -1) -> bytes:
        """Read up to ``max_bytes`` bytes (all buffered when negative); consuming returns credit.

        Returns b"" when nothing is buffered, at the end, after a reset by the peer or after
        :meth:`stop_sending`; see :meth:`stream_at_eof`.

        Raises:
            StreamStateError: unknown or send-only stream.
        """
        entry = self._receiving_entry(stream_id)
        if entry is None or entry.recv is None:
            return b""
        data = entry.recv.read(max_bytes)
        if not self._closing and not self._closed:
            self._send_credit(stream_id, entry.recv)
        self._maybe_forget(entry)
        return data

    def stream_at_eof(self, stream_id: int) -> bool:
        """True when all of a stream's data and its FIN were read, the peer reset it, or we stopped it.

        Raises:
            StreamStateError: unknown or send-only stream.
        """
        entry = self._receiving_entry(stream_id)
        return entry is None or entry.recv is None or entry.recv.at_eof

    def stream_send_budget(self, stream_id: int) -> int:
        """Free send-buffer bytes of a stream (0 means ``send_stream`` would accept nothing now).

        Raises:
            StreamStateError: unknown or receive-only stream.
        """
        entry = self._sending_entry(stream_id)
        if entry is None or entry.send is None:
            return 0
        free = entry.send.free
        if free == 0 and not entry.send.closed_for_writing:
            entry.send.write_blocked = True
        return free

    def reset_stream(self, stream_id: int, code: int) -> None:
        """Abandon sending on a stream: drop unsent bytes and send RESET with ``code``; no-op if ended.

        Raises:
            StreamStateError: unknown or receive-only stream.
            ConnectionClosed: the connection is closing or closed.
        """
        self._check_open()
        entry = self._sending_entry(stream_id)
        if entry is not None and entry.send is not None:
            self._reset_send(entry, code)

    def stop_sending(self, stream_id: int, code: int) -> None:
        """Stop reading a stream: drop buffered bytes and ask the peer to stop (STOP with ``code``).

        Raises:
            StreamStateError: unknown or send-only stream.
            ConnectionClosed: the connection is closing or closed.
        """
        self._check_open()
        entry = self._receiving_entry(stream_id)
        if entry is None or entry.recv is None:
            return
        entry.recv.stop(code)
        self._flush_stop(stream_id, entry.recv)
        self._maybe_forget(entry)

    def send_datagram(self, data: bytes) -> None:
        """Queue a message outside any stream. Over TCP it is delivered reliably and in order.

        Raises:
            DatagramError: datagrams are not enabled on both sides, or ``data`` is too large.
            ConnectionClosed: the connection is closing or closed.
        """
        self._check_open()
        peer = self._peer_hello
        if not self._config.datagrams or (peer is not None and peer.max_datagram_bytes == 0):
            raise DatagramError.not_enabled()
        limit = self._config.max_datagram_frame_size if peer is None else peer.max_datagram_bytes
        if len(data) > limit:
            raise DatagramError.too_large(len(data), limit)
        if len(self._datagrams) >= MAX_QUEUED_DATAGRAMS:
            self._datagrams.popleft()
        self._datagrams.append(bytes(data))

    def ping(self) -> int:
        """Send a PING; the returned id comes back in a :class:`~rudp.quic.events.PingAcknowledged`.

        Raises:
            ConnectionClosed: the connection is closing or closed.
        """
        self._check_open()
        self._ping_counter += 1
        self._queue_ping(self._ping_counter)
        return self._ping_counter

    def close(self, code: int = 0, reason: str = "", *, application: bool = True) -> None:
        """Close the connection: drop unsent stream data and send CLOSE; idempotent.

        :class:`~rudp.quic.events.ConnectionTerminated` is queued at once; :attr:`is_closed` becomes
        True once ``data_to_send()`` returned the CLOSE frame (then the transport may be closed).
        """
        self._close_with(Close(code, reason, application))

    def connection_lost(self, reason: str, now: float) -> None:
        """The TCP connection ended (EOF, reset, TLS failure): terminate, unless a CLOSE already did."""
        self._last_now = max(self._last_now, now)
        if self._close_cause is None:
            self._terminate(ConnectionTerminated(LOST_CODE, reason, False, False))
        self._closed = True

    # -- inputs and outputs -------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Process bytes from the peer (any split); a protocol error closes the connection, never raises."""
        self._last_now = max(self._last_now, now)
        if self._dead() or not data:
            return
        self._last_received_at = self._last_now
        self._reads += 1
        self._bytes_received += len(data)
        try:
            for frame in self._decoder.feed(data):
                self._on_frame(frame)
                if self._dead():
                    return
        except TransportError as exc:
            self._close_with(Close(exc.code, exc.reason, False, exc.frame_type))

    def data_to_send(self, now: float | None = None, *, max_bytes: int | None = None) -> bytes:
        """Bytes to write to the TLS transport: control frames, then datagrams, then stream data.

        Streams take turns in chunks of :data:`CHUNK_BYTES`. ``max_bytes`` bounds the stream data taken
        (so a paused transport keeps the data in the bounded stream buffers); control frames always go.
        """
        if now is not None:
            self._last_now = max(self._last_now, now)
        if self._closed:
            return b""
        for token, uid in self._pings_to_send:
            self._queue_frame(Ping(token))
            self._pings_in_flight[token] = (uid, self._last_now)
        self._pings_to_send.clear()
        for bidi in self._limit_updates:
            self._queue_frame(MaxStreams(bidi, self._peer_limit[bidi]))
        self._limit_updates.clear()
        out = self._control
        if self._closing:
            self._closed = True
        else:
            budget = (1 << 62) if max_bytes is None else max_bytes
            while self._datagrams and budget > 0 and self._peer_hello is not None:
                datagram = self._datagrams.popleft()
                write_frame(out, Datagram(datagram))
                self._frames_sent += 1
                budget -= len(datagram)
            self._write_streams(out, budget)
        data = out.getvalue()
        self._control = Writer()
        if data:
            self._writes += 1
            self._bytes_sent += len(data)
            self._last_sent_at = self._last_now
        return data

    def next_timer(self) -> float | None:
        """The earliest deadline at which :meth:`handle_timer` must be called, or None."""
        if self._dead():
            return None
        deadlines = [d for d in (self._idle_deadline(), self._keepalive_deadline()) if d is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Process the timers due at ``now``: idle timeout (closes) and keep-alive (queues a PING)."""
        self._last_now = max(self._last_now, now)
        if self._dead():
            return
        idle = self._idle_deadline()
        if idle is not None and now >= idle:
            self._close_with(Close(Code.NO_ERROR, "idle timeout", False))
            return
        keepalive = self._keepalive_deadline()
        if keepalive is not None and now >= keepalive and not self._pings_to_send:
            self._queue_ping(None)
            self._last_sent_at = now

    def next_event(self) -> Event | None:
        """Pop the next application event, or None."""
        return self._events.popleft() if self._events else None

    # -- properties ---------------------------------------------------------------------------------

    @property
    def is_client(self) -> bool:
        """True for the client side."""
        return self._is_client

    @property
    def alpn_protocol(self) -> str | None:
        """The ALPN protocol TLS negotiated."""
        return self._alpn

    @property
    def handshake_complete(self) -> bool:
        """Always True: the mux exists only once TLS completed."""
        return True

    @property
    def is_closed(self) -> bool:
        """True once the connection is over and its last bytes were handed out (close the transport)."""
        return self._closed

    @property
    def close_cause(self) -> ConnectionTerminated | None:
        """Why the connection ended (None while it is alive)."""
        return self._close_cause

    @property
    def send_settled(self) -> bool:
        """True when every stream byte, FIN and RESET queued so far was handed out by ``data_to_send()``
        (bytes waiting for the peer's credit count as not handed out): the transport then delivers them
        before anything written later, such as a CLOSE."""
        if self._control:
            return False
        for entry in self._streams.values():
            send = entry.send
            if send is not None and not send.done and (send.buffered_bytes or send.fin_queued):
                return False
        return True

    @property
    def open_streams(self) -> int:
        """Streams not yet finished both ways (finished ones are forgotten)."""
        return len(self._streams)

    @property
    def session_resumed(self) -> bool:
        """True when TLS resumed an earlier session."""
        return self._session_resumed

    @property
    def early_data_accepted(self) -> bool:
        """Always False: the TCP baseline has no 0-RTT."""
        return False

    @property
    def peer_address(self) -> tuple[str, int]:
        """The peer's (host, port); it never changes (TCP cannot migrate)."""
        return self._peer_address

    @property
    def stats(self) -> ConnectionStats:
        """A snapshot of statistics, in :class:`~rudp.quic.stats.ConnectionStats` form.

        ``min_rtt`` and ``latest_rtt`` come from PING/PONG (queued behind data, so they include TCP
        queueing); ``smoothed_rtt`` too, unless ``kernel_info`` supplies the kernel's. With
        ``kernel_info``, the congestion window, bytes in flight and retransmitted segments (as
        ``packets_lost``, times the MSS as ``bytes_lost``) are the kernel's; without, they are 0.
        "Datagrams" count writes to and reads from the transport, "packets" count frames sent, and
        bytes are mux bytes (before TLS).
        """
        kernel = self._kernel_info() if self._kernel_info is not None else None
        return self._stats_snapshot(kernel)

    # -- internals ----------------------------------------------------------------------------------

    def _idle_deadline(self) -> float | None:
        values = [self._config.idle_timeout]
        if self._peer_hello is not None:
            values.append(self._peer_hello.idle_timeout_ms / 1000)
        values = [v for v in values if v > 0]
        return self._last_received_at + min(values) if values else None

    def _keepalive_deadline(self) -> float | None:
        interval = self._config.keepalive_interval
        return None if interval is None else self._last_sent_at + interval

    def _write_streams(self, out: Writer, budget: int) -> None:
        """Round-robin DATA frames into ``out`` until ``budget`` bytes or nothing is left to send."""
        while self._sendable and budget > 0:
            stream_id = next(iter(self._sendable))
            del self._sendable[stream_id]
            entry = self._streams.get(stream_id)
            if entry is None or entry.send is None:
                continue
            send = entry.send
            data, fin = send.take(min(CHUNK_BYTES, budget))
            if data or fin:
                write_frame(out, Data(stream_id, data, fin))
                self._frames_sent += 1
            budget -= len(data)
            if send.has_output:
                self._sendable[stream_id] = None
            if send.write_blocked and send.free > 0:
                send.write_blocked = False
                self._events.append(StreamWritable(stream_id))
            self._maybe_forget(entry)


__all__ = [
    "CHUNK_BYTES",
    "LOST_CODE",
    "MAX_QUEUED_DATAGRAMS",
    "STREAM_COUNT_FLOOR",
    "STREAM_WINDOW_FLOOR",
    "KernelTcpInfo",
    "TcpMux",
]
