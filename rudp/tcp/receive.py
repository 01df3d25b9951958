"""The TCP mux's receive path: one handler per frame kind, with the protocol's legality checks.

Owns the rules a peer's frames must follow (HELLO first and once, stream direction and limits, flow
control, final sizes, datagram limits) and their effects (stream data, events, STOP answered by RESET,
CREDIT, PONG, CLOSE). Violations raise :class:`~rudp.errors.TransportError`;
:meth:`rudp.tcp.mux.TcpMux.receive_data` turns them into a CLOSE. It does not touch the output order
nor the public API.
"""

from __future__ import annotations

from rudp.errors import TransportError
from rudp.errors import TransportErrorCode as Code
from rudp.quic.events import (
    ConnectionTerminated,
    DatagramReceived,
    PingAcknowledged,
    StopSendingReceived,
    StreamOpened,
    StreamReadable,
    StreamReset,
    StreamsAvailable,
)
from rudp.quic.streams.ids import (
    can_receive,
    can_send,
    is_bidirectional,
    is_local,
    make_stream_id,
    stream_index,
)
from rudp.tcp.framing import (
    PROTOCOL_VERSION,
    Close,
    Credit,
    Data,
    Datagram,
    Frame,
    FrameKind,
    Hello,
    MaxStreams,
    Ping,
    Pong,
    Reset,
    Stop,
    frame_kind,
)
from rudp.tcp.state import STREAM_COUNT_FLOOR, STREAM_WINDOW_FLOOR, MuxState, StreamEntry

_MAX_STREAM_COUNT = 1 << 60  # RFC 9000 §4.6's bound on stream counts, kept for the same reason
_MAX_CREDIT = (1 << 62) - 1


class ReceiveMixin(MuxState):
    """Frame handlers of :class:`~rudp.tcp.mux.TcpMux`."""

    def _on_frame(self, frame: Frame) -> None:
        """Apply one frame from the peer.

        Raises:
            TransportError: the frame breaks a protocol rule.
        """
        if self._peer_hello is None:
            if not isinstance(frame, Hello):
                raise TransportError(
                    Code.PROTOCOL_VIOLATION, "the first frame must be HELLO", frame_kind(frame)
                )
            self._on_hello(frame)
        elif isinstance(frame, Data):
            self._on_data(frame)
        elif isinstance(frame, Reset):
            self._on_reset(frame)
        elif isinstance(frame, Stop):
            self._on_stop(frame)
        elif isinstance(frame, Credit):
            self._on_credit(frame)
        elif isinstance(frame, MaxStreams):
            self._on_max_streams(frame)
        elif isinstance(frame, Ping):
            self._queue_frame(Pong(frame.token))
        elif isinstance(frame, Pong):
            self._on_pong(frame)
        elif isinstance(frame, Datagram):
            self._on_datagram(frame)
        elif isinstance(frame, Close):
            self._on_close(frame)
        else:
            raise TransportError(Code.PROTOCOL_VIOLATION, "HELLO sent twice", FrameKind.HELLO)

    def _on_hello(self, hello: Hello) -> None:
        if hello.version != PROTOCOL_VERSION:
            raise TransportError(
                Code.PROTOCOL_VIOLATION, f"unsupported version {hello.version}", FrameKind.HELLO
            )
        too_low = (
            hello.stream_window < STREAM_WINDOW_FLOOR
            or min(hello.max_streams_bidi, hello.max_streams_uni) < STREAM_COUNT_FLOOR
        )
        if too_low or max(hello.max_streams_bidi, hello.max_streams_uni) > _MAX_STREAM_COUNT:
            raise TransportError(
                Code.PROTOCOL_VIOLATION, "HELLO limits outside the allowed range", FrameKind.HELLO
            )
        self._peer_hello = hello
        extra = hello.stream_window - self._peer_window
        self._peer_window = hello.stream_window
        for entry in self._streams.values():
            if entry.send is not None:
                entry.send.credit += extra
                self._schedule(entry.stream_id, entry.send)
        self._raise_local_limit(True, hello.max_streams_bidi)
        self._raise_local_limit(False, hello.max_streams_uni)
        limit = hello.max_datagram_bytes
        kept = [d for d in self._datagrams if limit and len(d) <= limit]
        self._datagrams.clear()
        self._datagrams.extend(kept)

    def _on_data(self, frame: Data) -> None:
        kind = frame_kind(frame)
        entry = self._entry_for_peer_frame(frame.stream_id, kind, sending_part=False)
        if entry is None or entry.recv is None:
            return
        if entry.recv.on_data(frame.data, frame.fin, kind):
            self._events.append(StreamReadable(frame.stream_id))
        self._maybe_forget(entry)

    def _on_reset(self, frame: Reset) -> None:
        entry = self._entry_for_peer_frame(frame.stream_id, FrameKind.RESET, sending_part=False)
        if entry is None or entry.recv is None:
            return
        if entry.recv.on_reset(frame.error_code, frame.final_size, FrameKind.RESET):
            self._events.append(StreamReset(frame.stream_id, frame.error_code))
        self._maybe_forget(entry)

    def _on_stop(self, frame: Stop) -> None:
        entry = self._entry_for_peer_frame(frame.stream_id, FrameKind.STOP, sending_part=True)
        send = None if entry is None else entry.send
        if entry is None or send is None or send.done or send.reset_code is not None:
            return
        self._events.append(StopSendingReceived(frame.stream_id, frame.error_code))
        self._reset_send(entry, frame.error_code)

    def _on_credit(self, frame: Credit) -> None:
        entry = self._entry_for_peer_frame(frame.stream_id, FrameKind.CREDIT, sending_part=True)
        if entry is None or entry.send is None:
            return
        send = entry.send
        if send.sent_bytes + send.credit + frame.increment > _MAX_CREDIT:
            raise TransportError(Code.FLOW_CONTROL_ERROR, "credit beyond 2^62", FrameKind.CREDIT)
        send.credit += frame.increment
        self._schedule(frame.stream_id, send)

    def _on_max_streams(self, frame: MaxStreams) -> None:
        if frame.maximum > _MAX_STREAM_COUNT:
            raise TransportError(Code.FRAME_ENCODING_ERROR, "MAX_STREAMS beyond 2^60", FrameKind.MAX_STREAMS)
        self._raise_local_limit(frame.bidirectional, frame.maximum)

    def _on_pong(self, frame: Pong) -> None:
        sent = self._pings_in_flight.pop(frame.token, None)
        if sent is None:
            return  # not ours, or already answered: harmless
        uid, sent_at = sent
        self._rtt.update(self._last_now - sent_at, 0.0, handshake_confirmed=True, max_ack_delay=0.0)
        if uid is not None:
            self._events.append(PingAcknowledged(uid))

    def _on_datagram(self, frame: Datagram) -> None:
        config = self._config
        if not config.datagrams or len(frame.data) > config.max_datagram_frame_size:
            raise TransportError(
                Code.PROTOCOL_VIOLATION, "unexpected or oversized DATAGRAM", FrameKind.DATAGRAM
            )
        self._events.append(DatagramReceived(frame.data))

    def _on_close(self, frame: Close) -> None:
        cause = ConnectionTerminated(
            frame.error_code, frame.reason, True, frame.application, frame.frame_kind
        )
        self._terminate(cause)
        self._closed = True
        self._sendable.clear()

    # -- helpers ------------------------------------------------------------------------------------

    def _raise_local_limit(self, bidirectional: bool, maximum: int) -> None:
        if maximum <= self._local_limit[bidirectional]:
            return  # limits never decrease
        self._local_limit[bidirectional] = maximum
        if self._streams_wanted[bidirectional]:
            self._streams_wanted[bidirectional] = False
            self._events.append(StreamsAvailable(bidirectional))

    def _entry_for_peer_frame(self, stream_id: int, kind: int, *, sending_part: bool) -> StreamEntry | None:
        """The stream a peer frame refers to, opening peer streams; None if it is already forgotten.

        ``sending_part`` says the frame concerns our sending half (STOP, CREDIT) rather than our
        receiving half (DATA, RESET).

        Raises:
            TransportError: STREAM_STATE_ERROR for the wrong direction or a local stream not opened
                yet, STREAM_LIMIT_ERROR beyond the stream count we allow.
        """
        is_client = self._is_client
        if sending_part and not can_send(stream_id, is_client):
            raise TransportError(Code.STREAM_STATE_ERROR, f"stream {stream_id} is receive-only for us", kind)
        if not sending_part and not can_receive(stream_id, is_client):
            raise TransportError(Code.STREAM_STATE_ERROR, f"stream {stream_id} is send-only for us", kind)
        entry = self._streams.get(stream_id)
        if entry is not None:
            return entry
        bidi, index = is_bidirectional(stream_id), stream_index(stream_id)
        if is_local(stream_id, is_client):
            if index >= self._local_opened[bidi]:
                raise TransportError(Code.STREAM_STATE_ERROR, f"stream {stream_id} was not opened", kind)
            return None
        if index >= self._peer_limit[bidi]:
            raise TransportError(Code.STREAM_LIMIT_ERROR, f"stream {stream_id} beyond the stream limit", kind)
        if index < self._peer_opened[bidi]:
            return None
        for new_index in range(self._peer_opened[bidi], index + 1):
            new_id = make_stream_id(new_index, client_initiated=not is_client, bidirectional=bidi)
            self._streams[new_id] = self._create(new_id)
            self._events.append(StreamOpened(new_id))
        self._peer_opened[bidi] = index + 1
        return self._streams[stream_id]


__all__ = ["ReceiveMixin"]
