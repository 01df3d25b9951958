"""HTTP/3 Datagrams (RFC 9297 §2.1) carried in QUIC DATAGRAM frames (RFC 9221).

:class:`DatagramRouter` (one per :class:`~rudp.h3.connection.H3Connection`) owns what the HTTP/3 layer
knows of datagrams: whether each side enabled them, the Quarter Stream ID that prefixes each payload,
which request streams accept datagrams (a :class:`DatagramQueue` each: extended CONNECT tunnels), a
short bounded buffer for datagrams that outrun their request stream, and the rules for the rest:
dropped when their stream is closed or unknown, the stream aborted when its request has no datagram
semantics, the connection closed with H3_DATAGRAM_ERROR when the payload is malformed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Final

from rudp.aio.connection import Connection
from rudp.codec.varint import VARINT_MAX, decode_varint, encode_varint
from rudp.errors import ConnectionClosed, DecodeError, StreamStateError, fresh_close_error
from rudp.h3.errors import H3Error, H3ErrorCode, NotNegotiated
from rudp.h3.frames import Setting

MAX_QUEUED: Final = 256
"""Datagrams kept per stream until read; older ones are dropped beyond it (they are unreliable)."""

MAX_EARLY: Final = 64
"""Datagrams kept (all streams together) that arrived before their request stream was decided."""

MAX_QUARTER_STREAM_ID: Final = VARINT_MAX >> 2
"""RFC 9297 §2.1: stream IDs end at 2**62-1, so a Quarter Stream ID above 2**60-1 is an error."""


class DatagramQueue:
    """The datagrams received for one request stream, waiting for :meth:`get`."""

    def __init__(self, stream_id: int) -> None:
        self.stream_id = stream_id
        self._items: deque[bytes] = deque(maxlen=MAX_QUEUED)
        self._event = asyncio.Event()
        self._closed: Exception | None = None
        self.received = 0
        """Datagrams delivered to this queue (some may have been dropped since, beyond MAX_QUEUED)."""

    def put(self, data: bytes) -> None:
        if self._closed is None:
            self.received += 1
            self._items.append(data)
            self._event.set()

    def close(self, error: Exception) -> None:
        """No more datagrams: :meth:`get` raises ``error`` once the queue is empty."""
        if self._closed is None:
            self._closed = error
            self._event.set()

    async def get(self) -> bytes:
        """The next datagram.

        Raises:
            StreamStateError: the stream no longer takes datagrams (and none is left).
            ConnectionClosed: the connection ended (and none is left).
        """
        while not self._items:
            if self._closed is not None:
                error = self._closed
                raise fresh_close_error(error) if isinstance(error, ConnectionClosed) else error
            self._event.clear()
            await self._event.wait()
        return self._items.popleft()


class DatagramRouter:
    """Sends and routes the HTTP Datagrams of one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.is_client = conn.is_client
        self.local_enabled = False
        """We sent SETTINGS_H3_DATAGRAM=1 (only when QUIC datagrams are enabled on both sides)."""
        self.off_reason = "H3Settings(datagrams=True) is not set on this side"
        """Why :attr:`local_enabled` is False."""
        self.peer_enabled: bool | None = None
        """The peer's SETTINGS_H3_DATAGRAM (None until its SETTINGS arrive)."""
        self._queues: dict[int, DatagramQueue] = {}
        self._refused: dict[int, Callable[[], None]] = {}
        self._undecided: set[int] = set()
        self._highest_seen = -1
        self._early: deque[tuple[int, bytes]] = deque(maxlen=MAX_EARLY)
        self.dropped = 0
        """Datagrams dropped: for closed or unknown streams, or early ones never claimed."""

    # ------------------------------------------------------------------ request streams

    def stream_seen(self, stream_id: int) -> None:
        """(server) A request stream arrived; until :meth:`bind` or :meth:`refuse` decides, its
        datagrams wait in the early buffer."""
        self._highest_seen = max(self._highest_seen, stream_id)
        self._undecided.add(stream_id)

    def bind(self, stream_id: int) -> DatagramQueue:
        """The request on ``stream_id`` accepts datagrams (a CONNECT tunnel): queue them for it."""
        self._undecided.discard(stream_id)
        queue = self._queues.get(stream_id)
        if queue is None:
            queue = self._queues[stream_id] = DatagramQueue(stream_id)
            early = [item for item in self._early if item[0] == stream_id]
            for item in early:
                self._early.remove(item)
                queue.put(item[1])
        return queue

    def refuse(self, stream_id: int, abort: Callable[[], None]) -> None:
        """(server) The request on ``stream_id`` has no datagram semantics: a datagram for it aborts
        the stream (``abort``) with H3_DATAGRAM_ERROR (RFC 9297 §2.1)."""
        self._undecided.discard(stream_id)
        self._refused[stream_id] = abort
        if any(sid == stream_id for sid, _ in self._early):
            self._early = deque((item for item in self._early if item[0] != stream_id), maxlen=MAX_EARLY)
            self._abort_refused(stream_id)

    def release(self, stream_id: int, error: Exception | None = None) -> None:
        """The stream is done: later datagrams for it are dropped (RFC 9297 §2.1); its queue's reader
        gets ``error`` once the queue is empty."""
        self._undecided.discard(stream_id)
        self._refused.pop(stream_id, None)
        queue = self._queues.pop(stream_id, None)
        if queue is not None:
            queue.close(error or StreamStateError(stream_id, f"stream {stream_id} takes no more datagrams"))

    def close_all(self, error: ConnectionClosed) -> None:
        """The connection ended: every reader gets ``error`` after its queued datagrams."""
        for queue in self._queues.values():
            queue.close(error)
        self._queues.clear()
        self._refused.clear()
        self._early.clear()

    # ------------------------------------------------------------------ receiving

    def on_datagram(self, data: bytes) -> None:
        """Route one QUIC DATAGRAM payload.

        Raises:
            H3Error: H3_DATAGRAM_ERROR (connection error) for a payload without a whole Quarter Stream
                ID, or one beyond 2**60-1 (RFC 9297 §2.1).
        """
        if not self.local_enabled:
            # We never offered HTTP Datagrams, so the peer must not send any (RFC 9297 §2.1.1); the
            # QUIC extension may serve something else, so this is dropped rather than fatal.
            self.dropped += 1
            return
        try:
            quarter, offset = decode_varint(data, 0)
        except DecodeError:
            raise H3Error(
                H3ErrorCode.H3_DATAGRAM_ERROR, "a datagram too short for its Quarter Stream ID"
            ) from None
        if quarter > MAX_QUARTER_STREAM_ID:
            raise H3Error(H3ErrorCode.H3_DATAGRAM_ERROR, f"Quarter Stream ID {quarter} is beyond 2**60-1")
        stream_id = quarter * 4
        payload = bytes(data[offset:])
        queue = self._queues.get(stream_id)
        if queue is not None:
            queue.put(payload)
        elif stream_id in self._refused:
            self._abort_refused(stream_id)
        elif not self.is_client and (stream_id in self._undecided or stream_id > self._highest_seen):
            # Not created yet, or its headers are still being read: buffer it briefly (RFC 9297 §2.1
            # allows buffering or dropping; the early buffer is bounded, oldest dropped).
            if len(self._early) == self._early.maxlen:
                self.dropped += 1
            self._early.append((stream_id, payload))
        else:
            self.dropped += 1  # a closed stream (RFC 9297 §2.1: dropped silently), or not one of ours

    def _abort_refused(self, stream_id: int) -> None:
        abort = self._refused.pop(stream_id, None)
        self.dropped += 1
        if abort is not None:
            abort()

    async def run(self) -> None:
        """Read the connection's datagrams until it closes (connection errors raise)."""
        while True:
            self.on_datagram(await self.conn.receive_datagram())

    # ------------------------------------------------------------------ sending

    def check_can_send(self) -> None:
        """Raises:
        NotNegotiated: HTTP Datagrams are not enabled by both sides (RFC 9297 §2.1.1: never sent
            unless the peer's SETTINGS_H3_DATAGRAM is 1), or the peer's SETTINGS are not known yet."""
        if not self.local_enabled:
            raise NotNegotiated(Setting.H3_DATAGRAM, f"HTTP/3 datagrams are off: {self.off_reason}")
        if not self.peer_enabled:
            raise NotNegotiated(
                Setting.H3_DATAGRAM, "the peer did not enable HTTP/3 datagrams (SETTINGS_H3_DATAGRAM)"
            )

    def send(self, stream_id: int, data: bytes) -> None:
        """Send ``data`` as an HTTP Datagram of request stream ``stream_id``.

        Raises:
            NotNegotiated: see :meth:`check_can_send`.
            DatagramError: too large for one QUIC DATAGRAM frame.
            ConnectionClosed: the connection is closed.
        """
        self.check_can_send()
        self.conn.send_datagram(encode_varint(stream_id >> 2) + bytes(data))


__all__ = ["MAX_EARLY", "MAX_QUARTER_STREAM_ID", "MAX_QUEUED", "DatagramQueue", "DatagramRouter"]
