"""Frame sources of the 1-RTT packet that no other subsystem owns: HANDSHAKE_DONE, NEW_TOKEN, PINGs
(asked for by the application or by the keep-alive timer), ACK_FREQUENCY (what
:mod:`rudp.quic.ack_frequency` decided to ask the peer) and RFC 9221 DATAGRAM frames; and
:class:`StreamFrames`, the stream manager seen as one of these sources.

Each source answers :meth:`has_data` and :meth:`write_frames` (into a
:class:`~rudp.quic.delivery.FrameSink`) and re-queues its own intent when a frame is lost (RFC 9000
§13.3), like the stream manager and the connection-ID tables do. The packetizer asks them in order; it
knows nothing of what they hold.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from functools import partial

from rudp.codec.frames import AckFrequency, Datagram, HandshakeDone, NewToken, Ping
from rudp.quic.delivery import DeliveryHandler, FrameSink, PacketSink
from rudp.quic.events import Event, PingAcknowledged
from rudp.quic.paths import Paths
from rudp.quic.streams.manager import StreamManager

_HANDSHAKE_DONE, _PING = HandshakeDone(), Ping()  # (frames are immutable values: one of each will do)
DATAGRAM_FRAME_OVERHEAD = 4
"""Type byte and a length varint of up to 3 bytes in front of a DATAGRAM frame's data (RFC 9221 §4)."""


class ControlFrames:
    """HANDSHAKE_DONE (server, RFC 9000 §19.20), NEW_TOKEN (server, §19.7) and PINGs (§19.2)."""

    __slots__ = (
        "_ack_frequency",
        "_ack_frequency_latest",
        "_emit",
        "_handshake_done",
        "_keepalive_due",
        "_new_token",
        "_next_ping_uid",
        "_pings",
    )

    def __init__(self, emit: Callable[[Event], None]) -> None:
        self._emit = emit
        self._handshake_done = False
        self._new_token: bytes | None = None
        self._pings: list[int] = []
        self._next_ping_uid = 0
        self._keepalive_due = False
        self._ack_frequency: AckFrequency | None = None
        self._ack_frequency_latest = -1

    def send_ack_frequency(self, frame: AckFrequency) -> None:
        """Send an ACK_FREQUENCY frame (draft-ietf-quic-ack-frequency §4); it replaces any unsent one
        and is sent again if lost while no later one was sent."""
        self._ack_frequency = frame
        self._ack_frequency_latest = frame.sequence

    def send_handshake_done(self) -> None:
        """(server) The handshake is confirmed: tell the client (sent again until acknowledged)."""
        self._handshake_done = True

    def send_new_token(self, token: bytes) -> None:
        """(server) Give the client an address token (sent again if lost, §13.3)."""
        self._new_token = token

    def ping(self) -> int:
        """Queue an application PING; its id comes back in a :class:`PingAcknowledged` event."""
        self._next_ping_uid += 1
        self._pings.append(self._next_ping_uid)
        return self._next_ping_uid

    def keepalive(self) -> None:
        """The keep-alive timer fired: one PING goes out (not reported, not re-sent)."""
        self._keepalive_due = True

    def has_data(self) -> bool:
        """True if a frame is waiting."""
        return (
            self._handshake_done
            or self._new_token is not None
            or bool(self._pings)
            or self._keepalive_due
            or self._ack_frequency is not None
        )

    def write_frames(self, sink: FrameSink) -> None:
        """Write what fits of the waiting frames."""
        if self._handshake_done and sink.remaining >= 1:
            self._handshake_done = False
            sink.push_frame(_HANDSHAKE_DONE, self._on_handshake_done)
        token = self._new_token
        if token is not None and sink.remaining >= len(token) + 3:
            self._new_token = None
            sink.push_frame(NewToken(token), partial(self._on_token_delivery, token))
        while self._pings and sink.remaining >= 1:
            sink.push_frame(_PING, self._ping_handler(self._pings.pop(0)))
        if self._keepalive_due and sink.remaining >= 1:
            self._keepalive_due = False
            sink.push_frame(_PING)
        frequency = self._ack_frequency
        if frequency is not None and sink.remaining >= 33:  # type byte (2) and four varints of up to 8
            self._ack_frequency = None
            sink.push_frame(frequency, self._ack_frequency_handler(frequency))

    def _ack_frequency_handler(self, frame: AckFrequency) -> DeliveryHandler:
        def handler(acked: bool) -> None:
            # draft-ietf-quic-ack-frequency §4: only the latest request matters; a lost one is sent again.
            if not acked and frame.sequence == self._ack_frequency_latest and self._ack_frequency is None:
                self._ack_frequency = frame

        return handler

    def _on_handshake_done(self, acked: bool) -> None:
        if not acked:
            self._handshake_done = True

    def _on_token_delivery(self, token: bytes, acked: bool) -> None:
        """The delivery handler of a NEW_TOKEN frame (a partial: no closure made per token)."""
        if not acked and self._new_token is None:
            self._new_token = token  # RFC 9000 §13.3: a lost NEW_TOKEN is sent again

    def _ping_handler(self, uid: int) -> DeliveryHandler:
        def handler(acked: bool) -> None:
            if acked:
                self._emit(PingAcknowledged(uid))
            else:
                self._pings.append(uid)

        return handler


MAX_QUEUED_DATAGRAMS = 256
"""Datagrams a connection holds unsent; beyond it the oldest is dropped (as the TCP baseline does)."""


class _Queued:
    """One datagram waiting, and when it was queued (None until the next call that carries the time)."""

    __slots__ = ("data", "queued_at")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.queued_at: float | None = None


class DatagramQueue:
    """Unreliable datagrams waiting to be sent (RFC 9221 §5: never re-sent when lost), and their
    priority against stream data.

    The queue is a frame source twice in a 1-RTT packet (see :class:`~rudp.quic.sending.Sender`): its
    :meth:`ahead` view writes before stream data, within a credit of ``share`` of the bytes of each
    packet built while datagrams wait (RFC 9221 §5 lets the application rank datagrams against streams;
    both stay under congestion control, which the packetizer applies to the packet as a whole), and the
    queue itself fills whatever room stream data leaves, free of credit. So a datagram leaves in the next
    packet the congestion window and the pacer allow, while a flood of them still leaves streams at
    least ``1 - share`` of the bytes sent. RFC 9221 §5 allows dropping a datagram instead of delaying
    it: those queued longer than ``max_age`` seconds expire unsent, and beyond ``limit`` queued the
    oldest is dropped.
    """

    __slots__ = ("_credit", "_queue", "dropped", "limit", "max_age", "share")

    def __init__(
        self, *, max_age: float | None = None, share: float = 0.5, limit: int = MAX_QUEUED_DATAGRAMS
    ) -> None:
        self._queue: deque[_Queued] = deque()
        self._credit = 0.0
        self.max_age = max_age
        self.share = share
        self.limit = limit
        self.dropped = 0
        """Datagrams dropped unsent: expired, or the oldest beyond ``limit``."""

    def __len__(self) -> int:
        return len(self._queue)

    def ahead(self) -> _AheadOfStreams:
        """A new frame source of this queue that goes before stream data (the sender holds it; the
        queue keeps none, so the two make no reference cycle)."""
        return _AheadOfStreams(self)

    def append(self, data: bytes) -> None:
        """Queue one datagram's payload (the caller checked its size against the peer's limit)."""
        queue = self._queue
        if len(queue) >= self.limit:
            queue.popleft()
            self.dropped += 1
        queue.append(_Queued(data))

    def tick(self, now: float) -> None:
        """A call that carries the time: stamp the datagrams queued since the last one, then drop those
        older than ``max_age`` (RFC 9221 §5: an expired datagram is dropped without being sent)."""
        queue = self._queue
        for entry in reversed(queue):
            if entry.queued_at is not None:
                break
            entry.queued_at = now
        max_age = self.max_age
        if max_age is None:
            return
        while queue:
            queued_at = queue[0].queued_at
            if queued_at is None or now - queued_at <= max_age:
                break
            queue.popleft()
            self.dropped += 1

    def has_data(self) -> bool:
        """True if a datagram is waiting."""
        return bool(self._queue)

    def write_frames(self, sink: FrameSink) -> None:
        """Write the waiting datagrams that fit, in order (one that does not fit waits for the next)."""
        queue = self._queue
        while queue and sink.remaining >= len(queue[0].data) + DATAGRAM_FRAME_OVERHEAD:
            sink.push_frame(Datagram(queue.popleft().data))

    def write_ahead(self, sink: FrameSink) -> None:
        """Write waiting datagrams before stream data, within the credit: each packet adds ``share`` of
        its room, up to one packet's room (so a datagram as large as the packet can still go)."""
        room = sink.remaining
        self._credit = min(room, self._credit + self.share * room)
        queue = self._queue
        while queue:
            size = len(queue[0].data) + DATAGRAM_FRAME_OVERHEAD
            if size > self._credit or size > sink.remaining:
                break
            self._credit -= size
            sink.push_frame(Datagram(queue.popleft().data))


class _AheadOfStreams:
    """:class:`DatagramQueue` as the frame source that goes before stream data (within its credit)."""

    __slots__ = ("_queue",)

    def __init__(self, queue: DatagramQueue) -> None:
        self._queue = queue

    def has_data(self) -> bool:
        return self._queue.has_data()

    def write_frames(self, sink: FrameSink) -> None:
        self._queue.write_ahead(sink)


class StreamFrames:
    """The stream manager as a frame source: it paces its sends by the current path's RTT."""

    __slots__ = ("_paths", "_streams", "has_data")

    def __init__(self, streams: StreamManager, paths: Paths) -> None:
        self._streams = streams
        self._paths = paths
        # Asked of a packet that goes anyway (MAX_STREAMS may ride on it): the manager's own method,
        # bound once (no wrapper call per packet; the manager holds nothing of this source).
        self.has_data: Callable[[], bool] = streams.has_frames

    def write_frames(self, sink: PacketSink) -> None:
        self._streams.write_frames(sink, sink.now, self._paths.current.congestion.rtt.smoothed_rtt)


__all__ = ["MAX_QUEUED_DATAGRAMS", "ControlFrames", "DatagramQueue", "StreamFrames"]
