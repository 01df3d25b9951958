"""A run of data packets within one receive batch, handed over at once (the receive side's mirror
of packet trains).

During a transfer nearly every 1-RTT packet of a socket wake-up carries one STREAM frame that
continues the previous packet's data on the same stream, with the next packet number. The receiver
collects such packets in a :class:`DataRun` and hands the run over in two calls: its data to the
stream (checked against the same limits, RFC 9000 §4.1, §4.5) and its packet numbers to the ACK
tracker (RFC 9000 §13.2.1), instead of five calls per packet. The receiver flushes the run before
anything else can observe the stream or the tracker: another kind of packet, the general receive path,
an error, the end of the batch. A run holds views into packets of the current batch only, and at
most :data:`MAX_RUN_PACKETS` of them (data past the flow-control limits is refused at the latest when
the run is handed over, so what a peer can make us hold is bounded however large a batch is).
"""

from __future__ import annotations

import struct
from typing import Final

from rudp.codec.buffer import BytesLike

MAX_RUN_PACKETS: Final = 64
"""Packets a run holds at most (then it is handed over and the next one starts a new run)."""

_USUAL_STREAM: Final = struct.Struct(">BBIH").unpack_from
"""A STREAM frame's type, a 1-byte stream ID, a 4-byte offset and (with LEN) a 2-byte length (RFC 9000
§19.8, §16): a transfer's data packets (as :func:`~rudp.codec.frame_codec.pull_filling_stream` reads)."""


class DataRun:
    """Consecutive packets ``first..last``, each one STREAM frame of type ``kind`` (no FIN) on
    ``stream_id``, their data ``pieces`` contiguous from ``offset`` to ``end``; empty when ``first``
    is -1. Owned by the receiver, which fills it with :meth:`extend` or :meth:`start` and empties it
    with :meth:`take`."""

    __slots__ = ("end", "first", "kind", "last", "offset", "pieces", "stream_id")

    def __init__(self) -> None:
        self.first = -1
        self.last = -1
        self.stream_id = -1
        self.kind = 0
        self.offset = 0
        self.end = 0
        self.pieces: list[BytesLike] = []

    def extend(self, packet_number: int, stream_id: int, offset: int, piece: BytesLike, kind: int) -> bool:
        """Add the packet if it continues the run (the next packet number, the same stream and frame
        type, data that starts where the run's ends); False, having changed nothing, if not."""
        return self.extend_filling(packet_number, (stream_id, offset, 0, kind), piece)

    def extend_filling(
        self, packet_number: int, fields: tuple[int, int, int, int], payload: BytesLike
    ) -> bool:
        """:meth:`extend` with the packet's payload as the receive fast path has it: one STREAM frame
        filling ``payload``, ``fields`` its ``(stream_id, offset, data_start, frame_type)`` (as
        :func:`~rudp.codec.frame_codec.pull_filling_stream` returns them); the data is sliced out only
        when the packet joins."""
        stream_id, offset, start, kind = fields
        if packet_number != self.last + 1 or offset != self.end or stream_id != self.stream_id:
            return False
        pieces = self.pieces
        if kind != self.kind or len(pieces) >= MAX_RUN_PACKETS:
            return False
        piece = payload[start:] if start else payload  # (a bytes slice: one object, not a view's two)
        self.last = packet_number
        self.end = offset + len(piece)
        pieces.append(piece)
        return True

    def extend_packet(self, packet_number: int, payload: bytes) -> bool:
        """:meth:`extend_filling` for a payload that is one STREAM frame in the layout of the run's
        packets (OFF set, a 1-byte stream ID, a 4-byte offset, with LEN a 2-byte length ending the
        frame with the payload), checked against what the run expects next in one unpack: True
        exactly when the fields :func:`~rudp.codec.frame_codec.pull_filling_stream` reads would make
        :meth:`extend_filling` take the packet; False, having changed nothing, otherwise (another
        layout may still continue the run: the caller then decodes the frame in full)."""
        end = self.end
        kind = self.kind
        size = len(payload)
        if packet_number != self.last + 1 or size < 8 or end >= 0x40000000 or kind < 0x0C:
            return False
        field_kind, stream_id, offset, length = _USUAL_STREAM(payload, 0)
        if field_kind != kind or offset != 0x80000000 | end:
            return False
        if stream_id != self.stream_id or stream_id >= 0x40:
            return False
        start = 6  # without LEN the data runs to the payload's end
        if kind & 0x02:  # LEN: the frame must end with the payload (one frame fills it)
            if size - 8 >= 0x4000 or length != 0x4000 | (size - 8):
                return False
            start = 8
        pieces = self.pieces
        if len(pieces) >= MAX_RUN_PACKETS:
            return False
        pieces.append(payload[start:])
        self.last = packet_number
        self.end = end + size - start
        return True

    def start(self, packet_number: int, stream_id: int, offset: int, piece: BytesLike, kind: int) -> None:
        """Begin a run with this packet (the run must be empty: :meth:`take` it first)."""
        self.first = self.last = packet_number
        self.stream_id = stream_id
        self.kind = kind
        self.offset = offset
        self.end = offset + len(piece)
        self.pieces = [piece]

    def take(self) -> tuple[int, int, int, int, int, list[BytesLike], int] | None:
        """Empty the run; what it held as ``(first, last, stream_id, offset, end, pieces, kind)``, or
        None if it was empty."""
        first = self.first
        if first < 0:
            return None
        taken = (first, self.last, self.stream_id, self.offset, self.end, self.pieces, self.kind)
        self.first = self.last = self.stream_id = -1
        self.pieces = []
        return taken
