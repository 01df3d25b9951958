"""Frame output of the streams subsystem: control frames first, then round-robin STREAM frames.

Owns what the streams subsystem has queued for the peer and the delivery handlers of the frames it
writes (ARCHITECTURE §2.1 rule 5): RESET_STREAM, STOP_SENDING, MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS,
DATA_BLOCKED, STREAM_DATA_BLOCKED, STREAMS_BLOCKED, then STREAM frames (re-sends before new data)
taken from streams in turn so that no stream starves another. On loss the *intent* is re-queued
(ranges to re-send, "this limit must be announced again if still current"), never the old frame.

:class:`StreamOutput` is the base of :class:`rudp.quic.streams.manager.StreamManager`, which owns
stream creation, the application calls and incoming frames.
"""

from __future__ import annotations

from collections import deque
from functools import partial
from typing import Final

from rudp.codec.frames import (
    DataBlocked,
    MaxData,
    MaxStreamData,
    MaxStreams,
    ResetStream,
    StopSending,
    StreamDataBlocked,
    StreamsBlocked,
)
from rudp.quic.delivery import Batched, DeliveryHandler, FrameSink
from rudp.quic.events import Event, StreamWritable
from rudp.quic.flow import LimitAnnouncer, RecvWindow, SendCredit
from rudp.quic.streams.recv import RecvStream
from rudp.quic.streams.send import SendState, SendStream

# Upper bounds of encoded sizes (type byte + up to two 8-byte varints), checked before a limit is
# committed so that a frame that does not fit leaves the intent queued.
_ONE_VARINT_FRAME: Final = 1 + 8
_TWO_VARINT_FRAME: Final = 1 + 8 + 8
_THREE_VARINT_FRAME: Final = 1 + 8 + 8 + 8


class StreamEntry:
    """One stream: its sending part, receiving part, or both."""

    __slots__ = ("recv", "send", "stream_id")

    def __init__(self, stream_id: int, send: SendStream | None, recv: RecvStream | None) -> None:
        self.stream_id = stream_id
        self.send = send
        self.recv = recv

    @property
    def is_closed(self) -> bool:
        """True when every part it has is in a terminal state (RFC 9000 §3.4 "closed")."""
        return (self.send is None or self.send.is_done) and (self.recv is None or self.recv.is_done)


_SEND_DONE: Final = (SendState.DATA_RECVD, SendState.RESET_RECVD)
"""The terminal states of a sending part (SendStream.is_done)."""

_USEFUL_STREAM_FRAME = 32
"""Below this much room left in a packet, no more STREAM frames are attempted in it."""

FINISHED_LEAVE_QUEUE = True
"""A stream whose frame carried its FIN, with nothing to re-send, leaves the send queue at once rather
than at its next turn, which would find nothing to send (the same frames, in the same order; False
only in tests, to compare with that general path)."""


class StreamOutput:
    """Queues and writes the streams subsystem's frames; handles their acknowledgement and loss."""

    def __init__(
        self,
        *,
        initial_max_data: int,
        max_connection_window: int,
        max_streams_bidi: int,
        max_streams_uni: int,
    ) -> None:
        self.events: deque[Event] = deque()
        """Events for the application, drained by the connection."""
        self._streams: dict[int, StreamEntry] = {}
        self._conn_send = SendCredit(0)  # the peer's MAX_DATA; used = new bytes sent on all streams
        self._conn_recv = RecvWindow(initial_max_data, max_connection_window)
        # Streams we may open (the peer's MAX_STREAMS); ``used`` counts the streams we opened.
        self._open_credit = {True: SendCredit(0), False: SendCredit(0)}
        # Streams the peer may open (our MAX_STREAMS).
        self._peer_limit = {True: LimitAnnouncer(max_streams_bidi), False: LimitAnnouncer(max_streams_uni)}
        # Streams with a control frame to send (dicts as insertion-ordered sets).
        self._resets: dict[int, None] = {}
        self._stops: dict[int, None] = {}
        self._window_updates: dict[int, None] = {}
        self._stream_blocked: dict[int, None] = {}
        # Round-robin order of streams that may have STREAM frames to send.
        self._queue: deque[int] = deque()
        self._queued: set[int] = set()

    def _maybe_close(self, entry: StreamEntry) -> None:
        """Hook: forget ``entry`` if it is closed both ways (the manager implements it)."""

    # ------------------------------------------------------------------ queueing

    def _enqueue_if_sendable(self, stream_id: int, send: SendStream) -> None:
        if stream_id not in self._queued and send.wants_to_send(
            max(1, self._conn_send.limit - self._conn_send.used)  # SendCredit.available, inline
        ):
            self._queued.add(stream_id)
            self._queue.append(stream_id)

    def requeue_for_probe(self, max_bytes: int) -> bool:
        """Before PTO probes with no new data to send: re-queue the oldest unacknowledged data of the
        lowest-numbered stream that has some (RFC 9002 §6.2.4). True if a stream now has data queued."""
        for stream_id in sorted(self._streams):
            send = self._streams[stream_id].send
            if send is not None and send.requeue_for_probe(max_bytes):
                self._enqueue_if_sendable(stream_id, send)
                return True
        return False

    def _note_blocked(self, stream_id: int, send: SendStream) -> None:
        """Queue STREAM_DATA_BLOCKED / DATA_BLOCKED for whichever credit stops ``send`` (§4.1)."""
        if send.note_credit_blocked():
            self._stream_blocked[stream_id] = None
        if self._conn_send.available == 0:
            self._conn_send.note_blocked()

    def _reset_send(self, stream_id: int, send: SendStream, error_code: int) -> None:
        if send.reset(error_code):
            self._resets[stream_id] = None
            self._stream_blocked.pop(stream_id, None)

    def _forget(self, stream_id: int) -> None:
        """Drop every queued intent of a closed stream (its queue slot goes when next reached)."""
        for pending in (self._resets, self._stops, self._window_updates, self._stream_blocked):
            pending.pop(stream_id, None)
        self._queued.discard(stream_id)

    # ------------------------------------------------------------------ output

    @property
    def queued(self) -> bool:
        """True when a stream is queued for STREAM frames (it may still wait on credit): the cheap
        first question of a sender deciding whether stream data may fill its next datagrams."""
        return bool(self._queue)

    def has_data_to_send(self) -> bool:
        """True when :meth:`write_frames` would write something worth a datagram given enough room (a
        MAX_STREAMS that is not urgent waits for one that goes anyway: :meth:`has_frames`)."""
        queue = self._queue
        if queue:  # the common case first: a queued stream with data (usually the one at the head)
            conn_send = self._conn_send
            credit = conn_send.limit - conn_send.used  # SendCredit.available, inline (every datagram)
            if credit < 0:
                credit = 0
            streams = self._streams
            for stream_id in queue:
                entry = streams.get(stream_id)
                if entry is not None and entry.send is not None and entry.send.wants_to_send(credit):
                    return True
        # _has_control_frames(riding=False), inline: asked before every datagram a flush may send.
        if self._resets or self._stops or self._window_updates or self._stream_blocked:
            return True
        if self._conn_recv.update_due or self._conn_send.blocked_pending:
            return True
        limits, credits = self._peer_limit, self._open_credit
        if limits[True].urgent or limits[False].urgent:
            return True
        return credits[True].blocked_pending or credits[False].blocked_pending

    def has_frames(self) -> bool:
        """True when :meth:`write_frames` would write something given enough room: asked of a packet
        that goes anyway, which a MAX_STREAMS not yet urgent rides on."""
        return self.has_data_to_send() or self._peer_limit[True].pending or self._peer_limit[False].pending

    def write_frames(self, sink: FrameSink, now: float, smoothed_rtt: float) -> bool:
        """Write queued control frames, then STREAM frames, without exceeding ``sink.remaining``.

        ``now`` and ``smoothed_rtt`` drive receive-window auto-tuning. STREAM frames never exceed the
        connection or stream credit; blocked frames found while filling the packet follow them.
        True when the packet ends with a STREAM frame cut to fit, so :meth:`has_data_to_send` is True
        (its stream has more); False says nothing (a packet train asks :meth:`has_data_to_send` then).
        """
        if self._has_control_frames() and not (
            self._write_resets(sink)
            and self._write_stop_sendings(sink)
            and self._write_window_updates(sink, now, smoothed_rtt)
            and self._write_max_streams(sink)
            and self._write_blocked(sink)
        ):
            return False
        return bool(self._queue) and self.write_more_frames(sink)

    def _has_control_frames(self, riding: bool = True) -> bool:
        """True if a control frame may be waiting (the usual answer during a transfer is False);
        ``riding=False``: only one worth a datagram of its own (not a MAX_STREAMS that can wait)."""
        if self._resets or self._stops or self._window_updates or self._stream_blocked:
            return True
        if self._conn_recv.update_due or self._conn_send.blocked_pending:
            return True
        # Asked for every packet of a transfer: the flags read directly, no loop or dict lookups.
        limits, credits = self._peer_limit, self._open_credit
        if riding:
            if limits[True].pending or limits[False].pending:
                return True
        elif limits[True].urgent or limits[False].urgent:
            return True
        return credits[True].blocked_pending or credits[False].blocked_pending

    def _write_resets(self, sink: FrameSink) -> bool:
        for stream_id in list(self._resets):
            entry = self._streams.get(stream_id)
            send = entry.send if entry is not None else None
            if send is None or not send.reset_pending:
                del self._resets[stream_id]
                continue
            if sink.remaining < _THREE_VARINT_FRAME:
                return False
            frame = ResetStream(stream_id, send.reset_code or 0, send.final_size)
            sink.push_frame(frame, partial(self._on_reset_delivered, stream_id))
            send.reset_pending = False
            del self._resets[stream_id]
        return True

    def _write_stop_sendings(self, sink: FrameSink) -> bool:
        for stream_id in list(self._stops):
            entry = self._streams.get(stream_id)
            recv = entry.recv if entry is not None else None
            if recv is None or not recv.stop_pending:
                del self._stops[stream_id]
                continue
            if sink.remaining < _TWO_VARINT_FRAME:
                return False
            sink.push_frame(
                StopSending(stream_id, recv.stop_code or 0), partial(self._on_stop_delivered, stream_id)
            )
            recv.stop_pending = False
            del self._stops[stream_id]
        return True

    def _write_window_updates(self, sink: FrameSink, now: float, smoothed_rtt: float) -> bool:
        if self._conn_recv.update_due:
            if sink.remaining < _ONE_VARINT_FRAME:
                return False
            limit = self._conn_recv.take_update(now, smoothed_rtt)
            sink.push_frame(MaxData(limit), partial(self._on_max_data_delivered, limit))
        for stream_id in list(self._window_updates):
            entry = self._streams.get(stream_id)
            recv = entry.recv if entry is not None else None
            if recv is None or not recv.window_update_due:
                del self._window_updates[stream_id]
                continue
            if sink.remaining < _TWO_VARINT_FRAME:
                return False
            limit = recv.window.take_update(now, smoothed_rtt)
            sink.push_frame(
                MaxStreamData(stream_id, limit), partial(self._on_max_stream_data_delivered, stream_id, limit)
            )
            del self._window_updates[stream_id]
        return True

    def _write_max_streams(self, sink: FrameSink) -> bool:
        for bidi, announcer in self._peer_limit.items():
            if announcer.pending:
                if sink.remaining < _ONE_VARINT_FRAME:
                    return False
                value = announcer.take()
                sink.push_frame(MaxStreams(bidi, value), partial(self._on_max_streams_delivered, bidi, value))
        return True

    def _write_blocked(self, sink: FrameSink) -> bool:
        credit = self._conn_send
        if credit.blocked_pending:
            if sink.remaining < _ONE_VARINT_FRAME:
                return False
            limit = credit.take_blocked()
            sink.push_frame(DataBlocked(limit), partial(self._on_blocked_delivered, credit, None, limit))
        for stream_id in list(self._stream_blocked):
            entry = self._streams.get(stream_id)
            send = entry.send if entry is not None else None
            if send is None or send.is_reset or not send.credit.blocked_pending:
                del self._stream_blocked[stream_id]
                continue
            if sink.remaining < _TWO_VARINT_FRAME:
                return False
            limit = send.credit.take_blocked()
            handler = partial(self._on_blocked_delivered, send.credit, stream_id, limit)
            sink.push_frame(StreamDataBlocked(stream_id, limit), handler)
            del self._stream_blocked[stream_id]
        for bidi, opened in self._open_credit.items():
            if opened.blocked_pending:
                if sink.remaining < _ONE_VARINT_FRAME:
                    return False
                limit = opened.take_blocked()
                sink.push_frame(
                    StreamsBlocked(bidi, limit), partial(self._on_blocked_delivered, opened, None, limit)
                )
        return True

    def write_more_frames(self, sink: FrameSink) -> bool:
        """STREAM frames, one per stream in turn (round robin), until the packet or the credit is full,
        then the blocked frames found meanwhile (:meth:`_note_blocked`); :meth:`write_frames`' answer.

        :meth:`write_frames` calls it after the control frames; a packet train calls it alone for the
        packet after one :meth:`write_frames` (or this) answered True, when nothing else ran in between:
        no control frame can be waiting then (that packet wrote them all before its STREAM frames and
        left no blocked frame; only a received frame, a timer or the application queues more)."""
        cut = False
        queue, idle = self._queue, 0
        conn_send = self._conn_send
        streams = self._streams
        while queue and idle < len(queue):
            stream_id = queue[0]
            entry = streams.get(stream_id)
            send = entry.send if entry is not None else None
            credit = conn_send.limit - conn_send.used  # SendCredit.available, inline (per frame)
            if credit < 0:
                credit = 0
            # The frame first: next_chunk is None exactly when the stream has nothing it may send
            # (wants_to_send is False) or no frame of it fits, told apart only then.
            built = send.next_chunk(sink.remaining, credit) if send is not None else None
            if built is None:
                if send is not None and send.wants_to_send(credit):
                    break  # not even a minimal frame of this stream fits
                if send is not None and send.has_unsent_data and not send.is_reset:
                    self._note_blocked(stream_id, send)
                    if send.credit.available > 0:  # waits on connection credit only: keep its turn
                        queue.rotate(-1)
                        idle += 1
                        continue
                queue.popleft()
                self._queued.discard(stream_id)
                continue
            start, data, fin, new_bytes, cut = built
            item = (stream_id, start, start + len(data), fin)
            # (acknowledgments are batched per ACK frame)
            sink.push_stream(stream_id, start, data, fin, Batched(StreamOutput.deliver, self, item))
            conn_send.used += new_bytes
            if fin and FINISHED_LEAVE_QUEUE and send is not None and not send.buffer.has_lost:
                # Everything and the FIN sent, nothing to re-send: its next turn would find nothing
                # to send and drop it from the queue (a small request or response: one frame each).
                queue.popleft()
                self._queued.discard(stream_id)
            else:
                queue.rotate(-1)
            idle = 0
            if sink.remaining < _USEFUL_STREAM_FRAME:
                break  # the packet is (nearly) full: don't ask every stream to fail to fit
            cut = False
        if self._stream_blocked or self._conn_send.blocked_pending:
            self._write_blocked(sink)  # blocked frames found while filling the packet
            return False
        return cut

    def take_run(
        self, max_size: int, most: int
    ) -> tuple[int, int, int, list[tuple[bytes, DeliveryHandler]]]:
        """The STREAM frames of up to ``most`` packets of a train, each with ``max_size`` bytes of
        room, that :meth:`write_more_frames` would write one per packet, answering True each time
        (each frame cut to fill its packet), taken at once: in the usual bulk case alone, one stream
        queued and no blocked frame waiting (:meth:`SendStream.take_full_frames`). Returns (stream ID,
        offset of the first, data length of each, [(data, delivery handler)] in order), no frames (and
        nothing changed) when the case is not the usual one."""
        queue = self._queue
        if len(queue) != 1 or self._stream_blocked or self._conn_send.blocked_pending:
            return 0, 0, 0, []
        stream_id = queue[0]
        entry = self._streams.get(stream_id)
        send = entry.send if entry is not None else None
        if send is None:
            return 0, 0, 0, []
        conn_send = self._conn_send
        start, length, data = send.take_full_frames(max_size, conn_send.limit - conn_send.used, most)
        if not data:
            return 0, 0, 0, []
        conn_send.used += length * len(data)
        deliver = StreamOutput.deliver
        frames: list[tuple[bytes, DeliveryHandler]] = []
        append = frames.append
        offset = start
        for chunk in data:
            stop = offset + length
            append((chunk, Batched(deliver, self, (stream_id, offset, stop, False))))
            offset = stop
        return stream_id, start, length, frames

    # ------------------------------------------------------------------ delivery handlers

    def deliver(self, item: tuple[int, ...], acked: bool) -> None:
        """A STREAM frame's fate (``BatchSink``): ``item`` is (stream ID, start, stop, FIN)."""
        stream_id, start, stop, fin = item
        self._on_stream_delivered(stream_id, start, stop, bool(fin), acked)

    def deliver_acked(self, items: list[tuple[int, ...]]) -> None:
        """The STREAM frames one ACK acknowledged (``BatchSink``), in packet order: each run of
        contiguous ranges of one stream is applied as one range, which frees the send buffer and
        moves the stream's state exactly as its frames one by one would (a bulk transfer: one run)."""
        run_id = -1
        run_start = run_stop = run_fin = 0  # (FIN as the item holds it, made a bool once per run)
        for stream_id, start, stop, fin in items:
            if stream_id == run_id and start == run_stop and not run_fin:
                run_stop, run_fin = stop, fin
                continue
            if run_id >= 0:
                self._on_stream_delivered(run_id, run_start, run_stop, bool(run_fin), True)
            run_id, run_start, run_stop, run_fin = stream_id, start, stop, fin
        if run_id >= 0:
            self._on_stream_delivered(run_id, run_start, run_stop, bool(run_fin), True)

    def _on_stream_delivered(self, stream_id: int, start: int, stop: int, fin: bool, acked: bool) -> None:
        entry = self._streams.get(stream_id)
        if entry is None or entry.send is None:
            return
        send = entry.send
        if acked:
            if send.on_frame_acked(start, stop, fin):  # True: the application may write again
                self.events.append(StreamWritable(stream_id))
            if send.state in _SEND_DONE:  # only a terminal sending part can close the stream
                self._maybe_close(entry)
        else:
            send.on_frame_lost(start, stop, fin)
            self._enqueue_if_sendable(stream_id, send)

    def _on_reset_delivered(self, stream_id: int, acked: bool) -> None:
        entry = self._streams.get(stream_id)
        if entry is None or entry.send is None:
            return
        if acked:
            entry.send.on_reset_acked()
            self._maybe_close(entry)
        else:
            entry.send.on_reset_lost()
            if entry.send.reset_pending:
                self._resets[stream_id] = None

    def _on_stop_delivered(self, stream_id: int, acked: bool) -> None:
        entry = self._streams.get(stream_id)
        if not acked and entry is not None and entry.recv is not None:
            entry.recv.on_stop_lost()
            if entry.recv.stop_pending:
                self._stops[stream_id] = None

    def _on_max_data_delivered(self, limit: int, acked: bool) -> None:
        if not acked:
            self._conn_recv.on_update_lost(limit)

    def _on_max_stream_data_delivered(self, stream_id: int, limit: int, acked: bool) -> None:
        entry = self._streams.get(stream_id)
        if not acked and entry is not None and entry.recv is not None:
            entry.recv.window.on_update_lost(limit)
            if entry.recv.window_update_due:
                self._window_updates[stream_id] = None

    def _on_max_streams_delivered(self, bidirectional: bool, value: int, acked: bool) -> None:
        if not acked:
            self._peer_limit[bidirectional].on_lost(value)

    def _on_blocked_delivered(
        self, credit: SendCredit, stream_id: int | None, limit: int, acked: bool
    ) -> None:
        if acked:
            return
        credit.on_blocked_lost(limit)
        if stream_id is not None and credit.blocked_pending and stream_id in self._streams:
            self._stream_blocked[stream_id] = None


__all__ = ["StreamEntry", "StreamOutput"]
