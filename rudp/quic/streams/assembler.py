"""Receive-side reassembly of one stream's bytes by offset (RFC 9000 §2.2).

Owns the bytes a peer sent on one stream until the application reads them: out-of-order pieces are
kept apart, without overlap, until the gap before them fills; in-order bytes wait in one buffer for
``read``. Duplicates and overlaps are trimmed on arrival, so the bytes held never exceed the span
``[read offset, highest offset received)``, which flow control bounds by the window we advertised.

It does not check flow-control limits or final sizes (see :mod:`rudp.quic.streams.recv`), and it
knows nothing of other streams: a gap here never delays another stream.
"""

from __future__ import annotations

from bisect import bisect_right, insort

from rudp.codec.buffer import BytesLike


class Assembler:
    """Orders one stream's incoming bytes and hands them out in sequence."""

    __slots__ = ("_chunks", "_pending_bytes", "_read_offset", "_ready", "_starts")

    def __init__(self) -> None:
        self._ready = bytearray()  # in-order bytes starting at _read_offset
        self._read_offset = 0
        self._starts: list[int] = []  # sorted starts of out-of-order pieces, all above the in-order end
        self._chunks: dict[int, memoryview] = {}
        self._pending_bytes = 0

    @property
    def read_offset(self) -> int:
        """Bytes handed to the application so far."""
        return self._read_offset

    @property
    def contiguous_end(self) -> int:
        """End of the in-order prefix received (everything below it has arrived)."""
        return self._read_offset + len(self._ready)

    @property
    def readable_bytes(self) -> int:
        """In-order bytes waiting to be read."""
        return len(self._ready)

    @property
    def buffered_bytes(self) -> int:
        """All bytes held: readable plus out-of-order."""
        return len(self._ready) + self._pending_bytes

    def insert(self, offset: int, data: BytesLike) -> int:
        """Add ``data`` received at ``offset``; return how many bytes became readable in order."""
        view = memoryview(data)
        end = offset + len(view)
        contiguous = self.contiguous_end
        if end <= contiguous:
            return 0  # a pure duplicate of data already received
        if offset < contiguous:
            view = view[contiguous - offset :]
            offset = contiguous
        if offset > contiguous:
            self._store(offset, view)
            return 0
        self._ready += view
        return len(view) + self._drain_pending()

    def read(self, max_bytes: int = -1) -> bytes:
        """Remove and return up to ``max_bytes`` in-order bytes (all of them when negative)."""
        ready = self._ready
        count = len(ready) if max_bytes < 0 else min(max_bytes, len(ready))
        if count == 0:
            return b""
        if count == len(ready):
            out = bytes(ready)
            self._ready = bytearray()
        else:
            with memoryview(ready) as view:
                out = bytes(view[:count])
            del ready[:count]
        self._read_offset += count
        return out

    def skip(self) -> int:
        """Drop the readable in-order bytes without copying them (as if read); return how many."""
        dropped = len(self._ready)
        self._read_offset += dropped
        self._ready = bytearray()
        return dropped

    def clear(self) -> None:
        """Drop everything held, in order or not (after a reset)."""
        self.skip()
        self._starts.clear()
        self._chunks.clear()
        self._pending_bytes = 0

    def _store(self, offset: int, view: memoryview) -> None:
        """Keep the parts of ``[offset, offset+len(view))`` not already held out of order."""
        starts, chunks = self._starts, self._chunks
        end = offset + len(view)
        index = bisect_right(starts, offset) - 1
        position = offset
        if index >= 0:
            previous_end = starts[index] + len(chunks[starts[index]])
            position = max(position, previous_end)
        index += 1
        pieces: list[tuple[int, memoryview]] = []
        while position < end and index < len(starts) and starts[index] < end:
            start = starts[index]
            if start > position:
                pieces.append((position, view[position - offset : start - offset]))
            position = max(position, start + len(chunks[start]))
            index += 1
        if position < end:
            pieces.append((position, view[position - offset :]))
        for start, piece in pieces:
            insort(starts, start)
            chunks[start] = piece
            self._pending_bytes += len(piece)

    def _drain_pending(self) -> int:
        """Move out-of-order pieces that now touch the in-order end into the ready buffer."""
        starts, chunks = self._starts, self._chunks
        added = 0
        while starts and starts[0] <= self.contiguous_end:
            start = starts.pop(0)
            piece = chunks.pop(start)
            self._pending_bytes -= len(piece)
            contiguous = self.contiguous_end
            if start + len(piece) > contiguous:
                tail = piece[contiguous - start :]
                self._ready += tail
                added += len(tail)
        return added


__all__ = ["Assembler"]
