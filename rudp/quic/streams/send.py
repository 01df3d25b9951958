"""The sending part of a stream: state machine (RFC 9000 §3.1), bounded buffer and frame building.

Owns the bytes the application wrote until the peer acknowledges them (:class:`SendBuffer`, bounded by
the per-stream budget), which ranges still need (re)sending, the FIN as its own deliverable, the
stream-level credit the peer granted (MAX_STREAM_DATA) and our RESET_STREAM until it is acknowledged.

It does not own connection-level credit, scheduling across streams or control-frame output: the
manager passes the connection credit in and pushes the frames this module builds.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from enum import Enum
from typing import Final

from rudp.codec.buffer import BytesLike
from rudp.codec.frame_codec import stream_frame_overhead
from rudp.codec.frames import Stream
from rudp.errors import StreamStateError
from rudp.quic.flow import SendCredit
from rudp.quic.rangeset import RangeSet

CHUNK_MERGE_BYTES: Final = 16384
"""A write joins the last chunk of a send buffer while both fit in this many bytes (see SendBuffer)."""


class SendState(Enum):
    """Sending-part states (RFC 9000 §3.1, Figure 2)."""

    READY = "Ready"
    SEND = "Send"
    DATA_SENT = "Data Sent"
    DATA_RECVD = "Data Recvd"
    RESET_SENT = "Reset Sent"
    RESET_RECVD = "Reset Recvd"


# Tuples, not sets: membership by identity needs no Enum.__hash__ call (these run once per frame).
_RESET_STATES = (SendState.RESET_SENT, SendState.RESET_RECVD)
_DONE_STATES = (SendState.DATA_RECVD, SendState.RESET_SENT, SendState.RESET_RECVD)
_TERMINAL_STATES = (SendState.DATA_RECVD, SendState.RESET_RECVD)  # (enum lookups are slow in 3.11)
_SEND = SendState.SEND
_READY = SendState.READY  # read once per frame: a module name, not the Enum class's attribute lookup
_DATA_SENT, _DATA_RECVD = SendState.DATA_SENT, SendState.DATA_RECVD


def _varint_size(value: int) -> int:
    """RFC 9000 §16: bytes of the shortest varint of ``value`` (0 <= value < 2**62), one expression."""
    return 1 if value <= 0x3F else 2 if value <= 0x3FFF else 4 if value <= 0x3FFFFFFF else 8


def _gaps(ranges: Iterable[tuple[int, int]], start: int, stop: int) -> list[tuple[int, int]]:
    """The parts of ``[start, stop)`` not covered by ``ranges``."""
    gaps: list[tuple[int, int]] = []
    position = start
    for low, high in ranges:
        if high <= position:
            continue
        if low >= stop:
            break
        if low > position:
            gaps.append((position, low))
        position = max(position, high)
        if position >= stop:
            return gaps
    if position < stop:
        gaps.append((position, stop))
    return gaps


class SendBuffer:
    """Bytes written but not yet acknowledged, at offsets ``[base, end)``; at most ``capacity`` of them.

    Bytes below :attr:`next_offset` were sent at least once; lost ranges wait in a re-send set. Bytes
    are freed only from the front, once everything below them is acknowledged; acknowledged ranges above
    the front are remembered so they are never sent again.

    The bytes are kept as the immutable chunks the application wrote (small writes merged, up to
    :data:`CHUNK_MERGE_BYTES`), each with its offset: a frame's bytes are a slice of one chunk (two
    for a frame across a boundary), and acknowledgments drop whole chunks from the front. One
    contiguous buffer would move (or copy, on growth) everything it holds whenever the front is freed
    and the back grows, about once per ACK. A chunk partly acknowledged stays whole until its last
    byte is, so up to one chunk more than :attr:`capacity` may be held in memory.
    """

    __slots__ = (
        "_acked",
        "_acked_above",
        "_base",
        "_chunks",
        "_lost",
        "_starts",
        "capacity",
        "end",
        "has_lost",
        "next_offset",
    )

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        """Most bytes held at once (the per-stream send-buffer budget)."""
        self._chunks: list[bytes] = []  # the bytes written, in order; they cover [_base, end)
        self._starts: list[int] = []  # the offset of each chunk
        self._base = 0
        self.end = 0
        """Offset after the last byte written."""
        self.next_offset = 0
        """Offset of the first byte never sent (everything below was sent at least once)."""
        # The two range sets are made on first use (most streams of small requests never need one).
        self._acked: RangeSet | None = None  # acknowledged ranges above _base
        self._acked_above = False  # bool(self._acked), kept with it (asked for every acknowledgment)
        self._lost: RangeSet | None = None  # ranges below next_offset that need re-sending
        self.has_lost = False
        """True when some range needs re-sending (kept with ``_lost``: read for every frame, and
        almost always False, so it is a plain attribute rather than a question to the range set)."""

    @property
    def buffered_bytes(self) -> int:
        """Bytes held (written and not yet acknowledged from the front)."""
        return self.end - self._base

    @property
    def free(self) -> int:
        """Bytes :meth:`write` would accept now."""
        return max(0, self.capacity - (self.end - self._base))

    @property
    def acked_offset(self) -> int:
        """Every byte below this offset is acknowledged."""
        return self._base

    def write(self, data: BytesLike) -> int:
        """Append as much of ``data`` as the budget allows; return the count accepted."""
        count = min(len(data), self.capacity - (self.end - self._base))  # self.free, inline
        if count <= 0:
            return 0
        if count == len(data) and type(data) is bytes:
            chunk = data  # immutable: kept as it is
        else:
            with memoryview(data) as view:
                chunk = bytes(view[:count])  # the one copy: the application may reuse its buffer
        chunks = self._chunks
        if chunks and len(chunks[-1]) + count <= CHUNK_MERGE_BYTES:
            chunks[-1] += chunk  # small writes: one chunk, not one per write
        else:
            chunks.append(chunk)
            self._starts.append(self.end)
        self.end += count
        return count

    def peek(self, start: int, stop: int) -> bytes:
        """Copy of the bytes at ``[start, stop)``, which must be held."""
        if stop <= start:
            return b""  # a FIN alone (possibly after every byte was acknowledged)
        starts = self._starts
        index = bisect_right(starts, start) - 1
        chunks = self._chunks
        chunk = chunks[index]
        first = starts[index]
        if stop - first <= len(chunk):
            return chunk[start - first : stop - first]  # the usual frame: within one chunk
        parts = [chunk[start - first :]]
        while True:
            index += 1
            chunk = chunks[index]
            first = starts[index]
            if stop - first <= len(chunk):
                parts.append(chunk[: stop - first])
                return b"".join(parts)
            parts.append(chunk)

    def _free_front(self, base: int) -> None:
        """Everything below ``base`` is acknowledged: move the front there, drop the chunks below it."""
        self._base = base
        starts, chunks = self._starts, self._chunks
        if not chunks or starts[0] + len(chunks[0]) > base:
            return  # the first chunk is still partly unacknowledged
        count = 0
        while count < len(chunks) and starts[count] + len(chunks[count]) <= base:
            count += 1
        if count:
            del chunks[:count]
            del starts[:count]

    def first_lost(self) -> tuple[int, int] | None:
        """The lowest range waiting to be re-sent."""
        lost = self._lost
        return lost[0] if lost is not None and self.has_lost else None

    def mark_resent(self, start: int, stop: int) -> None:
        """``[start, stop)`` was put in a new frame: it is no longer waiting."""
        lost = self._lost
        if lost is not None:
            lost.subtract(start, stop)
            self.has_lost = bool(lost)

    def _unlost(self, start: int, stop: int) -> None:
        """``[start, stop)`` needs no re-sending any more (it was acknowledged)."""
        lost = self._lost
        if self.has_lost and lost is not None:
            lost.subtract(start, stop)
            self.has_lost = bool(lost)

    def mark_sent(self, stop: int) -> None:
        """New data up to ``stop`` was put in a frame."""
        self.next_offset = max(self.next_offset, stop)

    def take_new(self, start: int, stop: int) -> bytes:
        """:meth:`mark_sent` and :meth:`peek` in one: new data ``[start, stop)`` goes in a frame."""
        if stop > self.next_offset:
            self.next_offset = stop
        starts = self._starts
        index = bisect_right(starts, start) - 1
        if index >= 0:
            chunk = self._chunks[index]
            first = starts[index]
            if stop - first <= len(chunk):
                return chunk[start - first : stop - first]  # as peek: the usual frame, one chunk
        return self.peek(start, stop)

    def take_run(self, start: int, length: int, count: int) -> list[bytes]:
        """:meth:`take_new` of ``count`` consecutive ``length``-byte ranges from ``start`` (held, never
        sent): the frames of a packet train's run (:meth:`SendStream.take_full_frames`)."""
        stop = start + length * count
        if stop > self.next_offset:
            self.next_offset = stop
        starts, chunks = self._starts, self._chunks
        index = bisect_right(starts, start) - 1
        chunk = chunks[index]
        first = starts[index]
        end = first + len(chunk)
        out: list[bytes] = []
        append = out.append
        while start < stop:
            high = start + length
            if high <= end:
                append(chunk[start - first : high - first])
            else:
                append(self.peek(start, high))  # across a chunk boundary
                index = bisect_right(starts, high) - 1
                if index < len(chunks):
                    chunk = chunks[index]
                    first = starts[index]
                    end = first + len(chunk)
            start = high
        return out

    def on_acked(self, start: int, stop: int) -> int:
        """``[start, stop)`` was acknowledged: never re-send it and free the acknowledged front.
        Returns the offset below which every byte is now acknowledged (:attr:`acked_offset`)."""
        base = self._base
        if start <= base and not self._acked_above:
            # The usual case, in-order acknowledgments: the front moves; no range set involved.
            if stop > base:
                if self.has_lost:
                    self._unlost(base, stop)
                self._base = stop
                chunks = self._chunks
                if chunks and self._starts[0] + len(chunks[0]) <= stop:
                    self._free_front(stop)  # a whole chunk is acknowledged
                return stop
            return base
        start = max(start, base)
        if stop <= start:
            return base
        acked = self._acked
        if acked is None:
            acked = self._acked = RangeSet()
        acked.add(start, stop)
        if self.has_lost:
            self._unlost(start, stop)
        low, high = acked[0]
        if low <= self._base:
            acked.shift()
            self._free_front(high)
        self._acked_above = bool(acked)
        return self._base

    def on_lost(self, start: int, stop: int) -> None:
        """``[start, stop)`` was lost: queue the parts not acknowledged meanwhile for re-sending."""
        start = max(start, self._base)
        lost = self._lost
        if lost is None:
            lost = self._lost = RangeSet()
        for low, high in _gaps(self._acked or (), start, stop):
            lost.add(low, high)
        self.has_lost = bool(lost)

    def first_unacked(self) -> tuple[int, int] | None:
        """The lowest range sent at least once and not acknowledged yet, or None."""
        gaps = _gaps(self._acked or (), self._base, self.next_offset)
        return gaps[0] if gaps else None

    def clear(self) -> None:
        """Drop every byte (the stream was reset); offsets stay where they are."""
        self._chunks = []
        self._starts = []
        self._base = self.end
        self._acked = None
        self._acked_above = False
        self._lost = None
        self.has_lost = False


class SendStream:
    """The sending part of one stream (RFC 9000 §3.1)."""

    __slots__ = (
        "_fin_acked",
        "_fin_offset",
        "_fin_pending",
        "buffer",
        "credit",
        "final_size",
        "reset_code",
        "reset_pending",
        "state",
        "stream_id",
        "write_blocked",
    )

    def __init__(self, stream_id: int, *, credit: int, buffer_bytes: int) -> None:
        self.stream_id = stream_id
        self.state = _READY
        self.buffer = SendBuffer(buffer_bytes)
        self.credit = SendCredit(credit)
        """Stream-level credit from the peer; ``credit.used`` is the highest offset sent."""
        self._fin_offset: int | None = None
        self._fin_pending = False  # a frame with FIN must be (re)sent
        self._fin_acked = False
        self.reset_code: int | None = None
        self.reset_pending = False
        """A RESET_STREAM must be (re)sent."""
        self.final_size = 0
        """Final size carried by our RESET_STREAM (the highest offset sent, RFC 9000 §4.5)."""
        self.write_blocked = False
        """The application wrote more than the buffer took; it is owed a StreamWritable."""

    @property
    def is_done(self) -> bool:
        """True in a terminal state (Data Recvd, Reset Recvd)."""
        return self.state in _TERMINAL_STATES

    @property
    def is_reset(self) -> bool:
        """True once we reset the stream."""
        return self.state in _RESET_STATES

    @property
    def has_unsent_data(self) -> bool:
        """True when written bytes were never sent (credit permitting)."""
        return self.buffer.next_offset < self.buffer.end and self.state not in _DONE_STATES

    def write(self, data: BytesLike, fin: bool) -> int:
        """Buffer as much of ``data`` as the budget allows; FIN applies only if all of it was taken.

        Raises:
            StreamStateError: after FIN or after the stream was reset.
        """
        if self._fin_offset is not None or self.state in _DONE_STATES:
            raise StreamStateError(self.stream_id, f"stream {self.stream_id} is finished or reset")
        accepted = self.buffer.write(data) if data else 0  # (write_eof writes nothing, with FIN)
        if accepted < len(data):
            self.write_blocked = True
        elif fin:
            self._fin_offset = self.buffer.end
            self._fin_pending = True
        return accepted

    def wants_to_send(self, connection_credit: int) -> bool:
        """True when :meth:`next_frame` could produce a frame given ``connection_credit``."""
        if self.state in _DONE_STATES:
            return False
        buffer = self.buffer
        if buffer.has_lost or (self._fin_pending and buffer.next_offset == self._fin_offset):
            return True
        credit = self.credit
        return buffer.next_offset < buffer.end and credit.limit > credit.used and connection_credit > 0

    def next_frame(self, max_size: int, connection_credit: int) -> tuple[Stream, int] | None:
        """Build the next STREAM frame of at most ``max_size`` bytes: re-sends first, then new data.

        Returns the frame and how many *new* bytes it carries (to charge to connection credit), or
        None when nothing fits or nothing may be sent.
        """
        built = self.next_chunk(max_size, connection_credit)
        if built is None:
            return None
        start, data, fin, new_bytes, _ = built
        return Stream(self.stream_id, start, data, fin), new_bytes

    def next_chunk(
        self, max_size: int, connection_credit: int
    ) -> tuple[int, bytes, bool, int, bool] | None:
        """:meth:`next_frame`'s frame as its fields: (offset, data, FIN, new bytes, cut), without a
        frame object (the sender's hot path writes them with ``FrameSink.push_stream``). ``cut``: the
        frame was cut to ``max_size``, so the stream has more of the same to send (:meth:`wants_to_send`
        stays True for ``connection_credit`` less the new bytes). None exactly when
        :meth:`wants_to_send` is False or not even a minimal frame fits in ``max_size``."""
        if self.state in _DONE_STATES:
            return None
        buffer = self.buffer
        lost = buffer.first_lost() if buffer.has_lost else None  # nothing lost: the usual answer
        if lost is not None:
            start, stop = lost
            new_bytes = 0
        else:
            start = buffer.next_offset
            stop = self._new_data_stop(start, connection_credit)
            new_bytes = 1
        length = stop - start
        cut = False
        if length > 0:
            # RFC 9000 §19.8: type byte, stream ID, offset (when not 0), length; the varint sizes
            # inline (stream_frame_overhead's, without four calls per frame).
            bound = length if length < max_size else max_size
            stream_id = self.stream_id
            overhead = 2 if stream_id <= 0x3F else 3 if stream_id <= 0x3FFF else 1 + _varint_size(stream_id)
            if start:
                overhead += 4 if 0x3FFF < start <= 0x3FFFFFFF else _varint_size(start)
            overhead += 1 if bound <= 0x3F else 2 if bound <= 0x3FFF else _varint_size(bound)
            if max_size - overhead < length:
                length = max_size - overhead
                if length <= 0:
                    return None
                cut = True
        elif (
            not (self._fin_pending and start == self._fin_offset)
            or stream_frame_overhead(self.stream_id, start, 0) > max_size
        ):
            return None
        stop = start + length
        if new_bytes:
            new_bytes = length
            data = buffer.take_new(start, stop)
            self.credit.used = stop
        else:
            buffer.mark_resent(start, stop)
            data = buffer.peek(start, stop)
        fin = self._fin_pending and stop == self._fin_offset
        if fin:
            self._fin_pending = False
        if fin or self.state is _READY:  # a state change (in Send, only a FIN moves it)
            self._after_send(fin)
        return start, data, fin, new_bytes, cut

    def _new_data_stop(self, start: int, connection_credit: int) -> int:
        """Where new data from ``start`` must stop: min(buffer end, stream credit, connection credit),
        without the builtin's call (RFC 9000 §4.1)."""
        stop = self.buffer.end
        limit = self.credit.limit
        if limit < stop:
            stop = limit
        limit = start + connection_credit
        return limit if limit < stop else stop

    def take_full_frames(
        self, max_size: int, connection_credit: int, most: int
    ) -> tuple[int, int, list[bytes]]:
        """Up to ``most`` of the frames :meth:`next_chunk` gives when called again and again with
        ``max_size`` and what is left of ``connection_credit``, those that are cut to fit (a packet
        train's full packets; the stream keeps more to send after each): (offset of the first, the
        data length of each, the data of each). Taken only in the usual case of a bulk transfer, where
        every such frame has the same 8-byte header (RFC 9000 §19.8: a 1-byte stream ID, a 4-byte
        offset, a 2-byte length) and no state change: sending already, nothing to re-send. Otherwise,
        or when not even one frame would be cut, nothing (``(0, 0, [])``) and nothing changes."""
        buffer = self.buffer
        if self.state is not _SEND or buffer.has_lost or self.stream_id > 0x3F:
            return 0, 0, []
        if not 0x100 <= max_size <= 0x3FFF:
            return 0, 0, []
        start = buffer.next_offset
        # Each frame ends at most there, the same bound for all of them (only this stream spends the
        # connection's credit meanwhile).
        stop = self._new_data_stop(start, connection_credit)
        length = max_size - 8
        # A frame is cut while more than `length` bytes remain; every offset must have 4-byte varints.
        count = (stop - start - 1) // length
        if count > most:
            count = most
        last = 0x3FFFFFFF - start
        if count > 0 and length * (count - 1) > last:
            count = last // length + 1
        if count <= 0 or start <= 0x3FFF:
            return 0, 0, []
        data = buffer.take_run(start, length, count)
        self.credit.used = start + length * count
        return start, length, data

    def _after_send(self, fin: bool) -> None:
        # RFC 9000 §3.1: the first STREAM frame moves Ready to Send; sending FIN moves to Data Sent.
        if self.state is _READY:
            self.state = _SEND
        if fin and self.state is _SEND:
            self.state = _DATA_SENT

    def note_credit_blocked(self) -> bool:
        """If unsent data waits on stream credit, queue STREAM_DATA_BLOCKED; return True if queued."""
        if self.has_unsent_data and self.credit.available == 0 and not self.is_reset:
            self.credit.note_blocked()
        return self.credit.blocked_pending

    def on_frame_acked(self, start: int, stop: int, fin: bool) -> bool:
        """A STREAM frame for ``[start, stop)`` was acknowledged. Returns :meth:`take_writable`'s
        answer (True once when the application, blocked, may write again)."""
        if self.state in _RESET_STATES:
            return False
        buffer = self.buffer
        acked = buffer.on_acked(start, stop)
        if fin:
            self._fin_acked = True
        # RFC 9000 §3.1: all data and the FIN acknowledged -> Data Recvd (terminal).
        if self._fin_acked and acked == self._fin_offset:
            self.state = _DATA_RECVD
        if self.write_blocked and (buffer.capacity - (buffer.end - acked)) * 2 >= buffer.capacity:
            self.write_blocked = False  # take_writable, inline (buffer.free: nothing else is held)
            return True
        return False

    def on_frame_lost(self, start: int, stop: int, fin: bool) -> None:
        """A STREAM frame for ``[start, stop)`` was lost: re-queue what is still unacknowledged."""
        if self.state in _DONE_STATES:
            return
        self.buffer.on_lost(start, stop)
        if fin and not self._fin_acked:
            self._fin_pending = True

    def requeue_for_probe(self, max_bytes: int) -> bool:
        """A PTO fired with nothing new to send: re-queue the oldest unacknowledged bytes (or the FIN) so
        the probe packet carries data instead of a bare PING (RFC 9002 §6.2.4). True if anything is
        queued for sending now."""
        if self.state in _DONE_STATES:
            return False
        buffer = self.buffer
        if buffer.has_lost or self._fin_pending:
            return True
        unacked = buffer.first_unacked()
        if unacked is not None:
            start, stop = unacked
            stop = min(stop, start + max_bytes)
            buffer.on_lost(start, stop)
            if stop == self._fin_offset and not self._fin_acked:
                self._fin_pending = True  # the FIN rode with these bytes: re-send it with them
            return True
        if self._fin_offset is not None and not self._fin_acked and buffer.next_offset == self._fin_offset:
            self._fin_pending = True
            return True
        return False

    def reset(self, error_code: int) -> bool:
        """Abandon the stream and queue RESET_STREAM; return False if already terminal or reset.

        RFC 9000 §3.1: allowed from Ready, Send and Data Sent; the final size is the highest offset sent
        (§4.5), and no STREAM frame follows.
        """
        if self.state in _DONE_STATES:
            return False
        self.state = SendState.RESET_SENT
        self.reset_code = error_code
        self.final_size = self.buffer.next_offset
        self.reset_pending = True
        self._fin_pending = False
        self.write_blocked = False
        self.buffer.clear()
        self.credit.blocked_pending = False
        return True

    def on_reset_acked(self) -> None:
        """RESET_STREAM was acknowledged: Reset Recvd (terminal)."""
        if self.state is SendState.RESET_SENT:
            self.state = SendState.RESET_RECVD
            self.reset_pending = False

    def on_reset_lost(self) -> None:
        """RESET_STREAM was lost: send it again until acknowledged."""
        if self.state is SendState.RESET_SENT:
            self.reset_pending = True

    def take_writable(self) -> bool:
        """True (once) when the application was blocked and at least half the budget is free again."""
        if self.write_blocked and self.buffer.free * 2 >= self.buffer.capacity:
            self.write_blocked = False
            return True
        return False


__all__ = ["SendBuffer", "SendState", "SendStream"]
