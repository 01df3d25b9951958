"""What the TCP mux hands to the transport: the frame writer (:class:`Outbox`) and the datagrams.

Owns the bytes being assembled for the next ``data_to_send()`` with the counters of what left (frames,
writes, bytes), and :class:`Datagrams`: messages queued for sending, the peer's datagram limit from its
HELLO, and the legality of the DATAGRAM frames it sends. It does not decide the order of the output
(:mod:`rudp.tcp.mux`) nor hold stream data (:mod:`rudp.tcp.table`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Final

from rudp.codec.buffer import Writer
from rudp.config import Config
from rudp.errors import DatagramError, TransportError
from rudp.errors import TransportErrorCode as Code
from rudp.quic.events import DatagramReceived, Event
from rudp.tcp.framing import Datagram, Frame, FrameKind, write_frame
from rudp.tcp.state import Lifecycle

MAX_QUEUED_DATAGRAMS: Final = 256
"""Datagrams held for sending at most; older ones are dropped."""


class Outbox:
    """Frames written since the last ``take()``; nothing but the CLOSE once the connection is dead."""

    __slots__ = ("_lifecycle", "_writer", "bytes_sent", "frames_sent", "writes")

    def __init__(self, lifecycle: Lifecycle) -> None:
        self._lifecycle = lifecycle
        self._writer = Writer()
        self.frames_sent = 0
        """Frames written over the connection's life."""
        self.writes = 0
        """Non-empty outputs handed to the transport."""
        self.bytes_sent = 0
        """Mux bytes handed to the transport (before TLS)."""

    @property
    def pending(self) -> bool:
        """True when frames wait to be taken."""
        return len(self._writer) > 0

    def write(self, frame: Frame) -> None:
        """Append ``frame``; ignored once the connection is closing or closed (the CLOSE is the last)."""
        if self._lifecycle.dead:
            return
        write_frame(self._writer, frame)
        self.frames_sent += 1

    def replace_with(self, close: Frame) -> None:
        """Drop every frame not yet taken and write ``close`` alone: pending frames are moot now."""
        self._writer = Writer()
        write_frame(self._writer, close)
        self.frames_sent += 1

    def take(self) -> bytes:
        """The bytes written so far, counted as one write to the transport; the outbox is empty after."""
        data = self._writer.getvalue()
        self._writer = Writer()
        if data:
            self.writes += 1
            self.bytes_sent += len(data)
        return data


class Datagrams:
    """Datagrams both ways: the send queue and its limit, and the checks on received DATAGRAM frames.

    Datagrams must be enabled on both sides, as in QUIC (RFC 9221 §3); over TCP they are delivered
    reliably and in order.
    """

    __slots__ = ("_emit", "_enabled", "_max_bytes", "_peer_max_bytes", "_queue")

    def __init__(self, config: Config, emit: Callable[[Event], None]) -> None:
        self._emit = emit
        self._enabled = config.datagrams
        self._max_bytes = config.max_datagram_frame_size
        self._peer_max_bytes: int | None = None  # None until the peer's HELLO; 0 means disabled
        self._queue: deque[bytes] = deque()

    def send(self, data: bytes) -> None:
        """Queue ``data``; beyond :data:`MAX_QUEUED_DATAGRAMS` the oldest queued one is dropped.

        Raises:
            DatagramError: not enabled on both sides, or ``data`` is too large.
        """
        peer = self._peer_max_bytes
        if not self._enabled or peer == 0:
            raise DatagramError.not_enabled()
        limit = self._max_bytes if peer is None else peer
        if len(data) > limit:
            raise DatagramError.too_large(len(data), limit)
        if len(self._queue) >= MAX_QUEUED_DATAGRAMS:
            self._queue.popleft()
        self._queue.append(bytes(data))

    def on_peer_hello(self, max_bytes: int) -> None:
        """The peer's HELLO states its limit (0: disabled): drop queued datagrams it would refuse."""
        self._peer_max_bytes = max_bytes
        kept = [d for d in self._queue if max_bytes and len(d) <= max_bytes]
        self._queue.clear()
        self._queue.extend(kept)

    def on_datagram(self, frame: Datagram) -> None:
        """A DATAGRAM from the peer.

        Raises:
            TransportError: PROTOCOL_VIOLATION when we did not enable datagrams or it is too large.
        """
        if not self._enabled or len(frame.data) > self._max_bytes:
            raise TransportError(
                Code.PROTOCOL_VIOLATION, "unexpected or oversized DATAGRAM", FrameKind.DATAGRAM
            )
        self._emit(DatagramReceived(frame.data))

    def write(self, outbox: Outbox, budget: int) -> int:
        """Move queued datagrams into ``outbox`` while ``budget`` bytes remain; return what remains.

        Nothing moves before the peer's HELLO (its limit is not known yet).
        """
        while self._queue and budget > 0 and self._peer_max_bytes is not None:
            datagram = self._queue.popleft()
            outbox.write(Datagram(datagram))
            budget -= len(datagram)
        return budget

    def clear(self) -> None:
        """Forget the queue (the connection is closing)."""
        self._queue.clear()


__all__ = ["MAX_QUEUED_DATAGRAMS", "Datagrams", "Outbox"]
