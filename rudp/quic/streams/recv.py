"""The receiving part of a stream: state machine (RFC 9000 §3.2), final size (§4.5), stream credit.

Owns what arrives on one stream: the reassembly buffer, the final size once known, the stream-level
receive window (credit returned only as the application reads), the peer's RESET_STREAM and our
STOP_SENDING request.

It does not own connection-level flow control: :meth:`RecvStream.check_data` reports how far a frame
moves the stream's highest offset so the manager can charge the connection window first, and
:meth:`RecvStream.take_consumed` reports bytes to return to the connection window.
"""

from __future__ import annotations

from enum import Enum

from rudp.codec.buffer import BytesLike
from rudp.errors import TransportError, TransportErrorCode
from rudp.quic.flow import RecvWindow
from rudp.quic.streams.assembler import Assembler


class RecvState(Enum):
    """Receiving-part states (RFC 9000 §3.2, Figure 3)."""

    RECV = "Recv"
    SIZE_KNOWN = "Size Known"
    DATA_RECVD = "Data Recvd"
    RESET_RECVD = "Reset Recvd"
    DATA_READ = "Data Read"
    RESET_READ = "Reset Read"


# Tuples, not sets: membership by identity needs no Enum.__hash__ call (these run once per frame).
_ACCEPTING = (RecvState.RECV, RecvState.SIZE_KNOWN)
# Bound once: in Python 3.11 the enum metaclass's __getattr__ makes each ``RecvState.X`` lookup cost
# about four global loads (read per STREAM frame, per read).
_RECV, _DATA_RECVD, _RESET_RECVD = RecvState.RECV, RecvState.DATA_RECVD, RecvState.RESET_RECVD
_SIZE_KNOWN, _DATA_READ = RecvState.SIZE_KNOWN, RecvState.DATA_READ
_DONE = (RecvState.DATA_READ, RecvState.RESET_READ)
_RESET = (RecvState.RESET_RECVD, RecvState.RESET_READ)
_FINAL_SIZE = TransportErrorCode.FINAL_SIZE_ERROR


class RecvStream:
    """The receiving part of one stream (RFC 9000 §3.2)."""

    __slots__ = (
        "_credited",
        "_readable_signalled",
        "assembler",
        "discarding",
        "final_size",
        "highest",
        "reset_code",
        "state",
        "stop_code",
        "stop_pending",
        "stream_id",
        "window",
    )

    def __init__(self, stream_id: int, *, window: int, max_window: int) -> None:
        self.stream_id = stream_id
        self.state = _RECV
        self.assembler = Assembler()
        self.window = RecvWindow(window, max_window)
        """Stream-level credit we grant (MAX_STREAM_DATA)."""
        self.highest = 0
        """Highest offset received (the final size once known): what the stream costs the connection."""
        self.final_size: int | None = None
        self.reset_code: int | None = None
        """The peer's RESET_STREAM error code, once received."""
        self.stop_code: int | None = None
        """Our STOP_SENDING error code, once the application asked."""
        self.stop_pending = False
        """A STOP_SENDING must be (re)sent."""
        self.discarding = False
        """The application stopped reading (STOP_SENDING): arriving data is dropped."""
        self._credited = 0  # bytes already returned to the connection window
        self._readable_signalled = False

    @property
    def is_done(self) -> bool:
        """True in a terminal state (Data Read, Reset Read)."""
        return self.state in _DONE

    @property
    def at_eof(self) -> bool:
        """True when everything including the FIN was read, the peer reset, or we stopped reading."""
        return self.is_done or self.state is _RESET_RECVD or self.discarding

    @property
    def window_update_due(self) -> bool:
        """True when a MAX_STREAM_DATA should be sent (only in Recv, RFC 9000 §3.2)."""
        return self.state is _RECV and not self.discarding and self.window.update_due

    def check_data(self, end: int, fin: bool, frame_type: int) -> int:
        """Validate a STREAM frame ending at ``end``; return how much it raises :attr:`highest`.

        Raises:
            TransportError: FINAL_SIZE_ERROR if it changes a known final size, ends beyond it, or puts
                a FIN below data already received (RFC 9000 §4.5); FLOW_CONTROL_ERROR if it passes the
                stream limit we advertised (§4.1).
        """
        final = self.final_size
        if final is not None:
            if end > final or (fin and end != final):
                raise TransportError(
                    _FINAL_SIZE, f"stream {self.stream_id}: final size is {final}", frame_type
                )
        elif fin and end < self.highest:
            raise TransportError(_FINAL_SIZE, f"stream {self.stream_id}: FIN below received data", frame_type)
        self.window.check(end, frame_type)
        return max(0, end - self.highest)

    def take_data(
        self, offset: int, data: BytesLike, frame_type: int, connection_room: int
    ) -> tuple[int, bool] | None:
        """The common STREAM frame in one call: no FIN, the stream in Recv and read by the application.

        Validates the frame against the stream limit and ``connection_room`` (the credit left in the
        connection window), applies it, and returns ``(delta, readable)``: how much it raised
        :attr:`highest` (the connection's charge) and whether to tell the application the stream is
        readable, as :meth:`check_data` then :meth:`on_data` would. Returns None, having changed
        nothing, for any other case (the caller takes that path).

        Raises:
            TransportError: FLOW_CONTROL_ERROR past the stream or connection limit (RFC 9000 §4.1);
                PROTOCOL_VIOLATION for data scattered in too many holes.
        """
        if self.state is not _RECV or self.discarding:
            return None
        end = offset + len(data)
        window = self.window
        if end > window.limit:
            window.check(end, frame_type)
        delta = end - self.highest
        if delta > 0:
            if delta > connection_room:
                raise TransportError(
                    TransportErrorCode.FLOW_CONTROL_ERROR, "peer sent beyond the connection limit", frame_type
                )
            self.highest = end
            window.received = end
        else:
            delta = 0
        if self.assembler.insert(offset, data, frame_type) and not self._readable_signalled:
            self._readable_signalled = True
            return delta, True
        return delta, False

    def take_final(
        self, offset: int, data: BytesLike, frame_type: int, connection_room: int
    ) -> tuple[int, bool] | None:
        """:meth:`take_data` for the frame with the FIN, in Recv (a small request or response: usually
        the stream's only frame). Same answer as :meth:`check_data` then :meth:`on_data` would give;
        None, having changed nothing, for any other case, including every error (the caller then
        takes that path, which raises)."""
        if self.state is not _RECV or self.discarding:
            return None
        end = offset + len(data)
        window = self.window
        delta = end - self.highest
        # RFC 9000 §4.5: a FIN below data already received is an error; §4.1: past the limits too.
        if delta < 0 or end > window.limit or delta > connection_room:
            return None
        self.highest = self.final_size = end
        window.received = end
        self.state = _SIZE_KNOWN
        assembler = self.assembler
        readable = assembler.insert(offset, data, frame_type)
        ready = assembler.readable_bytes
        if assembler.read_offset + ready == end:  # contiguous_end: everything arrived
            self.state = _DATA_RECVD
            readable = 1
            if not ready:  # and all of it was read already (RFC 9000 §3.2: Data Read)
                self.state = _DATA_READ
        if readable and not self._readable_signalled:
            self._readable_signalled = True
            return delta, True
        return delta, False

    def take_pieces(
        self, offset: int, end: int, pieces: list[BytesLike], frame_type: int, connection_room: int
    ) -> tuple[int, bool] | None:
        """:meth:`take_data` for consecutive ``pieces`` (no FIN) from ``offset`` to ``end`` at once:
        the STREAM frames of a run of packets. Returns None, having changed nothing, for anything but
        the clean case, including a frame past a limit (the caller then takes them one by one, which
        raises at the first offending one and applies those before it)."""
        if self.state is not _RECV or self.discarding:
            return None
        window = self.window
        if end > window.limit:
            return None
        delta = end - self.highest
        if delta > 0:
            if delta > connection_room:
                return None
            self.highest = end
            window.received = end
        else:
            delta = 0
        if self.assembler.insert_pieces(offset, pieces, frame_type) and not self._readable_signalled:
            self._readable_signalled = True
            return delta, True
        return delta, False

    def on_data(self, offset: int, data: BytesLike, fin: bool, frame_type: int = 0) -> bool:
        """Apply a STREAM frame already validated by :meth:`check_data`.

        Returns True when the application should be told the stream is readable (new in-order data or
        the end of the stream, and no StreamReadable since its last read).

        Raises:
            TransportError: PROTOCOL_VIOLATION when the data leaves too many holes (see
                :data:`~rudp.quic.streams.assembler.MAX_GAPS`).
        """
        end = offset + len(data)
        if end > self.highest:
            self.highest = end
            self.window.received = end
        if fin and self.final_size is None:
            self.final_size = end
            if self.state is _RECV:
                self.state = _SIZE_KNOWN
        if self.state not in _ACCEPTING:
            return False  # complete or reset: retransmissions are dropped (RFC 9000 §3.2)
        readable = self.assembler.insert(offset, data, frame_type)
        if self.discarding:
            self.assembler.skip()
        if self.final_size is not None and self.assembler.contiguous_end == self.final_size:
            self.state = _DATA_RECVD
            readable += 1
        self._maybe_data_read()
        if readable and not self._readable_signalled and not self.discarding:
            self._readable_signalled = True
            return True
        return False

    def read(self, max_bytes: int = -1) -> bytes:
        """Return up to ``max_bytes`` in-order bytes (b"" at the end, after a reset or STOP_SENDING)."""
        self._readable_signalled = False
        if self.state in _RESET or self.discarding:
            return b""
        data = self.assembler.read(max_bytes)
        self.window.consumed = self.assembler.read_offset
        self._maybe_data_read()
        return data

    def take_read(self, max_bytes: int = -1) -> tuple[bytes, int]:
        """:meth:`read` and :meth:`take_consumed` in one call (the application's read path): the
        bytes, and the bytes newly consumed to return to the connection window."""
        state = self.state
        if state in _RESET or self.discarding:
            self._readable_signalled = False
            return b"", self.take_consumed()
        self._readable_signalled = False
        assembler = self.assembler
        data = assembler.read(max_bytes)
        offset = assembler.read_offset
        self.window.consumed = offset
        # RFC 9000 §3.2: once all data up to the final size has been delivered -> Data Read.
        if state is _DATA_RECVD and not assembler.readable_bytes:
            self.state = _DATA_READ
        delta = offset - self._credited
        self._credited = offset
        return data, delta if delta > 0 else 0

    def _maybe_data_read(self) -> None:
        # RFC 9000 §3.2: once all data up to the final size has been delivered -> Data Read.
        if self.state is _DATA_RECVD and self.assembler.readable_bytes == 0:
            self.state = _DATA_READ

    def on_reset(self, error_code: int, final_size: int, frame_type: int) -> int:
        """Validate and apply RESET_STREAM; return how much it raises :attr:`highest`.

        Raises:
            TransportError: FINAL_SIZE_ERROR if ``final_size`` contradicts a known final size or data
                already received (RFC 9000 §4.5); FLOW_CONTROL_ERROR beyond the stream limit (§4.1).
        """
        known = self.final_size
        if (known is not None and final_size != known) or final_size < self.highest:
            raise TransportError(
                _FINAL_SIZE, f"stream {self.stream_id}: reset final size mismatch", frame_type
            )
        self.window.check(final_size, frame_type)
        delta = final_size - self.highest
        self.highest = self.final_size = final_size
        self.window.received = final_size
        # RFC 9000 §3.2: a reset in Data Recvd may be suppressed; we let the application read the
        # complete data instead of throwing it away.
        if self.state in _ACCEPTING:
            self.state = RecvState.RESET_RECVD
            self.reset_code = error_code
            self.stop_pending = False
            self.assembler.clear()
        return delta

    def mark_reset_read(self) -> None:
        """The application was told of the reset (StreamReset event): Reset Read (terminal)."""
        if self.state is RecvState.RESET_RECVD:
            self.state = RecvState.RESET_READ

    def stop(self, error_code: int) -> None:
        """The application stops reading: drop buffered data and queue STOP_SENDING if useful.

        RFC 9000 §3.5: STOP_SENDING is worth sending only in Recv or Size Known; later data still
        counts toward flow control but is discarded on receipt.
        """
        if self.state in _RESET or self.discarding:
            return
        self.discarding = True
        self.assembler.skip()
        self.window.consumed = self.assembler.read_offset
        if self.state in _ACCEPTING:
            self.stop_code = error_code
            self.stop_pending = True
        self._maybe_data_read()

    def on_stop_lost(self) -> None:
        """A STOP_SENDING was lost: send it again while the peer may still be sending (§3.5)."""
        if self.state in _ACCEPTING and self.stop_code is not None:
            self.stop_pending = True

    def take_consumed(self) -> int:
        """Bytes newly consumed (read, discarded, or covered by a reset) to return to the connection."""
        mark = self.highest if self.state in _RESET else self.assembler.read_offset
        delta = mark - self._credited
        self._credited = mark
        return max(0, delta)


__all__ = ["RecvState", "RecvStream"]
