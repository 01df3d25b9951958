"""The two halves of a TCP-mux stream: what we send (:class:`SendHalf`), what we receive (:class:`RecvHalf`).

Owns per-stream buffers, credit arithmetic and end-of-stream states. It does not know frames on the
wire, stream IDs or the connection: :mod:`rudp.tcp.table` turns these states into frames and events.
Each half is the only writer of its fields; the table reads them and calls methods to change them.

Because TCP is reliable and ordered, a stream byte is "delivered" once it is handed to the socket, so
a send half is finished as soon as its FIN or RESET is written; there is no retransmission state.

Flow control is per stream and counted in bytes: the receiver grants a window (initially the HELLO's
``stream_window``); the sender may have at most that many bytes outstanding beyond what the receiver's
application consumed. The receiver returns consumed bytes as CREDIT increments once a quarter of the
window is consumed, and doubles its window (up to a ceiling) when credit is needed more often than every
two round trips, so a slow reader bounds memory at one window per stream while a fast one is not throttled.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from rudp.errors import TransportError, TransportErrorCode

_MAX_STREAM_BYTES: Final = (1 << 62) - 1


class SendHalf:
    """Our sending side of a stream: a bounded buffer of unsent bytes and the peer's credit."""

    __slots__ = (
        "_buffer",
        "_head",
        "capacity",
        "credit",
        "fin_queued",
        "fin_sent",
        "reset_code",
        "reset_sent",
        "sent_bytes",
        "write_blocked",
    )

    def __init__(self, capacity: int, credit: int) -> None:
        self._buffer = bytearray()
        self._head = 0
        self.capacity = capacity
        """Most unsent bytes held at once (the send-buffer budget)."""
        self.credit = credit
        """Bytes the peer lets us send now."""
        self.sent_bytes = 0
        """Bytes handed to the output so far (the final size if we reset)."""
        self.fin_queued = False
        """The application finished writing; FIN goes out after the buffered bytes."""
        self.fin_sent = False
        """The FIN was written."""
        self.reset_code: int | None = None
        """Error code of a reset we must send (or sent)."""
        self.reset_sent = False
        """The RESET was written."""
        self.write_blocked = False
        """The application filled the buffer: report StreamWritable when room appears."""

    @property
    def buffered_bytes(self) -> int:
        """Bytes accepted and not yet written out."""
        return len(self._buffer) - self._head

    @property
    def closed_for_writing(self) -> bool:
        """True after FIN or reset: no more application data is accepted."""
        return self.fin_queued or self.reset_code is not None

    @property
    def free(self) -> int:
        """Bytes :meth:`write` would accept now."""
        return 0 if self.closed_for_writing else max(0, self.capacity - self.buffered_bytes)

    @property
    def done(self) -> bool:
        """True once the FIN or RESET was written: nothing more will be sent on this stream."""
        return self.fin_sent or self.reset_sent

    @property
    def has_output(self) -> bool:
        """True when :meth:`take` would return something (data within credit, or the FIN)."""
        if self.done or self.reset_code is not None:
            return False  # a RESET is written by the mux as soon as it is decided
        if self.buffered_bytes:
            return self.credit > 0
        return self.fin_queued

    def write(self, data: bytes | bytearray | memoryview, fin: bool) -> int:
        """Buffer as much of ``data`` as fits; FIN is recorded only if all of it fits. Return the count."""
        count = min(len(data), self.free)
        if count:
            with memoryview(data) as view:
                self._buffer += view[:count]
        if count < len(data):
            self.write_blocked = True
        elif fin:
            self.fin_queued = True
        if self.free == 0 and not self.closed_for_writing:
            self.write_blocked = True
        return count

    def take(self, max_bytes: int) -> tuple[bytes, bool]:
        """Remove up to ``max_bytes`` (within credit) for a DATA frame; return ``(data, fin)``."""
        count = min(max_bytes, self.credit, self.buffered_bytes)
        data = bytes(self._buffer[self._head : self._head + count])
        self._head += count
        if self._head > 65536 and self._head * 2 > len(self._buffer):
            del self._buffer[: self._head]
            self._head = 0
        self.credit -= count
        self.sent_bytes += count
        fin = self.fin_queued and self.buffered_bytes == 0
        if fin:
            self.fin_sent = True
        return data, fin

    def budget(self) -> int:
        """Free buffer bytes, as :attr:`free`; when none, remember to report StreamWritable later."""
        free = self.free
        if free == 0 and not self.closed_for_writing:
            self.write_blocked = True
        return free

    def take_writable(self) -> bool:
        """True once after the application was blocked and room appeared (report StreamWritable)."""
        if self.write_blocked and self.free > 0:
            self.write_blocked = False
            return True
        return False

    def add_credit(self, increment: int, kind: int) -> None:
        """The peer's CREDIT: ``increment`` more bytes may be sent.

        Raises:
            TransportError: FLOW_CONTROL_ERROR when the total allowed would pass 2^62 - 1 bytes (the
                largest QUIC varint, RFC 9000 §16, which is also QUIC's limit on stream offsets).
        """
        if self.sent_bytes + self.credit + increment > _MAX_STREAM_BYTES:
            raise TransportError(TransportErrorCode.FLOW_CONTROL_ERROR, "credit beyond 2^62", kind)
        self.credit += increment

    def widen(self, extra: int) -> None:
        """The peer's HELLO grants ``extra`` bytes beyond the window assumed before it arrived."""
        self.credit += extra

    def reset(self, code: int) -> bool:
        """Abandon unsent data and plan a RESET with ``code``; False if the stream already ended."""
        if self.done or self.reset_code is not None:
            return False
        self.reset_code = code
        self._buffer.clear()
        self._head = 0
        self.write_blocked = False
        return True

    def reset_written(self) -> None:
        """The RESET planned by :meth:`reset` was written: the sending half is done."""
        self.reset_sent = True


class RecvHalf:
    """Our receiving side of a stream: received bytes not yet read, the window and the end state."""

    __slots__ = (
        "_chunks",
        "_last_credit_at",
        "buffered_bytes",
        "fin_received",
        "limit",
        "max_window",
        "pending_credit",
        "received",
        "reset_code",
        "stop_code",
        "stopped",
        "window",
    )

    def __init__(self, window: int, max_window: int) -> None:
        self._chunks: deque[bytes] = deque()
        self.buffered_bytes = 0
        """Bytes received and not yet read."""
        self.window = window
        """Current window: bytes the peer may have outstanding beyond what we consumed."""
        self.max_window = max(window, max_window)
        """Auto-tuning ceiling of :attr:`window`."""
        self.limit = window
        """Total bytes the peer may send (received must stay at or below it)."""
        self.received = 0
        """Total bytes received (read, buffered or discarded)."""
        self.pending_credit = 0
        """Consumed bytes not yet returned with CREDIT."""
        self.fin_received = False
        """The peer finished the stream."""
        self.reset_code: int | None = None
        """The peer's reset code, once reset."""
        self.stopped = False
        """We asked the peer to stop: received data is discarded."""
        self.stop_code: int | None = None
        """Code of a STOP frame we still must write (None once written or if not needed)."""
        self._last_credit_at: float | None = None

    @property
    def ended_by_peer(self) -> bool:
        """True once the peer's FIN or RESET arrived: nothing more will arrive."""
        return self.fin_received or self.reset_code is not None

    @property
    def at_eof(self) -> bool:
        """True when all data and the FIN were read, the peer reset, or we stopped reading."""
        return self.stopped or self.reset_code is not None or (self.fin_received and not self.buffered_bytes)

    @property
    def done(self) -> bool:
        """True when the application has nothing more to learn and the peer will send nothing more."""
        return self.ended_by_peer and self.at_eof

    def on_data(self, data: bytes, fin: bool, kind: int) -> bool:
        """Take a DATA frame's bytes; return True if the application has something new to read.

        Raises:
            TransportError: FINAL_SIZE_ERROR after the stream ended, FLOW_CONTROL_ERROR beyond the window.
        """
        if self.ended_by_peer:
            raise TransportError(
                TransportErrorCode.FINAL_SIZE_ERROR, "DATA after the end of the stream", kind
            )
        self.received += len(data)
        if self.received > self.limit:
            raise TransportError(
                TransportErrorCode.FLOW_CONTROL_ERROR,
                f"peer sent {self.received} bytes, beyond the limit {self.limit}",
                kind,
            )
        self.fin_received = fin
        if self.stopped:
            return False
        if data:
            self._chunks.append(data)
            self.buffered_bytes += len(data)
        return bool(data) or fin

    def on_reset(self, code: int, final_size: int, kind: int) -> bool:
        """Take a RESET; return True if the application should hear about it.

        Raises:
            TransportError: FINAL_SIZE_ERROR if the final size disagrees with the bytes received (TCP
                delivers everything before the RESET, so they must match) or the stream already ended.
        """
        if self.ended_by_peer:
            raise TransportError(
                TransportErrorCode.FINAL_SIZE_ERROR, "RESET after the end of the stream", kind
            )
        if final_size != self.received:
            raise TransportError(
                TransportErrorCode.FINAL_SIZE_ERROR,
                f"RESET final size {final_size} but {self.received} bytes received",
                kind,
            )
        self.reset_code = code
        self._discard()
        return not self.stopped

    def stop(self, code: int) -> None:
        """The application stops reading: drop buffered data and plan a STOP if the peer may still send."""
        if self.stopped or self.reset_code is not None:
            return
        self.stopped = True
        self._discard()
        if not self.fin_received:
            self.stop_code = code

    def take_stop(self) -> int | None:
        """The code of a STOP frame to write now (once), or None."""
        code, self.stop_code = self.stop_code, None
        return code

    def read(self, max_bytes: int) -> bytes:
        """Remove and return up to ``max_bytes`` buffered bytes (all when negative)."""
        if max_bytes < 0 or max_bytes >= self.buffered_bytes:
            data = b"".join(self._chunks)
            self._chunks.clear()
        else:
            parts: list[bytes] = []
            need = max_bytes
            while need:
                chunk = self._chunks[0]
                if len(chunk) <= need:
                    parts.append(self._chunks.popleft())
                    need -= len(chunk)
                else:
                    parts.append(chunk[:need])
                    self._chunks[0] = chunk[need:]
                    need = 0
            data = b"".join(parts)
        self.buffered_bytes -= len(data)
        self.pending_credit += len(data)
        return data

    def take_credit(self, now: float | None, smoothed_rtt: float) -> int:
        """Return the CREDIT increment to send at ``now`` (0 when none is due), auto-tuning the window.

        With ``now`` None (the time is unknown) the credit is returned without growing the window.
        """
        if self.stopped or self.ended_by_peer or self.pending_credit * 4 < self.window:
            return 0
        grow = 0
        if now is not None:
            last = self._last_credit_at
            if last is not None and smoothed_rtt > 0 and now - last < 2 * smoothed_rtt:
                grow = min(self.window * 2, self.max_window) - self.window
                self.window += grow
            self._last_credit_at = now
        increment = self.pending_credit + grow
        self.pending_credit = 0
        self.limit += increment
        return increment

    def _discard(self) -> None:
        self._chunks.clear()
        self.buffered_bytes = 0


__all__ = ["RecvHalf", "SendHalf"]
