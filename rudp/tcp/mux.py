"""TcpMux: the sans-IO TCP baseline connection: QUIC's stream API multiplexed over one byte stream.

:class:`TcpMux` holds the objects below, passes each its collaborators and owns only the public API,
the order of the output and the timers (the minimum of its owners' deadlines, computed on every call).
It stores no clock: every input that needs the time carries ``now``.

=============================================== ========================================================
object (module)                                 owns
=============================================== ========================================================
:class:`~rudp.tcp.state.Lifecycle`              open / closing / closed and the cause of the end
:class:`~rudp.tcp.output.Outbox`                the frames written for the next output, counters sent
:class:`~rudp.tcp.output.Datagrams`             datagrams queued, the peer's datagram limit
:class:`~rudp.tcp.limits.StreamCounts`          streams opened and allowed per side, MAX_STREAMS owed
:class:`~rudp.tcp.table.StreamTable`            live streams (:mod:`rudp.tcp.streams` halves), windows,
                                                round-robin order, CREDIT owed
:class:`~rudp.tcp.liveness.Pings`               PINGs queued and in flight, the RTT estimator
:class:`~rudp.tcp.liveness.Liveness`            last bytes received and sent, idle timeouts
:class:`~rudp.tcp.receive.Receiver`             the decoder, HELLO first and once, frame -> owner routes
=============================================== ========================================================

TLS and the socket belong to :mod:`rudp.aio.tcp`, which creates the mux once the TLS handshake is done.

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

from collections import deque
from typing import Final

from rudp.config import Config
from rudp.errors import TransportError
from rudp.errors import TransportErrorCode as Code
from rudp.quic.events import ConnectionTerminated, Event, HandshakeCompleted
from rudp.quic.stats import ConnectionStats
from rudp.tcp.framing import Close, Hello
from rudp.tcp.limits import STREAM_COUNT_FLOOR, StreamCounts
from rudp.tcp.liveness import Liveness, Pings
from rudp.tcp.output import MAX_QUEUED_DATAGRAMS, Datagrams, Outbox
from rudp.tcp.receive import Owners, Receiver
from rudp.tcp.state import KernelInfoSource, KernelTcpInfo, Lifecycle
from rudp.tcp.table import CHUNK_BYTES, STREAM_WINDOW_FLOOR, StreamTable

LOST_CODE: Final = Code.NO_VIABLE_PATH
"""Code of the ConnectionTerminated reported when TCP dies without a CLOSE."""


class TcpMux:
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
        self._is_client = is_client
        self._alpn = alpn_protocol
        self._peer_address = peer_address
        self._session_resumed = session_resumed
        self._kernel_info = kernel_info
        self._events: deque[Event] = deque()
        emit = self._events.append
        self._lifecycle = Lifecycle(emit)
        self._outbox = Outbox(self._lifecycle)
        self._datagrams = Datagrams(config, emit)
        self._counts = StreamCounts(config, is_client=is_client, outbox=self._outbox, emit=emit)
        self._streams = StreamTable(
            config, is_client=is_client, counts=self._counts, outbox=self._outbox, emit=emit
        )
        self._pings = Pings(self._outbox, emit)
        self._liveness = Liveness(config, now)
        self._receiver = Receiver(
            Owners(self._lifecycle, self._streams, self._counts, self._pings, self._liveness, self._datagrams)
        )
        self._outbox.write(
            Hello(
                stream_window=self._streams.window,
                max_streams_bidi=self._counts.granted(True),
                max_streams_uni=self._counts.granted(False),
                max_datagram_bytes=config.max_datagram_frame_size if config.datagrams else 0,
                idle_timeout_ms=int(config.idle_timeout * 1000),
            )
        )
        self._pings.probe()  # an early RTT sample, for window auto-tuning and stats
        emit(HandshakeCompleted(alpn_protocol, False, False))

    # -- commands ------------------------------------------------------------------------------------

    def open_stream(self, *, bidirectional: bool = True) -> int:
        """Open a new stream and return its ID (numbered as in QUIC).

        Raises:
            StreamLimitReached: the peer's stream limit is reached (wait for StreamsAvailable).
            ConnectionClosed: the connection is closing or closed.
        """
        self._lifecycle.check_open()
        return self._streams.open(bidirectional)

    def send_stream(self, stream_id: int, data: bytes | bytearray | memoryview, *, fin: bool = False) -> int:
        """Buffer ``data`` on a stream; return how many bytes were accepted (bounded send buffer).

        FIN applies only when all of ``data`` was accepted. A short count means the buffer is full: a
        :class:`~rudp.quic.events.StreamWritable` follows once bytes are written out.

        Raises:
            StreamStateError: unknown or receive-only stream, or writing after FIN or reset.
            ConnectionClosed: the connection is closing or closed.
        """
        self._lifecycle.check_open()
        return self._streams.send(stream_id, data, fin)

    def read_stream(self, stream_id: int, max_bytes: int = -1) -> bytes:
        """Read up to ``max_bytes`` bytes (all buffered when negative); consuming returns credit.

        The CREDIT goes out with the next :meth:`data_to_send`, whose ``now`` tunes the window.
        Returns b"" when nothing is buffered, at the end, after a reset by the peer or after
        :meth:`stop_sending`; see :meth:`stream_at_eof`.

        Raises:
            StreamStateError: unknown or send-only stream.
        """
        return self._streams.read(stream_id, max_bytes)

    def stream_at_eof(self, stream_id: int) -> bool:
        """True when all of a stream's data and its FIN were read, the peer reset it, or we stopped it.

        Raises:
            StreamStateError: unknown or send-only stream.
        """
        return self._streams.at_eof(stream_id)

    def stream_send_budget(self, stream_id: int) -> int:
        """Free send-buffer bytes of a stream (0 means ``send_stream`` would accept nothing now).

        Raises:
            StreamStateError: unknown or receive-only stream.
        """
        return self._streams.send_budget(stream_id)

    def reset_stream(self, stream_id: int, code: int) -> None:
        """Abandon sending on a stream: drop unsent bytes and send RESET with ``code``; no-op if ended.

        Raises:
            StreamStateError: unknown or receive-only stream.
            ConnectionClosed: the connection is closing or closed.
        """
        self._lifecycle.check_open()
        self._streams.reset(stream_id, code)

    def stop_sending(self, stream_id: int, code: int) -> None:
        """Stop reading a stream: drop buffered bytes and ask the peer to stop (STOP with ``code``).

        Raises:
            StreamStateError: unknown or send-only stream.
            ConnectionClosed: the connection is closing or closed.
        """
        self._lifecycle.check_open()
        self._streams.stop(stream_id, code)

    def send_datagram(self, data: bytes) -> None:
        """Queue a message outside any stream. Over TCP it is delivered reliably and in order.

        Raises:
            DatagramError: datagrams are not enabled on both sides, or ``data`` is too large.
            ConnectionClosed: the connection is closing or closed.
        """
        self._lifecycle.check_open()
        self._datagrams.send(data)

    def ping(self) -> int:
        """Send a PING; the returned id comes back in a :class:`~rudp.quic.events.PingAcknowledged`.

        Raises:
            ConnectionClosed: the connection is closing or closed.
        """
        self._lifecycle.check_open()
        return self._pings.ping()

    def close(self, code: int = 0, reason: str = "", *, application: bool = True) -> None:
        """Close the connection: drop unsent stream data and send CLOSE; idempotent.

        :class:`~rudp.quic.events.ConnectionTerminated` is queued at once; :attr:`is_closed` becomes
        True once ``data_to_send()`` returned the CLOSE frame (then the transport may be closed).
        """
        self._close_with(Close(code, reason, application))

    def connection_lost(self, reason: str, now: float) -> None:
        """The TCP connection ended (EOF, reset, TLS failure) at ``now``: terminate, unless a CLOSE did.

        Nothing is timed once the connection is over, so ``now`` is not needed; it is taken for
        symmetry with the other inputs.
        """
        del now
        self._lifecycle.end(ConnectionTerminated(LOST_CODE, reason, False, False))

    # -- inputs and outputs -------------------------------------------------------------------------

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Process bytes from the peer (any split); a protocol error closes the connection, never raises."""
        if self._lifecycle.dead or not data:
            return
        try:
            self._receiver.receive(data, now)
        except TransportError as exc:
            self._close_with(Close(exc.code, exc.reason, False, exc.frame_type))

    def data_to_send(self, now: float | None = None, *, max_bytes: int | None = None) -> bytes:
        """Bytes to write to the TLS transport: control frames, then datagrams, then stream data.

        Streams take turns in chunks of :data:`CHUNK_BYTES`. ``max_bytes`` bounds the stream data taken
        (so a paused transport keeps the data in the bounded stream buffers); control frames always go.
        ``now`` times the PINGs written (their PONGs give RTT samples) and the CREDIT (window tuning);
        without it, neither is timed.
        """
        lifecycle = self._lifecycle
        if lifecycle.closed:
            return b""
        if not lifecycle.dead:
            self._pings.write(now)
            self._counts.write_updates()
            self._streams.write_credits(now, self._pings.smoothed_rtt)
            budget = (1 << 62) if max_bytes is None else max_bytes
            budget = self._datagrams.write(self._outbox, budget)
            self._streams.write_data(budget)
        data = self._outbox.take()
        lifecycle.on_output_taken()
        if data and now is not None:
            self._liveness.on_sent(now)
        return data

    def next_timer(self) -> float | None:
        """The earliest deadline at which :meth:`handle_timer` must be called, or None."""
        if self._lifecycle.dead:
            return None
        deadlines = [
            d for d in (self._liveness.idle_deadline(), self._liveness.keepalive_deadline()) if d is not None
        ]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> None:
        """Process the timers due at ``now``: idle timeout (closes) and keep-alive (queues a PING)."""
        if self._lifecycle.dead:
            return
        idle = self._liveness.idle_deadline()
        if idle is not None and now >= idle:
            self._close_with(Close(Code.NO_ERROR, "idle timeout", False))
            return
        keepalive = self._liveness.keepalive_deadline()
        if keepalive is not None and now >= keepalive and not self._pings.has_pending:
            self._pings.probe()
            self._liveness.on_sent(now)

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
        return self._lifecycle.closed

    @property
    def close_cause(self) -> ConnectionTerminated | None:
        """Why the connection ended (None while it is alive)."""
        return self._lifecycle.cause

    @property
    def send_settled(self) -> bool:
        """True when every stream byte, FIN and RESET queued so far was handed out by ``data_to_send()``
        (bytes waiting for the peer's credit count as not handed out): the transport then delivers them
        before anything written later, such as a CLOSE."""
        return not self._outbox.pending and self._streams.send_settled

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
        rtt, outbox, receiver = self._pings.rtt, self._outbox, self._receiver
        return ConnectionStats(
            smoothed_rtt=kernel.smoothed_rtt if kernel is not None else self._pings.smoothed_rtt,
            min_rtt=rtt.min_rtt,
            latest_rtt=rtt.latest_rtt,
            congestion_window=kernel.congestion_window_bytes if kernel is not None else 0,
            bytes_in_flight=kernel.bytes_in_flight if kernel is not None else 0,
            packets_sent=outbox.frames_sent,
            packets_lost=kernel.retransmitted_segments if kernel is not None else 0,
            bytes_lost=kernel.retransmitted_segments * kernel.mss if kernel is not None else 0,
            pto_count=0,
            datagrams_sent=outbox.writes,
            datagrams_received=receiver.reads,
            bytes_sent=outbox.bytes_sent,
            bytes_received=receiver.bytes_received,
            packets_dropped=0,
            key_updates=0,
            path_changes=0,
            send_buffered_bytes=self._streams.send_buffered_bytes,
            recv_buffered_bytes=self._streams.recv_buffered_bytes,
        )

    # -- internals ----------------------------------------------------------------------------------

    def _close_with(self, frame: Close) -> None:
        """Queue ``frame`` as the last output and report the termination (no-op once closing)."""
        if self._lifecycle.dead:
            return
        self._outbox.replace_with(frame)
        self._streams.stop_output()
        self._datagrams.clear()
        self._pings.clear()
        self._counts.stop_updates()
        cause = ConnectionTerminated(
            frame.error_code, frame.reason, False, frame.application, frame.frame_kind
        )
        self._lifecycle.start_closing(cause)


__all__ = [
    "CHUNK_BYTES",
    "LOST_CODE",
    "MAX_QUEUED_DATAGRAMS",
    "STREAM_COUNT_FLOOR",
    "STREAM_WINDOW_FLOOR",
    "KernelTcpInfo",
    "TcpMux",
]
