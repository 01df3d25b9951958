"""Receive-side reassembly of one stream's bytes by offset (RFC 9000 §2.2).

Owns the bytes a peer sent on one stream until the application reads them: the in-order prefix waits in
one buffer for ``read``; out-of-order bytes are kept in *runs*, one per stretch of contiguous data past
a hole. Pieces that touch or overlap merge into one run, so the runs held are the holes, not the frames.

Costs: only the parts of a piece not received before are stored (the data at an offset never changes,
RFC 9000 §2.2: the first copy wins), found by binary search. Merging copies the smaller runs into the
largest one, so a byte is copied O(log n) times at most, and a run grows at either end in amortized
O(piece) (room is kept in front for pieces that arrive in reverse order). When the hole at the in-order
end fills, the run after it is released in one copy. Reassembling ``n`` pieces in any order is
O(n log n), never O(n²).

Bounds: memory follows the bytes received (no space is reserved for holes), at most the span
``[read offset, highest offset received)`` that flow control bounds by our window, and holes are capped
by :data:`MAX_GAPS` per stream (RFC 9000 §21.7).

It does not check flow-control limits or final sizes (see :mod:`rudp.quic.streams.recv`), and it
knows nothing of other streams: a gap here never delays another stream.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

from rudp.codec.buffer import BytesLike
from rudp.errors import TransportError, TransportErrorCode

MAX_GAPS: Final = 1024
"""Holes a peer may leave in one stream's received data before the connection is closed.

Loss makes holes, one per lost packet still missing: 1024 is more than a 4 MiB window of 1200-byte
packets at 25% loss. A peer past it is not losing packets but scattering small pieces (RFC 9000 §21.7
"stream fragmentation" attack). There is no specific error code: we close with PROTOCOL_VIOLATION, the
generic code for a peer's misbehaviour (§20.1), as RFC 9000 §21.9 allows for non-productive traffic.
FLOW_CONTROL_ERROR would be wrong (the peer is within its credit) and INTERNAL_ERROR would blame us.
"""


class _Run:
    """Contiguous out-of-order bytes: ``buf[head:]``, with ``head`` bytes of room in front."""

    __slots__ = ("buf", "head")

    def __init__(self, data: BytesLike) -> None:
        self.buf = bytearray(data)
        self.head = 0

    def __len__(self) -> int:
        return len(self.buf) - self.head

    def view(self) -> memoryview:
        return memoryview(self.buf)[self.head :]

    def append(self, data: BytesLike) -> None:
        self.buf += data

    def prepend(self, data: BytesLike) -> None:
        size = len(data)
        if size > self.head:
            # Make room for at least as much again as the run holds: amortized O(size) per prepend.
            room = max(size, len(self))
            with self.view() as current:
                self.buf = bytearray(room) + current
            self.head = room
        self.buf[self.head - size : self.head] = data
        self.head -= size


class Assembler:
    """Orders one stream's incoming bytes and hands them out in sequence."""

    __slots__ = (
        "_error_code",
        "_max_gaps",
        "_pending_bytes",
        "_ready",
        "_runs",
        "_starts",
        "_stops",
        "read_offset",
    )

    def __init__(
        self,
        *,
        max_gaps: int = MAX_GAPS,
        error_code: TransportErrorCode = TransportErrorCode.PROTOCOL_VIOLATION,
    ) -> None:
        self._ready = bytearray()  # in-order bytes starting at read_offset
        self.read_offset = 0
        """Bytes handed to the application so far (read-only outside: read once per read)."""
        # The runs, made by the first piece past a hole (:meth:`_holes`; most streams never have one):
        self._starts: list[int] | None = None  # sorted starts of the runs, each after a hole
        self._stops: list[int] | None = None  # their ends (a run never touches the next one)
        self._runs: dict[int, _Run] | None = None  # by start
        self._pending_bytes = 0  # bytes in the runs
        self._max_gaps = max_gaps
        self._error_code = error_code

    @property
    def contiguous_end(self) -> int:
        """End of the in-order prefix received (everything below it has arrived)."""
        return self.read_offset + len(self._ready)

    @property
    def readable_bytes(self) -> int:
        """In-order bytes waiting to be read."""
        return len(self._ready)

    @property
    def buffered_bytes(self) -> int:
        """All bytes held: readable plus out-of-order."""
        return len(self._ready) + self._pending_bytes

    @property
    def gaps(self) -> int:
        """Holes in the received data past the in-order prefix (at most ``max_gaps``)."""
        return len(self._starts or ())

    def insert(self, offset: int, data: BytesLike, frame_type: int = 0) -> int:
        """Add ``data`` received at ``offset``; return how many bytes became readable in order.

        Raises:
            TransportError: (PROTOCOL_VIOLATION by default, with ``frame_type``) when the data would
                leave more than ``max_gaps`` holes.
        """
        contiguous = self.read_offset + len(self._ready)  # contiguous_end, inlined (per STREAM frame)
        if offset == contiguous and not self._starts:
            # In order with nothing held past a hole (a transfer without loss): append, no bookkeeping.
            size = len(data)
            self._ready += data
            return size
        view = memoryview(data)
        end = offset + len(view)
        if end <= contiguous or not view:
            return 0  # a duplicate of data already received (or no data at all)
        if offset < contiguous:
            view = view[contiguous - offset :]
            offset = contiguous
        starts, stops, runs = self._holes()
        first = bisect_left(stops, offset)  # the first run that ends at or after offset
        last = first
        while last < len(starts) and starts[last] <= end:
            last += 1  # runs first..last-1 overlap the piece or touch it
        if first == last:
            if offset == contiguous:  # in order, touching no run: the common case
                self._ready += view
                return len(view)
            if len(starts) >= self._max_gaps:
                raise TransportError(
                    self._error_code, f"more than {self._max_gaps} holes in the received data", frame_type
                )
            starts.insert(first, offset)
            stops.insert(first, end)
            runs[offset] = _Run(view)
            self._pending_bytes += len(view)
            return 0
        start = self._merge(offset, view, first, last)
        if start != contiguous:
            return 0
        # The hole at the in-order end is filled: release the run after it in one copy.
        del starts[0], stops[0]
        run = runs.pop(start)
        with run.view() as released:
            self._ready += released
        self._pending_bytes -= len(run)
        return len(run)

    def insert_pieces(self, offset: int, pieces: list[BytesLike], frame_type: int = 0) -> int:
        """:meth:`insert` for each of ``pieces``, consecutive from ``offset``, in turn; the total
        :meth:`insert` would return (with the same error, at the same piece)."""
        if offset == self.read_offset + len(self._ready) and not self._starts:
            ready = self._ready  # in order with nothing held past a hole: append them all
            size = len(ready)
            for piece in pieces:
                ready += piece
            return len(ready) - size
        total = 0
        for piece in pieces:
            total += self.insert(offset, piece, frame_type)
            offset += len(piece)
        return total

    def _merge(self, offset: int, view: memoryview, first: int, last: int) -> int:
        """Merge the piece with runs ``first..last-1`` into the largest of them; return its start."""
        starts, stops, runs = self._holes()
        end = offset + len(view)
        base_start = max(starts[first:last], key=lambda start: len(runs[start]))
        base = runs[base_start]
        # The merged run in order: the parts of the piece that no run holds, and the other runs, in
        # front of the base run (``before``) or after it. The base grows in place (no view of it may
        # exist meanwhile); the other runs are copied into it once and dropped.
        before: list[memoryview] = []
        after: list[memoryview] = []
        parts = before
        position = offset
        for index in range(first, last):
            run_start = starts[index]
            if run_start > position:
                parts.append(view[position - offset : run_start - offset])
                self._pending_bytes += run_start - position
            if run_start == base_start:
                parts = after
            else:
                parts.append(runs.pop(run_start).view())
            position = stops[index]
        if end > position:
            parts.append(view[position - offset :])
            self._pending_bytes += end - position
        for part in reversed(before):
            base.prepend(part)
        for part in after:
            base.append(part)
        del runs[base_start]
        new_start = min(offset, starts[first])
        starts[first:last] = [new_start]
        stops[first:last] = [max(end, stops[last - 1])]
        runs[new_start] = base
        return new_start

    def _holes(self) -> tuple[list[int], list[int], dict[int, _Run]]:
        """The runs' starts, ends and runs by start (made on first use)."""
        starts, stops, runs = self._starts, self._stops, self._runs
        if starts is None or stops is None or runs is None:
            starts, stops, runs = self._starts, self._stops, self._runs = [], [], {}
        return starts, stops, runs

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
        self.read_offset += count
        return out

    def skip(self) -> int:
        """Drop the readable in-order bytes without copying them (as if read); return how many."""
        dropped = len(self._ready)
        self.read_offset += dropped
        self._ready = bytearray()
        return dropped

    def clear(self) -> None:
        """Drop everything held, in order or not (after a reset)."""
        self.skip()
        self._starts = self._stops = self._runs = None
        self._pending_bytes = 0


__all__ = ["MAX_GAPS", "Assembler"]
