"""Receive-side reassembly of one stream's bytes by offset (RFC 9000 §2.2).

Owns the bytes a peer sent on one stream until the application reads them. They live in one buffer that
starts at the read offset: the in-order prefix, then the out-of-order part, where holes not yet received
are zeros. A :class:`~rudp.quic.rangeset.RangeSet` says which ranges past the in-order prefix arrived;
adjacent and overlapping pieces merge there, so its size is the number of holes, not of frames.

Costs: a frame is copied once into place; only its parts not received before are written (the data at
an offset never changes, RFC 9000 §2.2: the first copy wins), found by binary search; a frame that fills
the hole at the in-order end releases everything contiguous after it in one step. Reassembling ``n``
pieces in any order is O(n log n) plus memmoves bounded by :data:`MAX_GAPS`, never O(n²).

Bounds: the buffer spans at most ``[read offset, highest offset received)``, which stream flow control
bounds by the window we advertised (the RFC 9000 §21.7 mitigation: windows that correspond to memory),
and holes are capped by :data:`MAX_GAPS` per stream.

It does not check flow-control limits or final sizes (see :mod:`rudp.quic.streams.recv`), and it
knows nothing of other streams: a gap here never delays another stream.
"""

from __future__ import annotations

from typing import Final

from rudp.codec.buffer import BytesLike
from rudp.errors import TransportError, TransportErrorCode
from rudp.quic.rangeset import RangeSet

MAX_GAPS: Final = 1024
"""Holes a peer may leave in one stream's received data before the connection is closed.

Loss makes holes, one per lost packet still missing: 1024 is more than a 4 MiB window of 1200-byte
packets at 25% loss. A peer past it is not losing packets but scattering small pieces (RFC 9000 §21.7
"stream fragmentation" attack). There is no specific error code: we close with PROTOCOL_VIOLATION, the
generic code for a peer's misbehaviour (§20.1), as RFC 9000 §21.9 allows for non-productive traffic.
FLOW_CONTROL_ERROR would be wrong (the peer is within its credit) and INTERNAL_ERROR would blame us.
"""


class Assembler:
    """Orders one stream's incoming bytes and hands them out in sequence."""

    __slots__ = (
        "_buffer",
        "_contiguous_end",
        "_error_code",
        "_max_gaps",
        "_pending_bytes",
        "_ranges",
        "_read_offset",
    )

    def __init__(
        self,
        *,
        max_gaps: int = MAX_GAPS,
        error_code: TransportErrorCode = TransportErrorCode.PROTOCOL_VIOLATION,
    ) -> None:
        self._buffer = bytearray()  # bytes from _read_offset on; holes past _contiguous_end are zeros
        self._read_offset = 0
        self._contiguous_end = 0
        self._ranges = RangeSet()  # what arrived past _contiguous_end: each range follows a hole
        self._pending_bytes = 0  # bytes in _ranges
        self._max_gaps = max_gaps
        self._error_code = error_code

    @property
    def read_offset(self) -> int:
        """Bytes handed to the application so far."""
        return self._read_offset

    @property
    def contiguous_end(self) -> int:
        """End of the in-order prefix received (everything below it has arrived)."""
        return self._contiguous_end

    @property
    def readable_bytes(self) -> int:
        """In-order bytes waiting to be read."""
        return self._contiguous_end - self._read_offset

    @property
    def buffered_bytes(self) -> int:
        """All bytes held: readable plus out-of-order (holes not counted)."""
        return self._contiguous_end - self._read_offset + self._pending_bytes

    @property
    def gaps(self) -> int:
        """Holes in the received data past the in-order prefix (at most ``max_gaps``)."""
        return len(self._ranges)

    def insert(self, offset: int, data: BytesLike, frame_type: int = 0) -> int:
        """Add ``data`` received at ``offset``; return how many bytes became readable in order.

        Raises:
            TransportError: (PROTOCOL_VIOLATION by default, with ``frame_type``) when the data would
                leave more than ``max_gaps`` holes.
        """
        size = len(data)
        end = offset + size
        contiguous = self._contiguous_end
        if end <= contiguous or size == 0:
            return 0  # a duplicate of data already received (or no data at all)
        view = memoryview(data)
        if offset < contiguous:
            view = view[contiguous - offset :]
            offset = contiguous
        buffer, ranges, base = self._buffer, self._ranges, self._read_offset
        if not ranges and offset == contiguous:  # in order, nothing held past it: the common case
            buffer += view
            self._contiguous_end = end
            return end - contiguous
        if offset > contiguous and len(ranges) >= self._max_gaps and not ranges.touches(offset, end):
            raise TransportError(
                self._error_code, f"more than {self._max_gaps} holes in the received data", frame_type
            )
        if offset - base >= len(buffer):  # past everything held: a new hole, then the data
            buffer += bytes(offset - base - len(buffer))
            buffer += view
            self._pending_bytes += end - offset
        else:
            if end - base > len(buffer):
                buffer += bytes(end - base - len(buffer))
            for low, high in ranges.missing(offset, end):
                buffer[low - base : high - base] = view[low - offset : high - offset]
                self._pending_bytes += high - low
        ranges.add(offset, end)
        if offset == contiguous:
            # The hole at the in-order end is filled: release the whole run after it at once.
            _, stop = ranges.shift()
            self._pending_bytes -= stop - contiguous
            self._contiguous_end = stop
        return self._contiguous_end - contiguous

    def read(self, max_bytes: int = -1) -> bytes:
        """Remove and return up to ``max_bytes`` in-order bytes (all of them when negative)."""
        readable = self._contiguous_end - self._read_offset
        count = readable if max_bytes < 0 else min(max_bytes, readable)
        if count == 0:
            return b""
        buffer = self._buffer
        if count == len(buffer):
            out = bytes(buffer)
            self._buffer = bytearray()
        else:
            with memoryview(buffer) as view:
                out = bytes(view[:count])
            del buffer[:count]
        self._read_offset += count
        return out

    def skip(self) -> int:
        """Drop the readable in-order bytes without copying them (as if read); return how many."""
        dropped = self._contiguous_end - self._read_offset
        del self._buffer[:dropped]
        self._read_offset = self._contiguous_end
        return dropped

    def clear(self) -> None:
        """Drop everything held, in order or not (after a reset)."""
        self.skip()
        self._buffer = bytearray()
        self._ranges = RangeSet()
        self._pending_bytes = 0


__all__ = ["MAX_GAPS", "Assembler"]
