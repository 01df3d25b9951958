"""The TCP mux's state and the helpers shared by its command, receive and output paths.

Owns :class:`MuxState` (everything a :class:`~rudp.tcp.mux.TcpMux` knows: streams, limits, queues,
RTT, counters, close state) and the small operations on it that several paths need: stream lookup and
creation, resets, STOP and CREDIT emission, forgetting finished streams, closing. It does not parse
frames (:mod:`rudp.tcp.receive`) nor offer the public API (:mod:`rudp.tcp.mux`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from rudp.codec.buffer import Writer
from rudp.config import Config
from rudp.errors import ConnectionClosed, StreamStateError
from rudp.quic.events import ConnectionTerminated, Event, HandshakeCompleted
from rudp.quic.rtt import RttEstimator
from rudp.quic.stats import ConnectionStats
from rudp.quic.streams.ids import can_receive, can_send, is_bidirectional, is_local, stream_index
from rudp.tcp.framing import Close, Credit, Frame, FrameDecoder, Hello, Reset, Stop, write_frame
from rudp.tcp.streams import RecvHalf, SendHalf

STREAM_WINDOW_FLOOR: Final = 64 * 1024
"""Per-stream window every endpoint grants at least (assumed before the peer's HELLO)."""
STREAM_COUNT_FLOOR: Final = 16
"""Streams of each kind every endpoint allows at least (assumed before the peer's HELLO)."""


@dataclass(slots=True)
class StreamEntry:
    """One live stream: its sending half (None if receive-only) and receiving half (None if send-only)."""

    stream_id: int
    send: SendHalf | None
    recv: RecvHalf | None

    @property
    def is_closed(self) -> bool:
        """True when both halves are finished: the stream can be forgotten."""
        return (self.send is None or self.send.done) and (self.recv is None or self.recv.done)


@dataclass(frozen=True, slots=True)
class KernelTcpInfo:
    """What the kernel knows about the TCP connection (Linux TCP_INFO), read by the asyncio layer."""

    smoothed_rtt: float
    """The kernel's smoothed RTT (seconds)."""
    congestion_window_bytes: int
    """Congestion window (segments times MSS)."""
    bytes_in_flight: int
    """Unacknowledged bytes (segments times MSS)."""
    retransmitted_segments: int
    """Segments retransmitted over the connection's life."""
    mss: int
    """Sender maximum segment size."""


KernelInfoSource = Callable[[], KernelTcpInfo | None]
"""A callable returning fresh kernel TCP statistics, or None when unavailable."""


class MuxState:
    """State of one TCP mux connection and the helpers that keep it consistent."""

    def __init__(self, config: Config, *, is_client: bool, now: float, alpn_protocol: str | None) -> None:
        self._config = config
        self._is_client = is_client
        self._alpn = alpn_protocol
        self._decoder = FrameDecoder()
        self._control = Writer()
        self._events: deque[Event] = deque()
        self._streams: dict[int, StreamEntry] = {}
        self._sendable: dict[int, None] = {}  # ordered set: the round-robin order of streams with output
        self._datagrams: deque[bytes] = deque()
        self._window = max(config.initial_max_stream_data, STREAM_WINDOW_FLOOR)
        self._max_window = max(config.max_stream_window, self._window)
        self._peer_window = STREAM_WINDOW_FLOOR
        self._peer_hello: Hello | None = None
        self._local_opened = {True: 0, False: 0}
        self._local_limit = {True: STREAM_COUNT_FLOOR, False: STREAM_COUNT_FLOOR}
        self._streams_wanted = {True: False, False: False}
        self._peer_opened = {True: 0, False: 0}
        self._peer_limit = {
            True: max(config.max_streams_bidi, STREAM_COUNT_FLOOR),
            False: max(config.max_streams_uni, STREAM_COUNT_FLOOR),
        }
        self._limit_updates: dict[bool, None] = {}
        self._rtt = RttEstimator()
        self._pings_to_send: list[tuple[bytes, int | None]] = []
        self._pings_in_flight: dict[bytes, tuple[int | None, float]] = {}
        self._ping_counter = 0
        self._token_counter = 0
        self._closing = False  # a CLOSE is queued: the next data_to_send() is the last
        self._closed = False
        self._close_cause: ConnectionTerminated | None = None
        self._last_now = now
        self._last_received_at = now
        self._last_sent_at = now
        self._frames_sent = 0
        self._writes = 0
        self._reads = 0
        self._bytes_sent = 0
        self._bytes_received = 0
        self._queue_frame(self._local_hello())
        self._queue_ping(None)  # an early RTT sample, for window auto-tuning and stats
        self._events.append(HandshakeCompleted(alpn_protocol, False, False))

    def _local_hello(self) -> Hello:
        config = self._config
        return Hello(
            stream_window=self._window,
            max_streams_bidi=self._peer_limit[True],
            max_streams_uni=self._peer_limit[False],
            max_datagram_bytes=config.max_datagram_frame_size if config.datagrams else 0,
            idle_timeout_ms=int(config.idle_timeout * 1000),
        )

    def _dead(self) -> bool:
        return self._closing or self._closed

    def _check_open(self) -> None:
        if self._dead():
            cause = self._close_cause
            if cause is None:
                raise ConnectionClosed(0, "connection closed")
            raise ConnectionClosed(
                cause.code, cause.reason, by_peer=cause.by_peer, application=cause.application
            )

    def _queue_frame(self, frame: Frame) -> None:
        if self._dead():
            return  # after a CLOSE nothing else may be written
        write_frame(self._control, frame)
        self._frames_sent += 1

    def _queue_ping(self, uid: int | None) -> None:
        self._token_counter += 1
        self._pings_to_send.append((self._token_counter.to_bytes(8, "big"), uid))

    def _close_with(self, frame: Close) -> None:
        """Queue ``frame`` as the last output and report the termination (no-op once closing)."""
        if self._dead():
            return
        self._control = Writer()  # pending control frames are moot; the CLOSE is what matters
        self._queue_frame(frame)
        self._closing = True
        self._sendable.clear()
        self._datagrams.clear()
        self._pings_to_send.clear()
        self._limit_updates.clear()
        reason, kind = frame.reason, frame.frame_kind
        self._terminate(ConnectionTerminated(frame.error_code, reason, False, frame.application, kind))

    def _terminate(self, event: ConnectionTerminated) -> None:
        if self._close_cause is None:
            self._close_cause = event
            self._events.append(event)

    def _stats_snapshot(self, kernel: KernelTcpInfo | None) -> ConnectionStats:
        rtt = self._rtt
        entries = self._streams.values()
        smoothed = rtt.smoothed_rtt if rtt.has_sample else 0.0
        return ConnectionStats(
            smoothed_rtt=kernel.smoothed_rtt if kernel is not None else smoothed,
            min_rtt=rtt.min_rtt,
            latest_rtt=rtt.latest_rtt,
            congestion_window=kernel.congestion_window_bytes if kernel is not None else 0,
            bytes_in_flight=kernel.bytes_in_flight if kernel is not None else 0,
            packets_sent=self._frames_sent,
            packets_lost=kernel.retransmitted_segments if kernel is not None else 0,
            bytes_lost=kernel.retransmitted_segments * kernel.mss if kernel is not None else 0,
            pto_count=0,
            datagrams_sent=self._writes,
            datagrams_received=self._reads,
            bytes_sent=self._bytes_sent,
            bytes_received=self._bytes_received,
            packets_dropped=0,
            key_updates=0,
            path_changes=0,
            send_buffered_bytes=sum(e.send.buffered_bytes for e in entries if e.send is not None),
            recv_buffered_bytes=sum(e.recv.buffered_bytes for e in entries if e.recv is not None),
        )

    # -- streams ------------------------------------------------------------------------------------

    def _create(self, stream_id: int) -> StreamEntry:
        send = recv = None
        if can_send(stream_id, self._is_client):
            send = SendHalf(self._config.send_buffer_bytes, self._peer_window)
        if can_receive(stream_id, self._is_client):
            recv = RecvHalf(self._window, self._max_window)
        return StreamEntry(stream_id, send, recv)

    def _existed(self, stream_id: int) -> bool:
        """True when the stream was opened at some point (it may be forgotten now)."""
        bidi, index = is_bidirectional(stream_id), stream_index(stream_id)
        if is_local(stream_id, self._is_client):
            return index < self._local_opened[bidi]
        return index < self._peer_opened[bidi]

    def _receiving_entry(self, stream_id: int) -> StreamEntry | None:
        """The stream for a read-side call; None when it existed and is forgotten.

        Raises:
            StreamStateError: send-only or never-opened stream.
        """
        if not can_receive(stream_id, self._is_client):
            raise StreamStateError(stream_id, f"stream {stream_id} is send-only")
        return self._known_entry(stream_id)

    def _sending_entry(self, stream_id: int) -> StreamEntry | None:
        """The stream for a send-side call; None when it existed and is forgotten.

        Raises:
            StreamStateError: receive-only or never-opened stream.
        """
        if not can_send(stream_id, self._is_client):
            raise StreamStateError(stream_id, f"stream {stream_id} is receive-only")
        return self._known_entry(stream_id)

    def _known_entry(self, stream_id: int) -> StreamEntry | None:
        entry = self._streams.get(stream_id)
        if entry is None and not self._existed(stream_id):
            raise StreamStateError(stream_id, f"stream {stream_id} does not exist")
        return entry

    def _schedule(self, stream_id: int, send: SendHalf) -> None:
        if send.has_output and not self._dead():
            self._sendable[stream_id] = None

    def _reset_send(self, entry: StreamEntry, code: int) -> None:
        send = entry.send
        if send is None or not send.reset(code):
            return
        self._queue_frame(Reset(entry.stream_id, code, send.sent_bytes))
        send.reset_sent = True
        self._sendable.pop(entry.stream_id, None)
        self._maybe_forget(entry)

    def _flush_stop(self, stream_id: int, recv: RecvHalf) -> None:
        if recv.stop_code is not None:
            self._queue_frame(Stop(stream_id, recv.stop_code))
            recv.stop_code = None

    def _send_credit(self, stream_id: int, recv: RecvHalf) -> None:
        srtt = self._rtt.smoothed_rtt if self._rtt.has_sample else 0.0
        increment = recv.take_credit(self._last_now, srtt)
        if increment:
            self._queue_frame(Credit(stream_id, increment))

    def _maybe_forget(self, entry: StreamEntry) -> None:
        """Drop a stream finished both ways; give the peer one more stream for each of its own."""
        if not entry.is_closed:
            return
        stream_id = entry.stream_id
        self._streams.pop(stream_id, None)
        self._sendable.pop(stream_id, None)
        if not is_local(stream_id, self._is_client):
            bidi = is_bidirectional(stream_id)
            self._peer_limit[bidi] += 1
            if not self._dead():
                self._limit_updates[bidi] = None


__all__ = [
    "STREAM_COUNT_FLOOR",
    "STREAM_WINDOW_FLOOR",
    "KernelInfoSource",
    "KernelTcpInfo",
    "MuxState",
    "StreamEntry",
]
