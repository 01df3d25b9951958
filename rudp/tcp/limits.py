"""Stream counts of the TCP mux: how many streams of each kind each side opened and may open.

Owns both sides' stream numbering and limits, as QUIC counts them (RFC 9000 §2.1, §4.6): the streams we
opened and the peer's limit on them (from its HELLO and MAX_STREAMS), whether the application waits for
that limit to rise (then StreamsAvailable), the peer streams opened and the limit we grant, and the
MAX_STREAMS updates owed. It does not hold the streams themselves (:mod:`rudp.tcp.table`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from rudp.config import Config
from rudp.errors import StreamLimitReached, TransportError
from rudp.errors import TransportErrorCode as Code
from rudp.quic.events import Event, StreamsAvailable
from rudp.quic.streams.ids import is_bidirectional, is_local, make_stream_id, stream_index
from rudp.tcp.framing import FrameKind, MaxStreams
from rudp.tcp.output import Outbox

STREAM_COUNT_FLOOR: Final = 16
"""Streams of each kind every endpoint allows at least (assumed before the peer's HELLO)."""
MAX_STREAM_COUNT: Final = 1 << 60
"""Largest stream count a peer may grant: RFC 9000 §4.6's bound, kept for the same reason."""


class StreamCounts:
    """Streams opened and allowed, per kind (True: bidirectional) and per side."""

    __slots__ = (
        "_emit",
        "_is_client",
        "_local_limit",
        "_local_opened",
        "_outbox",
        "_peer_limit",
        "_peer_opened",
        "_updates",
        "_wanted",
    )

    def __init__(
        self, config: Config, *, is_client: bool, outbox: Outbox, emit: Callable[[Event], None]
    ) -> None:
        self._is_client = is_client
        self._outbox = outbox
        self._emit = emit
        self._local_opened = {True: 0, False: 0}
        self._local_limit = {True: STREAM_COUNT_FLOOR, False: STREAM_COUNT_FLOOR}
        self._wanted = {True: False, False: False}  # open_stream() hit the limit: report its rise
        self._peer_opened = {True: 0, False: 0}
        self._peer_limit = {
            True: max(config.max_streams_bidi, STREAM_COUNT_FLOOR),
            False: max(config.max_streams_uni, STREAM_COUNT_FLOOR),
        }
        self._updates: dict[bool, None] = {}  # kinds whose raised limit the peer must learn

    def granted(self, bidirectional: bool) -> int:
        """The stream count of a kind we allow the peer (announced in our HELLO)."""
        return self._peer_limit[bidirectional]

    def open_local(self, bidirectional: bool) -> int:
        """Number the next local stream of a kind and return its ID.

        Raises:
            StreamLimitReached: the peer's limit is reached (StreamsAvailable follows when it rises).
        """
        index = self._local_opened[bidirectional]
        limit = self._local_limit[bidirectional]
        if index >= limit:
            self._wanted[bidirectional] = True
            kind = "bidirectional" if bidirectional else "unidirectional"
            raise StreamLimitReached(f"peer allows {limit} {kind} streams")
        self._local_opened[bidirectional] = index + 1
        return make_stream_id(index, client_initiated=self._is_client, bidirectional=bidirectional)

    def existed(self, stream_id: int) -> bool:
        """True when the stream was opened at some point (it may be forgotten now)."""
        bidi, index = is_bidirectional(stream_id), stream_index(stream_id)
        if is_local(stream_id, self._is_client):
            return index < self._local_opened[bidi]
        return index < self._peer_opened[bidi]

    def opened_by_peer_frame(self, stream_id: int, kind: int) -> range:
        """The IDs a peer frame on an unknown ``stream_id`` opens: it and every lower peer stream of its
        kind not opened yet (RFC 9000 §3.2); empty when the stream existed and was forgotten.

        Raises:
            TransportError: STREAM_STATE_ERROR for a local stream not opened yet, STREAM_LIMIT_ERROR
                beyond the stream count we allow.
        """
        bidi, index = is_bidirectional(stream_id), stream_index(stream_id)
        if is_local(stream_id, self._is_client):
            if index >= self._local_opened[bidi]:
                raise TransportError(Code.STREAM_STATE_ERROR, f"stream {stream_id} was not opened", kind)
            return range(0)
        if index >= self._peer_limit[bidi]:
            raise TransportError(Code.STREAM_LIMIT_ERROR, f"stream {stream_id} beyond the stream limit", kind)
        first = self._peer_opened[bidi]
        if index < first:
            return range(0)
        self._peer_opened[bidi] = index + 1
        first_id = make_stream_id(first, client_initiated=not self._is_client, bidirectional=bidi)
        return range(first_id, stream_id + 1, 4)

    def raise_local_limit(self, bidirectional: bool, maximum: int) -> None:
        """The peer allows ``maximum`` streams of a kind (HELLO, MAX_STREAMS); limits never decrease."""
        if maximum <= self._local_limit[bidirectional]:
            return
        self._local_limit[bidirectional] = maximum
        if self._wanted[bidirectional]:
            self._wanted[bidirectional] = False
            self._emit(StreamsAvailable(bidirectional))

    def on_max_streams(self, frame: MaxStreams) -> None:
        """The peer's MAX_STREAMS.

        Raises:
            TransportError: FRAME_ENCODING_ERROR for a count beyond 2^60 (RFC 9000 §19.11).
        """
        if frame.maximum > MAX_STREAM_COUNT:
            raise TransportError(Code.FRAME_ENCODING_ERROR, "MAX_STREAMS beyond 2^60", FrameKind.MAX_STREAMS)
        self.raise_local_limit(frame.bidirectional, frame.maximum)

    def on_stream_closed(self, stream_id: int) -> None:
        """A stream finished both ways: a peer stream gives the peer one more (MAX_STREAMS owed)."""
        if is_local(stream_id, self._is_client):
            return
        bidi = is_bidirectional(stream_id)
        self._peer_limit[bidi] += 1
        self._updates[bidi] = None

    def write_updates(self) -> None:
        """Write the MAX_STREAMS frames owed."""
        for bidi in self._updates:
            self._outbox.write(MaxStreams(bidi, self._peer_limit[bidi]))
        self._updates.clear()

    def stop_updates(self) -> None:
        """Forget the MAX_STREAMS owed (the connection is closing)."""
        self._updates.clear()


__all__ = ["MAX_STREAM_COUNT", "STREAM_COUNT_FLOOR", "StreamCounts"]
