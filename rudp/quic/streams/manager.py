"""StreamManager: every stream of one connection, its limits and its frames (RFC 9000 §2-4).

Owns stream creation (local ``open_stream`` and implicit opening by peer frames, §3.2), stream-count
limits both ways (MAX_STREAMS / STREAMS_BLOCKED, §4.6), connection-level flow control both ways
(MAX_DATA / DATA_BLOCKED, §4.1), routing of the peer's stream frames with the state and limit checks
of §3, §4 and §19.4-19.14, the application-facing calls (send/read/reset/stop_sending) and the stream
events. Frame output (control frames, then round-robin STREAM frames) lives in
:mod:`rudp.quic.streams.output`, which this class extends.

It does not own packets, acknowledgements or timers: the connection passes frames in, asks for frames
with ``write_frames`` and reports each frame's fate through the delivery handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rudp.codec.buffer import BytesLike
from rudp.codec.codes import FrameType
from rudp.codec.frames import (
    DataBlocked,
    MaxData,
    MaxStreamData,
    MaxStreams,
    ResetStream,
    StopSending,
    Stream,
    StreamDataBlocked,
    StreamsBlocked,
)
from rudp.codec.transport_params import TransportParameters
from rudp.errors import StreamLimitReached, StreamStateError, TransportError, TransportErrorCode
from rudp.quic.events import StopSendingReceived, StreamOpened, StreamReadable, StreamReset, StreamsAvailable
from rudp.quic.streams.ids import (
    SERVER_INITIATED_BIT,
    TYPE_MASK,
    UNIDIRECTIONAL_BIT,
    can_send,
    is_bidirectional,
    is_local,
    make_stream_id,
    stream_index,
)
from rudp.quic.streams.output import StreamEntry, StreamOutput
from rudp.quic.streams.recv import RecvState, RecvStream
from rudp.quic.streams.send import SendState, SendStream

_RECV_DONE = (RecvState.DATA_READ, RecvState.RESET_READ)
_DATA_READ = RecvState.DATA_READ
"""The terminal states of a receiving part (RecvStream.is_done)."""
_SEND_DONE = (SendState.DATA_RECVD, SendState.RESET_RECVD)
"""The terminal states of a sending part (SendStream.is_done)."""

_STATE = TransportErrorCode.STREAM_STATE_ERROR


@dataclass(frozen=True, slots=True)
class StreamStats:
    """A snapshot of the streams subsystem's resource use."""

    open_streams: int
    """Streams not yet closed in both directions."""
    send_buffered_bytes: int
    """Bytes written by the application and not yet acknowledged, over all streams."""
    recv_buffered_bytes: int
    """Bytes received and not yet read by the application, over all streams."""
    connection_send_credit: int
    """Connection-level credit the peer still grants us."""
    connection_recv_window: int
    """Current connection-level receive window (after auto-tuning)."""


_STREAM = int(FrameType.STREAM)  # bound once: enum member lookups are slow in 3.11


def _stream_frame_type(frame: Stream) -> int:
    return (
        _STREAM
        | (0x04 if frame.offset else 0)
        | (0x02 if frame.explicit_length else 0)
        | (0x01 if frame.fin else 0)
    )


class StreamManager(StreamOutput):
    """All streams of one connection: API calls, incoming frames, outgoing frames and events.

    Args:
        is_client: our role (decides which stream IDs are ours, RFC 9000 §2.1).
        local: our transport parameters: the initial windows and stream counts we grant the peer.
        max_stream_window: auto-tuning ceiling of a stream's receive window.
        max_connection_window: auto-tuning ceiling of the connection's receive window.
        send_buffer_bytes: per-stream send-buffer budget (bytes accepted and not yet acknowledged).
    """

    def __init__(
        self,
        *,
        is_client: bool,
        local: TransportParameters,
        max_stream_window: int,
        max_connection_window: int,
        send_buffer_bytes: int,
    ) -> None:
        super().__init__(
            initial_max_data=local.initial_max_data,
            max_connection_window=max_connection_window,
            max_streams_bidi=local.initial_max_streams_bidi,
            max_streams_uni=local.initial_max_streams_uni,
        )
        self._is_client = is_client
        self._local = local
        self._peer: TransportParameters | None = None
        self._max_stream_window = max_stream_window
        self._send_buffer_bytes = send_buffer_bytes
        self._initial_limits: dict[int, tuple[int, int, int]] = {}
        """By stream type (the two low bits of an ID, RFC 9000 §2.1): a new stream's send credit,
        receive window and window ceiling (what :meth:`_create` asks for each stream)."""
        self._peer_opened = {True: 0, False: 0}  # peer streams created so far, by bidirectional
        self._streams_wanted = {True: False, False: False}  # open_stream hit the limit
        self.opener_blocked = False
        """True while an application waits to open a stream the peer's MAX_STREAMS forbids (either
        kind). The peer frees stream credit only as its streams close, and a stream it sent on closes
        only once it learns our ACK of its last byte (RFC 9000 §3.1 "Data Recvd", §4.6): a receiver in
        this state acknowledges at once instead of after ``max_ack_delay``. An attribute, not a
        property: the receive path reads it for every packet."""

    # ------------------------------------------------------------------ setup and properties

    def apply_peer_parameters(self, peer: TransportParameters) -> None:
        """Take the peer's initial limits (may be called again: limits only ever increase)."""
        self._peer = peer
        self._initial_limits.clear()
        self._conn_send.raise_limit(peer.initial_max_data)
        for bidi, count in ((True, peer.initial_max_streams_bidi), (False, peer.initial_max_streams_uni)):
            # (announced only to an application that waits for one: no call at the handshake)
            if self._open_credit[bidi].raise_limit(count) and self._streams_wanted[bidi]:
                self._announce_streams_available(bidi)
        for entry in self._streams.values():
            send, stream_id = entry.send, entry.stream_id
            local = is_local(stream_id, self._is_client)
            credit = self._initial_send_credit(is_bidirectional(stream_id), local)
            if send is not None and send.credit.raise_limit(credit):
                self._stream_blocked.pop(entry.stream_id, None)
                self._enqueue_if_sendable(entry.stream_id, send)

    @property
    def open_streams(self) -> int:
        """Streams not yet closed in both directions."""
        return len(self._streams)

    @property
    def send_buffered_bytes(self) -> int:
        """Bytes held in send buffers over all streams."""
        return sum(e.send.buffer.buffered_bytes for e in self._streams.values() if e.send is not None)

    @property
    def recv_buffered_bytes(self) -> int:
        """Bytes held for reading over all streams."""
        return sum(e.recv.assembler.buffered_bytes for e in self._streams.values() if e.recv is not None)

    def stats(self) -> StreamStats:
        """A snapshot of buffered bytes, open streams and connection credit."""
        return StreamStats(
            open_streams=self.open_streams,
            send_buffered_bytes=self.send_buffered_bytes,
            recv_buffered_bytes=self.recv_buffered_bytes,
            connection_send_credit=self._conn_send.available,
            connection_recv_window=self._conn_recv.window,
        )

    # ------------------------------------------------------------------ application commands

    def open_stream(self, bidirectional: bool = True) -> int:
        """Open a new local stream and return its ID.

        Raises:
            StreamLimitReached: the peer's MAX_STREAMS forbids another stream of this kind; a
                STREAMS_BLOCKED is queued and :class:`StreamsAvailable` follows when the limit rises.
        """
        credit = self._open_credit[bidirectional]
        if credit.available == 0:
            credit.note_blocked()  # RFC 9000 §4.6: a blocked opener SHOULD send STREAMS_BLOCKED
            self._streams_wanted[bidirectional] = True
            self.opener_blocked = True
            kind = "bidirectional" if bidirectional else "unidirectional"
            raise StreamLimitReached(f"peer allows {credit.limit} {kind} streams")
        index = credit.used
        credit.used += 1
        stream_id = make_stream_id(index, client_initiated=self._is_client, bidirectional=bidirectional)
        self._streams[stream_id] = self._create(stream_id)
        return stream_id

    def send(self, stream_id: int, data: BytesLike, fin: bool = False) -> int:
        """Buffer up to :meth:`send_budget` bytes of ``data``; return the count accepted.

        FIN is recorded only if all of ``data`` was accepted. A short count means the buffer is full: a
        :class:`StreamWritable` event follows once acknowledgements free room.

        Raises:
            StreamStateError: unknown or closed stream, receive-only stream, after FIN or reset.
        """
        entry = self._streams.get(stream_id)
        if entry is None or entry.send is None:
            raise StreamStateError(stream_id, f"stream {stream_id} is not open for sending")
        send = entry.send
        accepted = send.write(data, fin)
        credit, conn_send = send.credit, self._conn_send  # SendCredit.available == 0, inline
        if (credit.limit <= credit.used or conn_send.limit <= conn_send.used) and send.has_unsent_data:
            self._note_blocked(stream_id, send)
        if stream_id not in self._queued:  # (a FIN after a write: queued already)
            self._enqueue_if_sendable(stream_id, send)
        return accepted

    def send_budget(self, stream_id: int) -> int:
        """Bytes :meth:`send` would accept now (0 once the stream is finished or reset).

        Raises:
            StreamStateError: unknown or receive-only stream.
        """
        entry = self._streams.get(stream_id)
        if entry is None:
            if self._existed(stream_id) and can_send(stream_id, self._is_client):
                return 0
            raise StreamStateError(stream_id, f"stream {stream_id} is not a sending stream")
        if entry.send is None:
            raise StreamStateError(stream_id, f"stream {stream_id} is receive-only")
        return 0 if entry.send.is_reset or entry.send.is_done else entry.send.buffer.free

    def read(self, stream_id: int, max_bytes: int = -1, on_due: Callable[[], None] | None = None) -> bytes:
        """Return up to ``max_bytes`` in-order bytes (all readable ones when negative).

        Returns b"" when nothing is readable, at the end of the stream, after a reset by the peer or
        after :meth:`stop_sending`; check :meth:`at_eof`. Reading returns flow-control credit; once
        a control frame worth a datagram is due (MAX_STREAM_DATA, MAX_DATA, an urgent MAX_STREAMS:
        RFC 9000 §4.2, §4.6) the read calls ``on_due``. Most reads of small streams make none due.

        Raises:
            StreamStateError: unknown stream or send-only stream.
        """
        entry = self._streams.get(stream_id)
        if entry is None or entry.recv is None:
            entry = self._receiving_entry(stream_id)  # raises for a wrong or unknown stream
            if entry is None or entry.recv is None:
                return b""
        recv = entry.recv
        data, consumed = recv.take_read(max_bytes)
        # _after_recv_change for a read: it only consumes (credit can become due, never undue), leaves
        # STOP_SENDING as it was, and closes the stream only when the receiving part becomes done. A
        # read that does neither (the end-of-stream read, usually) makes no control frame due.
        changed = consumed > 0
        if changed:
            self._conn_recv.consumed += consumed
            if recv.window_update_due:
                self._window_updates[stream_id] = None
        if recv.state in _RECV_DONE:
            changed = True
            self._maybe_close(entry)
        if changed and on_due is not None and self._has_control_frames(riding=False):
            on_due()
        return data

    def at_eof(self, stream_id: int) -> bool:
        """True once all data and the FIN were read, or the peer reset the stream.

        Raises:
            StreamStateError: unknown stream or send-only stream.
        """
        entry = self._receiving_entry(stream_id)
        return entry is None or entry.recv is None or entry.recv.at_eof

    def reset(self, stream_id: int, error_code: int) -> None:
        """Abandon sending and queue RESET_STREAM (final size = bytes sent so far); no-op if finished.

        Raises:
            StreamStateError: unknown stream or receive-only stream.
        """
        entry = self._streams.get(stream_id)
        if entry is None:
            if self._existed(stream_id) and can_send(stream_id, self._is_client):
                return
            raise StreamStateError(stream_id, f"stream {stream_id} is not a sending stream")
        if entry.send is None:
            raise StreamStateError(stream_id, f"stream {stream_id} is receive-only")
        self._reset_send(entry.stream_id, entry.send, error_code)

    def stop_sending(self, stream_id: int, error_code: int) -> None:
        """Stop reading: drop buffered data and queue STOP_SENDING (RFC 9000 §3.5).

        Raises:
            StreamStateError: unknown stream or send-only stream.
        """
        entry = self._receiving_entry(stream_id)
        if entry is None or entry.recv is None:
            return
        entry.recv.stop(error_code)
        self._after_recv_change(entry, entry.recv)

    # ------------------------------------------------------------------ incoming frames

    def on_stream(self, frame: Stream) -> None:
        """Handle STREAM (RFC 9000 §19.8).

        Raises:
            TransportError: STREAM_STATE_ERROR, STREAM_LIMIT_ERROR, FLOW_CONTROL_ERROR, FINAL_SIZE_ERROR;
                PROTOCOL_VIOLATION for data scattered in too many holes (RFC 9000 §21.7).
        """
        self._on_stream(frame.stream_id, frame.offset, frame.data, frame.fin, _stream_frame_type(frame))

    def _on_stream(self, stream_id: int, offset: int, data: BytesLike, fin: bool, frame_type: int) -> None:
        """:meth:`on_stream` given the frame's fields (``frame_type``: its type byte)."""
        entry = self._entry_for_peer_frame(stream_id, frame_type, sending_part=False)
        if entry is None or entry.recv is None:
            return
        recv = entry.recv
        delta = recv.check_data(offset + len(data), fin, frame_type)
        self._charge_connection(delta, frame_type)
        if recv.on_data(offset, data, fin, frame_type):
            self.events.append(StreamReadable(stream_id))
        self._after_recv_change(entry, recv)

    def on_stream_data(self, stream_id: int, offset: int, data: BytesLike, frame_type: int) -> None:
        """Handle a STREAM frame given as its fields (the receive fast path: no frame object, ``data``
        a view into the packet, copied only by reassembly). Same checks and errors as :meth:`on_stream`.
        """
        entry = self._streams.get(stream_id)
        if entry is None:
            entry = self._entry_for_peer_frame(stream_id, frame_type, sending_part=False)
            if entry is None:
                return  # closed already (a late or repeated frame)
        # A stream that receives (entries exist only for valid directions).
        recv = entry.recv
        if recv is not None:
            window = self._conn_recv
            room = window.limit - window.received
            fin = frame_type & 0x01
            taken = (recv.take_final if fin else recv.take_data)(offset, data, frame_type, room)
            if taken is not None:
                delta, readable = taken
                window.received += delta
                if readable:
                    self.events.append(StreamReadable(stream_id))
                if fin:
                    # _after_recv_change after the FIN: no credit consumed, no STOP_SENDING (not
                    # discarding); no MAX_STREAM_DATA once the final size is known (RFC 9000 §3.2).
                    self._window_updates.pop(stream_id, None)
                    if recv.state is _DATA_READ:
                        self._maybe_close(entry)
                return
        self._on_stream(stream_id, offset, data, bool(frame_type & 0x01), frame_type)

    def on_stream_pieces(
        self, stream_id: int, offset: int, end: int, pieces: list[BytesLike], frame_type: int
    ) -> None:
        """:meth:`on_stream_data` for consecutive STREAM frames of one stream without FIN (``pieces``
        follow each other from ``offset`` to ``end``, all of type ``frame_type``), in turn: same checks,
        errors and events, in one step when nothing unusual happens."""
        entry = self._streams.get(stream_id)
        if entry is not None and not frame_type & 0x01:
            recv = entry.recv
            if recv is not None:
                window = self._conn_recv
                taken = recv.take_pieces(offset, end, pieces, frame_type, window.limit - window.received)
                if taken is not None:
                    delta, readable = taken
                    window.received += delta
                    if readable:
                        self.events.append(StreamReadable(stream_id))
                    return
        for piece in pieces:
            self.on_stream_data(stream_id, offset, piece, frame_type)
            offset += len(piece)

    def on_reset_stream(self, frame: ResetStream) -> None:
        """Handle RESET_STREAM (RFC 9000 §19.4); its final size counts toward connection credit (§4.5).

        Raises:
            TransportError: STREAM_STATE_ERROR, STREAM_LIMIT_ERROR, FLOW_CONTROL_ERROR, FINAL_SIZE_ERROR.
        """
        entry = self._entry_for_peer_frame(frame.stream_id, FrameType.RESET_STREAM, sending_part=False)
        if entry is None or entry.recv is None:
            return
        recv = entry.recv
        self._charge_connection(max(0, frame.final_size - recv.highest), FrameType.RESET_STREAM)
        recv.on_reset(frame.error_code, frame.final_size, FrameType.RESET_STREAM)
        if recv.state is RecvState.RESET_RECVD:
            self.events.append(StreamReset(frame.stream_id, frame.error_code))
            recv.mark_reset_read()  # the event is the application's notice (§3.2 "App Read Reset")
        self._after_recv_change(entry, recv)

    def on_stop_sending(self, frame: StopSending) -> None:
        """Handle STOP_SENDING (RFC 9000 §19.5): report it and reset the stream with its code (§3.5).

        Raises:
            TransportError: STREAM_STATE_ERROR, STREAM_LIMIT_ERROR.
        """
        entry = self._entry_for_peer_frame(frame.stream_id, FrameType.STOP_SENDING, sending_part=True)
        if entry is None or entry.send is None or entry.send.is_reset or entry.send.is_done:
            return
        self.events.append(StopSendingReceived(frame.stream_id, frame.error_code))
        self._reset_send(frame.stream_id, entry.send, frame.error_code)

    def on_max_data(self, frame: MaxData) -> None:
        """Handle MAX_DATA (RFC 9000 §19.9); smaller limits are ignored (§4.1)."""
        self._conn_send.raise_limit(frame.maximum)

    def on_max_stream_data(self, frame: MaxStreamData) -> None:
        """Handle MAX_STREAM_DATA (RFC 9000 §19.10).

        Raises:
            TransportError: STREAM_STATE_ERROR (receive-only or unopened local stream), STREAM_LIMIT_ERROR.
        """
        entry = self._entry_for_peer_frame(frame.stream_id, FrameType.MAX_STREAM_DATA, sending_part=True)
        if entry is None or entry.send is None:
            return
        if entry.send.credit.raise_limit(frame.maximum):
            self._stream_blocked.pop(frame.stream_id, None)
            self._enqueue_if_sendable(frame.stream_id, entry.send)

    def on_max_streams(self, frame: MaxStreams) -> None:
        """Handle MAX_STREAMS (RFC 9000 §19.11); smaller limits are ignored (§4.6)."""
        if self._open_credit[frame.bidirectional].raise_limit(frame.maximum):
            self._announce_streams_available(frame.bidirectional)

    def on_data_blocked(self, frame: DataBlocked) -> None:
        """Handle DATA_BLOCKED (RFC 9000 §19.12): informational; credit never waits for it (§4.2)."""

    def on_stream_data_blocked(self, frame: StreamDataBlocked) -> None:
        """Handle STREAM_DATA_BLOCKED (RFC 9000 §19.13): opens the stream, otherwise informational.

        Raises:
            TransportError: STREAM_STATE_ERROR (send-only or unopened local stream), STREAM_LIMIT_ERROR.
        """
        self._entry_for_peer_frame(frame.stream_id, FrameType.STREAM_DATA_BLOCKED, sending_part=False)

    def on_streams_blocked(self, frame: StreamsBlocked) -> None:
        """Handle STREAMS_BLOCKED (RFC 9000 §19.14): announce at once whatever credit the peer's closed
        streams earned it since our last MAX_STREAMS (§4.6)."""
        self._peer_limit[frame.bidirectional].on_peer_blocked(frame.limit)

    # ------------------------------------------------------------------ internals

    def _entry_for_peer_frame(
        self, stream_id: int, frame_type: int, *, sending_part: bool
    ) -> StreamEntry | None:
        """The stream a peer frame refers to, creating peer streams; None if it is already closed.

        ``sending_part`` says the frame concerns our sending part (MAX_STREAM_DATA, STOP_SENDING)
        rather than our receiving part (STREAM, RESET_STREAM, STREAM_DATA_BLOCKED).
        """
        is_client = self._is_client
        # The stream ID helpers (rudp.quic.streams.ids) inline: asked for every STREAM frame.
        bidi = not stream_id & UNIDIRECTIONAL_BIT
        local = (not stream_id & SERVER_INITIATED_BIT) == is_client
        if not bidi and sending_part != local:
            direction = "receive-only" if sending_part else "send-only"
            raise TransportError(_STATE, f"stream {stream_id} is {direction} for us", frame_type)
        entry = self._streams.get(stream_id)
        if entry is not None:
            return entry
        index = stream_id >> 2
        if local:
            # RFC 9000 §19.4, §19.5, §19.8, §19.10, §19.13: a local stream we have not opened yet.
            if index >= self._open_credit[bidi].used:
                raise TransportError(_STATE, f"stream {stream_id} was not opened", frame_type)
            return None
        if index >= self._peer_limit[bidi].announced:
            # RFC 9000 §4.6: beyond the stream count we allowed.
            raise TransportError(
                TransportErrorCode.STREAM_LIMIT_ERROR, f"stream {stream_id} beyond MAX_STREAMS", frame_type
            )
        if index < self._peer_opened[bidi]:
            return None  # closed already; a late or repeated frame
        # RFC 9000 §3.2: opening a stream opens every lower-numbered stream of the same type.
        kind = stream_id & TYPE_MASK
        for new_index in range(self._peer_opened[bidi], index + 1):
            new_id = new_index << 2 | kind
            self._streams[new_id] = self._create(new_id)
            self.events.append(StreamOpened(new_id))
        self._peer_opened[bidi] = index + 1
        self._peer_limit[bidi].note_used(index + 1)
        return self._streams[stream_id]

    def _receiving_entry(self, stream_id: int) -> StreamEntry | None:
        """The stream for a read-side call; None when it existed and is closed."""
        entry = self._streams.get(stream_id)
        if entry is not None and entry.recv is not None:
            return entry  # the usual answer (per read), without the ID checks below
        # can_receive and _existed with the stream ID helpers inline: asked by the last read and the
        # end-of-stream checks of every stream, after it closed.
        bidi = not stream_id & UNIDIRECTIONAL_BIT
        local = (not stream_id & SERVER_INITIATED_BIT) == self._is_client
        if not bidi and local:
            raise StreamStateError(stream_id, f"stream {stream_id} is send-only")
        if entry is None:
            opened = self._open_credit[bidi].used if local else self._peer_opened[bidi]
            if stream_id >> 2 >= opened:
                raise StreamStateError(stream_id, f"stream {stream_id} does not exist")
        return entry

    def _existed(self, stream_id: int) -> bool:
        """True when the stream was opened at some point (it may be closed now)."""
        bidi, index = is_bidirectional(stream_id), stream_index(stream_id)
        if is_local(stream_id, self._is_client):
            return index < self._open_credit[bidi].used
        return index < self._peer_opened[bidi]

    def _create(self, stream_id: int) -> StreamEntry:
        # The stream ID helpers (rudp.quic.streams.ids) inline: asked for every new stream.
        bidi = not stream_id & UNIDIRECTIONAL_BIT
        local = (not stream_id & SERVER_INITIATED_BIT) == self._is_client
        limits = self._initial_limits.get(stream_id & TYPE_MASK)
        if limits is None:
            window = self._initial_recv_window(bidi, local)
            limits = (self._initial_send_credit(bidi, local), window, max(window, self._max_stream_window))
            self._initial_limits[stream_id & TYPE_MASK] = limits
        send = recv = None
        if bidi or local:
            send = SendStream(stream_id, credit=limits[0], buffer_bytes=self._send_buffer_bytes)
        if bidi or not local:
            recv = RecvStream(stream_id, window=limits[1], max_window=limits[2])
        return StreamEntry(stream_id, send, recv)

    def _initial_send_credit(self, bidi: bool, local: bool) -> int:
        # RFC 9000 §18.2: "bidi_local" is for streams the parameter's sender opened; we read the
        # peer's parameters, so our own bidi streams use its "bidi_remote".
        peer = self._peer
        if peer is None:
            return 0
        if not bidi:
            return peer.initial_max_stream_data_uni
        if local:
            return peer.initial_max_stream_data_bidi_remote
        return peer.initial_max_stream_data_bidi_local

    def _initial_recv_window(self, bidi: bool, local: bool) -> int:
        local_params = self._local
        if not bidi:
            return local_params.initial_max_stream_data_uni
        if local:
            return local_params.initial_max_stream_data_bidi_local
        return local_params.initial_max_stream_data_bidi_remote

    def _charge_connection(self, delta: int, frame_type: int) -> None:
        """Count ``delta`` new bytes against our connection window (RFC 9000 §4.1)."""
        window = self._conn_recv
        window.check(window.received + delta, frame_type)
        window.received += delta

    def _after_recv_change(self, entry: StreamEntry, recv: RecvStream) -> None:
        """Return consumed credit, queue or drop MAX_STREAM_DATA / STOP_SENDING, close if done."""
        self._conn_recv.consumed += recv.take_consumed()
        stream_id = entry.stream_id
        if recv.window_update_due:
            self._window_updates[stream_id] = None
        else:
            self._window_updates.pop(stream_id, None)
        if recv.stop_pending:
            self._stops[stream_id] = None
        else:
            self._stops.pop(stream_id, None)
        if recv.state in _RECV_DONE:  # only a terminal receiving part can close the stream
            self._maybe_close(entry)

    def _announce_streams_available(self, bidirectional: bool) -> None:
        if self._streams_wanted[bidirectional]:
            self._streams_wanted[bidirectional] = False
            self.opener_blocked = self._streams_wanted[not bidirectional]
            self.events.append(StreamsAvailable(bidirectional))

    def _maybe_close(self, entry: StreamEntry) -> None:
        """Forget a stream closed both ways; give the peer a new stream for each of its own (§4.6)."""
        # StreamEntry.is_closed and the stream ID helpers inline (asked several times per stream).
        send, recv = entry.send, entry.recv
        if (send is not None and send.state not in _SEND_DONE) or (
            recv is not None and recv.state not in _RECV_DONE
        ):
            return
        stream_id = entry.stream_id
        del self._streams[stream_id]
        self._forget(stream_id)
        if (not stream_id & SERVER_INITIATED_BIT) != self._is_client:  # the peer's stream
            self._peer_limit[not stream_id & UNIDIRECTIONAL_BIT].increase(1)


__all__ = ["StreamManager", "StreamStats"]
