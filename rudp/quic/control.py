"""Frame sources of the 1-RTT packet that no other subsystem owns: HANDSHAKE_DONE, NEW_TOKEN, PINGs
(asked for by the application or by the keep-alive timer), and RFC 9221 DATAGRAM frames.

Each source answers :meth:`has_data` and :meth:`write_frames` (into a
:class:`~rudp.quic.delivery.FrameSink`) and re-queues its own intent when a frame is lost (RFC 9000
§13.3), like the stream manager and the connection-ID tables do. The packetizer asks them in order; it
knows nothing of what they hold.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from rudp.codec.frames import Datagram, HandshakeDone, NewToken, Ping
from rudp.quic.delivery import DeliveryHandler, FrameSink
from rudp.quic.events import Event, PingAcknowledged

DATAGRAM_FRAME_OVERHEAD = 4
"""Type byte and a length varint of up to 3 bytes in front of a DATAGRAM frame's data (RFC 9221 §4)."""


class ControlFrames:
    """HANDSHAKE_DONE (server, RFC 9000 §19.20), NEW_TOKEN (server, §19.7) and PINGs (§19.2)."""

    __slots__ = ("_emit", "_handshake_done", "_keepalive_due", "_new_token", "_next_ping_uid", "_pings")

    def __init__(self, emit: Callable[[Event], None]) -> None:
        self._emit = emit
        self._handshake_done = False
        self._new_token: bytes | None = None
        self._pings: list[int] = []
        self._next_ping_uid = 0
        self._keepalive_due = False

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
        return self._handshake_done or self._new_token is not None or bool(self._pings) or self._keepalive_due

    def write_frames(self, sink: FrameSink) -> None:
        """Write what fits of the waiting frames."""
        if self._handshake_done and sink.remaining >= 1:
            self._handshake_done = False
            sink.push_frame(HandshakeDone(), self._on_handshake_done)
        token = self._new_token
        if token is not None and sink.remaining >= len(token) + 3:
            self._new_token = None
            sink.push_frame(NewToken(token), self._token_handler(token))
        while self._pings and sink.remaining >= 1:
            sink.push_frame(Ping(), self._ping_handler(self._pings.pop(0)))
        if self._keepalive_due and sink.remaining >= 1:
            self._keepalive_due = False
            sink.push_frame(Ping())

    def _on_handshake_done(self, acked: bool) -> None:
        if not acked:
            self._handshake_done = True

    def _token_handler(self, token: bytes) -> DeliveryHandler:
        def handler(acked: bool) -> None:
            if not acked and self._new_token is None:
                self._new_token = token  # RFC 9000 §13.3: a lost NEW_TOKEN is sent again

        return handler

    def _ping_handler(self, uid: int) -> DeliveryHandler:
        def handler(acked: bool) -> None:
            if acked:
                self._emit(PingAcknowledged(uid))
            else:
                self._pings.append(uid)

        return handler


class DatagramQueue:
    """Unreliable datagrams waiting to be sent (RFC 9221 §5: never re-sent when lost)."""

    __slots__ = ("_queue",)

    def __init__(self) -> None:
        self._queue: deque[bytes] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def append(self, data: bytes) -> None:
        """Queue one datagram's payload (the caller checked its size against the peer's limit)."""
        self._queue.append(data)

    def has_data(self) -> bool:
        """True if a datagram is waiting."""
        return bool(self._queue)

    def write_frames(self, sink: FrameSink) -> None:
        """Write the waiting datagrams that fit, in order (one that does not fit waits for the next)."""
        queue = self._queue
        while queue and sink.remaining >= len(queue[0]) + DATAGRAM_FRAME_OVERHEAD:
            sink.push_frame(Datagram(queue.popleft()))


__all__ = ["ControlFrames", "DatagramQueue"]
