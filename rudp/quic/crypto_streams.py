"""CRYPTO frame streams, one pair per encryption level (RFC 9000 §19.6, RFC 9001 §4.1.3).

The receive side reassembles CRYPTO data by offset and hands in-order bytes to TLS; the send side keeps
handshake bytes until acknowledged and re-queues lost ranges (intents, not old frames). Buffered
out-of-order data is bounded (CRYPTO_BUFFER_EXCEEDED, RFC 9000 §7.5).
"""

from __future__ import annotations

import heapq
from functools import partial
from typing import Final

from rudp.codec.frame_codec import crypto_frame_overhead
from rudp.codec.frames import Crypto
from rudp.errors import TransportError, TransportErrorCode
from rudp.quic.delivery import FrameSink
from rudp.quic.rangeset import RangeSet

MAX_CRYPTO_BUFFER = 64 * 1024  # RFC 9000 §7.5: at least 4096 bytes; certificates can be large
MAX_CRYPTO_CHUNKS = 256
"""Out-of-order CRYPTO pieces held per level. A TLS flight split into even 1000-byte frames stays far
below; more is a peer scattering tiny frames (RFC 9000 §21.7, §21.9), refused as CRYPTO_BUFFER_EXCEEDED
like any other excess of out-of-order CRYPTO data (§7.5). Initial keys are public, so this also bounds
what one spoofed Initial can make a server hold."""


_NO_CHUNKS: Final[dict[int, bytes]] = {}
_NO_STARTS: Final[list[int]] = []
"""The records of every receive buffer holding no out-of-order piece yet: shared, always empty (only
:meth:`CryptoReceiveBuffer._hold` adds, and it first gives the buffer its own)."""


class CryptoReceiveBuffer:
    """Reassembles one level's CRYPTO stream.

    Out-of-order pieces are kept as received (no holes are allocated: Initial packets are not
    authenticated, so memory follows the bytes received), their starts in a heap: each piece is
    released in O(log pieces), never by rescanning the others.
    """

    __slots__ = ("_buffered", "_chunks", "_starts", "offset")

    def __init__(self) -> None:
        self.offset = 0
        """Bytes delivered in order so far."""
        # The shared empty records until the first out-of-order piece (most levels never see one: a
        # flight's CRYPTO frames usually arrive in order), then the buffer's own (see _hold).
        self._chunks: dict[int, bytes] = _NO_CHUNKS
        self._starts: list[int] = _NO_STARTS  # heap of the keys of _chunks
        self._buffered = 0

    def receive(self, frame: Crypto) -> bytes:
        """Add a CRYPTO frame; return the newly contiguous bytes (maybe empty).

        Raises:
            TransportError: CRYPTO_BUFFER_EXCEEDED if the frame reaches too far beyond the delivered
                offset, or too much out-of-order data (or too many pieces of it) is held.
        """
        start, data = frame.offset, frame.data
        end = start + len(data)
        if end <= self.offset:
            return b""
        if end - self.offset > MAX_CRYPTO_BUFFER:
            raise TransportError(TransportErrorCode.CRYPTO_BUFFER_EXCEEDED, "CRYPTO data too far ahead", 0x06)
        if start > self.offset:
            self._hold(start, data)
            return b""
        out = bytearray(data[self.offset - start :])
        self.offset = end
        chunks, starts = self._chunks, self._starts
        while starts and starts[0] <= self.offset:
            chunk_start = heapq.heappop(starts)
            chunk = chunks.pop(chunk_start)
            self._buffered -= len(chunk)
            chunk_end = chunk_start + len(chunk)
            if chunk_end > self.offset:
                out += chunk[self.offset - chunk_start :]
                self.offset = chunk_end
        return bytes(out)

    def _hold(self, start: int, data: bytes) -> None:
        if self._chunks is _NO_CHUNKS:  # the first piece held: the buffer's own records from now on
            self._chunks = {}
            self._starts = []
        held = self._chunks.get(start)
        if held is not None and len(held) >= len(data):
            return
        if held is None:
            if len(self._chunks) >= MAX_CRYPTO_CHUNKS:
                raise TransportError(
                    TransportErrorCode.CRYPTO_BUFFER_EXCEEDED, "CRYPTO data in too many pieces", 0x06
                )
            heapq.heappush(self._starts, start)
        self._buffered += len(data) - (0 if held is None else len(held))
        self._chunks[start] = data
        if self._buffered > 2 * MAX_CRYPTO_BUFFER:
            raise TransportError(TransportErrorCode.CRYPTO_BUFFER_EXCEEDED, "too much CRYPTO data held", 0x06)


class CryptoSendBuffer:
    """One level's outgoing CRYPTO stream with loss-driven retransmission."""

    __slots__ = ("_acked", "_data", "_pending", "unsent")

    def __init__(self) -> None:
        self._data = bytearray()
        self._pending = RangeSet()
        self._acked = RangeSet()
        self.unsent = False
        """True if some bytes are unsent or were lost: :meth:`has_data`'s answer, kept on every change
        of the pending ranges (read before every datagram: an attribute, no call)."""

    def write(self, data: bytes) -> None:
        """Queue handshake bytes from TLS."""
        if data:
            start = len(self._data)
            self._data += data
            self._pending.add(start, len(self._data))
            self.unsent = True

    def has_data(self) -> bool:
        """True if some bytes are unsent or were lost (the packetizer's ``FrameSource`` question)."""
        return self.unsent

    has_data_to_send = has_data  # one function, no second call per question

    def all_acked(self) -> bool:
        """True when every byte written has been acknowledged."""
        return not self._data or self._acked.covers(0, len(self._data))

    def requeue_unacked(self) -> None:
        """Mark every unacknowledged byte for sending again (PTO probes, RFC 9002 §6.2.4)."""
        self._pending = RangeSet()
        position = 0
        for low, high in self._acked:
            if low > position:
                self._pending.add(position, low)
            position = high
        if position < len(self._data):
            self._pending.add(position, len(self._data))
        self.unsent = bool(self._pending)

    def write_frames(self, sink: FrameSink) -> None:
        """Write CRYPTO frames for pending ranges while they fit."""
        pending = self._pending
        count = len(pending)  # each step below takes a whole range or fills the sink: at most these
        taken = 0
        try:
            for _ in range(count):
                start, stop = pending[0]
                length = stop - start
                if start <= 0x3FFF and length <= 0x3FFF:  # (a handshake's offsets: 1- or 2-byte varints)
                    overhead = (2 if start <= 0x3F else 3) + (1 if length <= 0x3F else 2)
                else:
                    overhead = crypto_frame_overhead(start, length)
                room = sink.remaining - overhead
                if room <= 0:
                    break
                if length <= room:
                    pending.shift()  # the whole first range (a flight that fits: the usual case)
                    taken += 1
                else:
                    stop = start + room
                    pending.subtract(start, stop)
                handler = partial(self._on_delivery, start, stop)  # (a partial: no closure per frame)
                sink.push_frame(Crypto(start, bytes(self._data[start:stop])), handler)
        except BaseException:
            self.unsent = bool(pending)
            raise
        self.unsent = taken < count  # (the ranges not taken whole are still pending)

    def _on_delivery(self, start: int, stop: int, acked: bool) -> None:
        """The delivery handler of the CRYPTO frame of ``[start, stop)`` (a partial: no closure made
        per frame): acknowledged bytes are done, lost ones not acknowledged since are sent again."""
        if acked:
            self._acked.add(start, stop)
        elif not self._acked.covers(start, stop):
            self._pending.add(start, stop)
            for low, high in self._acked:
                self._pending.subtract(low, high)
            self.unsent = bool(self._pending)
