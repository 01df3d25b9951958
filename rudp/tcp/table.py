"""The TCP mux's stream table: live streams, the frames that concern them, and their share of the output.

Owns :class:`StreamTable`: the streams not yet finished both ways (each a :class:`StreamEntry` of a
:class:`~rudp.tcp.streams.SendHalf` and a :class:`~rudp.tcp.streams.RecvHalf`), our receive window and
the peer's, the round-robin order of streams with data to send, and the streams owing CREDIT. It applies
the application's stream commands and the peer's DATA, RESET, STOP and CREDIT frames, writes DATA,
RESET, STOP and CREDIT into the :class:`~rudp.tcp.output.Outbox`, and forgets finished streams. Stream
numbering and limits belong to :class:`~rudp.tcp.limits.StreamCounts`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from rudp.config import Config
from rudp.errors import StreamStateError, TransportError
from rudp.errors import TransportErrorCode as Code
from rudp.quic.events import (
    Event,
    StopSendingReceived,
    StreamOpened,
    StreamReadable,
    StreamReset,
    StreamWritable,
)
from rudp.quic.streams.ids import can_receive, can_send
from rudp.tcp.framing import Credit, Data, FrameKind, Reset, Stop, frame_kind
from rudp.tcp.limits import StreamCounts
from rudp.tcp.output import Outbox
from rudp.tcp.streams import RecvHalf, SendHalf

STREAM_WINDOW_FLOOR: Final = 64 * 1024
"""Per-stream window every endpoint grants at least (assumed before the peer's HELLO)."""
CHUNK_BYTES: Final = 16 * 1024
"""Largest DATA payload written: streams take turns in chunks of this size."""


@dataclass(slots=True)
class StreamEntry:
    """One live stream: its sending half (None if receive-only) and receiving half (None if send-only)."""

    stream_id: int
    send: SendHalf | None
    recv: RecvHalf | None

    @property
    def is_closed(self) -> bool:
        """True when both halves are finished: the stream can be forgotten."""
        return (self.send is None or self.send.done) and (self.recv is None or self.recv.done)


class StreamTable:
    """The live streams of one connection and their frames."""

    __slots__ = (
        "_counts",
        "_credit_due",
        "_emit",
        "_is_client",
        "_max_window",
        "_outbox",
        "_peer_window",
        "_send_buffer_bytes",
        "_sendable",
        "_streams",
        "_window",
    )

    def __init__(
        self,
        config: Config,
        *,
        is_client: bool,
        counts: StreamCounts,
        outbox: Outbox,
        emit: Callable[[Event], None],
    ) -> None:
        self._is_client = is_client
        self._counts = counts
        self._outbox = outbox
        self._emit = emit
        self._streams: dict[int, StreamEntry] = {}
        self._sendable: dict[int, None] = {}  # ordered set: the round-robin order of streams with output
        self._credit_due: dict[int, None] = {}  # ordered set: streams read since the last output
        self._send_buffer_bytes = config.send_buffer_bytes
        self._window = max(config.initial_max_stream_data, STREAM_WINDOW_FLOOR)
        self._max_window = max(config.max_stream_window, self._window)
        self._peer_window = STREAM_WINDOW_FLOOR

    @property
    def window(self) -> int:
        """The initial window of our receiving halves (announced in our HELLO)."""
        return self._window

    def __len__(self) -> int:
        """Streams not yet finished both ways."""
        return len(self._streams)

    # -- the application's commands -----------------------------------------------------------------

    def open(self, bidirectional: bool) -> int:
        """Open a local stream; return its ID.

        Raises:
            StreamLimitReached: the peer's stream limit is reached.
        """
        stream_id = self._counts.open_local(bidirectional)
        self._streams[stream_id] = self._create(stream_id)
        return stream_id

    def send(self, stream_id: int, data: bytes | bytearray | memoryview, fin: bool) -> int:
        """Buffer ``data`` (and FIN if all of it fits); return the bytes accepted.

        Raises:
            StreamStateError: unknown or receive-only stream, or writing after FIN or reset.
        """
        entry = self._streams.get(stream_id)
        if entry is None or entry.send is None or entry.send.closed_for_writing:
            raise StreamStateError(stream_id, f"stream {stream_id} is not open for sending")
        accepted = entry.send.write(data, fin)
        self._schedule(stream_id, entry.send)
        return accepted

    def read(self, stream_id: int, max_bytes: int) -> bytes:
        """Consume up to ``max_bytes`` (all when negative); the credit goes out with the next output.

        Raises:
            StreamStateError: unknown or send-only stream.
        """
        entry = self._receiving_entry(stream_id)
        if entry is None or entry.recv is None:
            return b""
        data = entry.recv.read(max_bytes)
        if data:
            self._credit_due[stream_id] = None
        self._forget_if_closed(entry)
        return data

    def at_eof(self, stream_id: int) -> bool:
        """True when all data and the FIN were read, the peer reset, or we stopped reading.

        Raises:
            StreamStateError: unknown or send-only stream.
        """
        entry = self._receiving_entry(stream_id)
        return entry is None or entry.recv is None or entry.recv.at_eof

    def send_budget(self, stream_id: int) -> int:
        """Free send-buffer bytes (0 also arms StreamWritable).

        Raises:
            StreamStateError: unknown or receive-only stream.
        """
        entry = self._sending_entry(stream_id)
        return 0 if entry is None or entry.send is None else entry.send.budget()

    def reset(self, stream_id: int, code: int) -> None:
        """Abandon sending: drop unsent bytes, write RESET; no-op once the sending half ended.

        Raises:
            StreamStateError: unknown or receive-only stream.
        """
        entry = self._sending_entry(stream_id)
        if entry is not None:
            self._reset_send(entry, code)

    def stop(self, stream_id: int, code: int) -> None:
        """Stop reading: drop buffered bytes and write STOP if the peer may still send.

        Raises:
            StreamStateError: unknown or send-only stream.
        """
        entry = self._receiving_entry(stream_id)
        if entry is None or entry.recv is None:
            return
        entry.recv.stop(code)
        stop_code = entry.recv.take_stop()
        if stop_code is not None:
            self._outbox.write(Stop(stream_id, stop_code))
        self._forget_if_closed(entry)

    # -- the peer's frames --------------------------------------------------------------------------

    def on_peer_hello(self, stream_window: int) -> None:
        """The peer's HELLO grants ``stream_window`` per stream (we assumed the floor until now)."""
        extra = stream_window - self._peer_window
        self._peer_window = stream_window
        for entry in self._streams.values():
            if entry.send is not None:
                entry.send.widen(extra)
                self._schedule(entry.stream_id, entry.send)

    def on_data(self, frame: Data) -> None:
        """Stream bytes from the peer.

        Raises:
            TransportError: a stream or flow-control rule is broken.
        """
        kind = frame_kind(frame)
        entry = self._entry_for_peer_frame(frame.stream_id, kind, sending_part=False)
        if entry is None or entry.recv is None:
            return
        if entry.recv.on_data(frame.data, frame.fin, kind):
            self._emit(StreamReadable(frame.stream_id))
        self._forget_if_closed(entry)

    def on_reset(self, frame: Reset) -> None:
        """The peer abandoned a stream; its final size must match the bytes received.

        Raises:
            TransportError: a stream rule is broken, or FINAL_SIZE_ERROR.
        """
        entry = self._entry_for_peer_frame(frame.stream_id, FrameKind.RESET, sending_part=False)
        if entry is None or entry.recv is None:
            return
        if entry.recv.on_reset(frame.error_code, frame.final_size, FrameKind.RESET):
            self._emit(StreamReset(frame.stream_id, frame.error_code))
        self._forget_if_closed(entry)

    def on_stop(self, frame: Stop) -> None:
        """The peer stops reading: answer with a RESET carrying its code.

        Raises:
            TransportError: a stream rule is broken.
        """
        entry = self._entry_for_peer_frame(frame.stream_id, FrameKind.STOP, sending_part=True)
        send = None if entry is None else entry.send
        if entry is None or send is None or send.done or send.reset_code is not None:
            return
        self._emit(StopSendingReceived(frame.stream_id, frame.error_code))
        self._reset_send(entry, frame.error_code)

    def on_credit(self, frame: Credit) -> None:
        """The peer consumed bytes: more may be sent.

        Raises:
            TransportError: a stream rule is broken, or FLOW_CONTROL_ERROR beyond 2^62 bytes.
        """
        entry = self._entry_for_peer_frame(frame.stream_id, FrameKind.CREDIT, sending_part=True)
        if entry is None or entry.send is None:
            return
        entry.send.add_credit(frame.increment, FrameKind.CREDIT)
        self._schedule(frame.stream_id, entry.send)

    # -- output -------------------------------------------------------------------------------------

    def write_credits(self, now: float | None, smoothed_rtt: float) -> None:
        """Write the CREDIT owed for bytes read since the last output; ``now`` drives window tuning."""
        for stream_id in self._credit_due:
            entry = self._streams.get(stream_id)
            if entry is None or entry.recv is None:
                continue
            increment = entry.recv.take_credit(now, smoothed_rtt)
            if increment:
                self._outbox.write(Credit(stream_id, increment))
        self._credit_due.clear()

    def write_data(self, budget: int) -> None:
        """Round-robin DATA frames of :data:`CHUNK_BYTES` until ``budget`` bytes or nothing is left."""
        while self._sendable and budget > 0:
            stream_id = next(iter(self._sendable))
            del self._sendable[stream_id]
            entry = self._streams.get(stream_id)
            if entry is None or entry.send is None:
                continue
            send = entry.send
            data, fin = send.take(min(CHUNK_BYTES, budget))
            if data or fin:
                self._outbox.write(Data(stream_id, data, fin))
            budget -= len(data)
            if send.has_output:
                self._sendable[stream_id] = None
            if send.take_writable():
                self._emit(StreamWritable(stream_id))
            self._forget_if_closed(entry)

    def stop_output(self) -> None:
        """Write nothing more: the connection is closing or closed."""
        self._sendable.clear()
        self._credit_due.clear()

    # -- state --------------------------------------------------------------------------------------

    @property
    def send_settled(self) -> bool:
        """True when no stream holds bytes, a FIN or a RESET not yet written."""
        for entry in self._streams.values():
            send = entry.send
            if send is not None and not send.done and (send.buffered_bytes or send.fin_queued):
                return False
        return True

    @property
    def send_buffered_bytes(self) -> int:
        """Bytes accepted from the application and not yet written, over all streams."""
        return sum(e.send.buffered_bytes for e in self._streams.values() if e.send is not None)

    @property
    def recv_buffered_bytes(self) -> int:
        """Bytes received and not yet read, over all streams."""
        return sum(e.recv.buffered_bytes for e in self._streams.values() if e.recv is not None)

    # -- helpers ------------------------------------------------------------------------------------

    def _create(self, stream_id: int) -> StreamEntry:
        send = recv = None
        if can_send(stream_id, self._is_client):
            send = SendHalf(self._send_buffer_bytes, self._peer_window)
        if can_receive(stream_id, self._is_client):
            recv = RecvHalf(self._window, self._max_window)
        return StreamEntry(stream_id, send, recv)

    def _receiving_entry(self, stream_id: int) -> StreamEntry | None:
        if not can_receive(stream_id, self._is_client):
            raise StreamStateError(stream_id, f"stream {stream_id} is send-only")
        return self._known_entry(stream_id)

    def _sending_entry(self, stream_id: int) -> StreamEntry | None:
        if not can_send(stream_id, self._is_client):
            raise StreamStateError(stream_id, f"stream {stream_id} is receive-only")
        return self._known_entry(stream_id)

    def _known_entry(self, stream_id: int) -> StreamEntry | None:
        """The stream, or None when it existed and is forgotten.

        Raises:
            StreamStateError: the stream was never opened.
        """
        entry = self._streams.get(stream_id)
        if entry is None and not self._counts.existed(stream_id):
            raise StreamStateError(stream_id, f"stream {stream_id} does not exist")
        return entry

    def _entry_for_peer_frame(self, stream_id: int, kind: int, *, sending_part: bool) -> StreamEntry | None:
        """The stream a peer frame refers to, opening peer streams; None if it is already forgotten.

        ``sending_part`` says the frame concerns our sending half (STOP, CREDIT) rather than our
        receiving half (DATA, RESET).

        Raises:
            TransportError: STREAM_STATE_ERROR for the wrong direction or a local stream not opened
                yet, STREAM_LIMIT_ERROR beyond the stream count we allow.
        """
        if sending_part and not can_send(stream_id, self._is_client):
            raise TransportError(Code.STREAM_STATE_ERROR, f"stream {stream_id} is receive-only for us", kind)
        if not sending_part and not can_receive(stream_id, self._is_client):
            raise TransportError(Code.STREAM_STATE_ERROR, f"stream {stream_id} is send-only for us", kind)
        entry = self._streams.get(stream_id)
        if entry is not None:
            return entry
        for new_id in self._counts.opened_by_peer_frame(stream_id, kind):
            self._streams[new_id] = self._create(new_id)
            self._emit(StreamOpened(new_id))
        return self._streams.get(stream_id)

    def _schedule(self, stream_id: int, send: SendHalf) -> None:
        if send.has_output:
            self._sendable[stream_id] = None

    def _reset_send(self, entry: StreamEntry, code: int) -> None:
        send = entry.send
        if send is None or not send.reset(code):
            return
        self._outbox.write(Reset(entry.stream_id, code, send.sent_bytes))
        send.reset_written()
        self._sendable.pop(entry.stream_id, None)
        self._forget_if_closed(entry)

    def _forget_if_closed(self, entry: StreamEntry) -> None:
        """Drop a stream finished both ways; a peer stream gives the peer one more."""
        if not entry.is_closed:
            return
        stream_id = entry.stream_id
        self._streams.pop(stream_id, None)
        self._sendable.pop(stream_id, None)
        self._credit_due.pop(stream_id, None)
        self._counts.on_stream_closed(stream_id)


__all__ = ["CHUNK_BYTES", "STREAM_WINDOW_FLOOR", "StreamEntry", "StreamTable"]
