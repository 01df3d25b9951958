"""Builds outgoing datagrams: coalesced packets, padding, packet numbers and protection.

:class:`DatagramBuilder` is the :class:`~rudp.quic.delivery.FrameSink` subsystems write into. Packets
are encrypted only when the datagram is finished, so the padding a datagram needs (client Initials,
path probes: RFC 9000 §14.1, §8.2.1) can go into its last packet.
"""

from __future__ import annotations

from functools import cache
from operator import itemgetter

from rudp.codec.codes import PacketType
from rudp.codec.frame_writing import FRAME_WRITERS, append_frame
from rudp.codec.frames import Frame, Stream
from rudp.codec.packet import FIXED_BIT, HEADER_FORM_LONG, encode_packet_number, long_type_bits
from rudp.codec.varint import encode_varint
from rudp.crypto.protection import TAG_LENGTH, PacketProtection, min_payload_length
from rudp.quic.delivery import DeliveryHandler
from rudp.quic.sent import PacketSpace, SentPacket, open_sent_packet

LENGTH_FIELD_SIZE = 2  # long-header Length is always written as a 2-byte varint (payloads < 16 KiB)
_MIN_PAYLOAD = tuple(min_payload_length(pn_length) if pn_length else 0 for pn_length in range(5))
""":func:`min_payload_length` by packet number length (RFC 9001 §5.4.2), looked up once per packet."""


_Closed = tuple[PacketProtection, int, bytes, bool, int, int, int, SentPacket, bytearray]
"""A closed packet, to protect when the datagram is finished: (protection, first byte, prefix (header
bytes after the first byte and before Length/PN: version, CIDs, token; or the DCID), long header?,
packet number, truncated packet number, its length, the SentPacket, the payload). A plain tuple: no
object to build per packet."""


_SENT_OF = itemgetter(7)
_BYTE = tuple(bytes((value,)) for value in range(256))


@cache  # (one entry per packet type and supported version)
def long_first_byte(packet_type: PacketType, version: int) -> int:
    """RFC 9000 §17.2: a long header's first byte but its packet number length bits (header form, fixed
    bit and the packet type's bits in ``version``)."""
    return HEADER_FORM_LONG | FIXED_BIT | (long_type_bits(packet_type, version) << 4)


def long_header_prefix(version: int, dcid: bytes, scid: bytes, token: bytes | None = None) -> bytes:
    """RFC 9000 §17.2: a long header's bytes after the first byte and before the Length field: the
    version, the DCID and SCID with their lengths, and (``token`` not None: an Initial, §17.2.2) the
    token with its varint length. One join, no intermediate bytes per field."""
    fields = (version.to_bytes(4, "big"), _BYTE[len(dcid)], dcid, _BYTE[len(scid)], scid)
    if token is None:
        return b"".join(fields)
    length = _BYTE[len(token)] if len(token) < 0x40 else encode_varint(len(token))
    return b"".join((*fields, length, token))


class DatagramBuilder:
    """Assembles one datagram; implements ``FrameSink`` for the packet currently open."""

    __slots__ = (
        "_budget",
        "_buf",
        "_closed_size",
        "_first_byte",
        "_is_long",
        "_overhead",
        "_packets",
        "_pn_length",
        "_pn_value",
        "_prefix",
        "_protection",
        "_sent",
        "max_size",
        "now",
        "padding_required",
        "remaining",
    )

    def __init__(self, max_size: int, now: float) -> None:
        self.max_size = max_size
        self.now = now
        self._packets: list[_Closed] = []
        self._closed_size = 0
        self._sent: SentPacket | None = None
        """The open packet's record (None: no packet open); the open packet's other fields follow."""
        self._budget = 0  # frame bytes the open packet may hold in all
        self.remaining = 0
        """Bytes left for frames in the open packet (0 when none is open): an attribute, kept by
        :meth:`push_frame` (sources ask it before each frame)."""
        self._buf: bytearray
        """The open packet's payload (frames are appended to it, :meth:`push_frame`)."""
        self._protection: PacketProtection
        self._first_byte = 0
        self._prefix = b""
        """Header bytes after the first byte and before Length/PN (version, CIDs, token) or the DCID."""
        self._is_long = False
        self._pn_value = 0
        self._pn_length = 0
        self._overhead = 0
        """Header, Length field and AEAD tag bytes around the open packet's payload."""
        self.padding_required = False
        """A frame source asked for a full-size (1200-byte) datagram (:meth:`require_padding`)."""

    # -- FrameSink -----------------------------------------------------------------------------------

    def push_frame(self, frame: Frame, handler: DeliveryHandler | None = None) -> None:
        """Append a frame to the open packet (see ``FrameSink.push_frame``)."""
        sent = self._sent
        if sent is None:
            raise ValueError("no packet is open")
        payload = self._buf
        before = len(payload)
        # Encoded once (by its class's writer: no chain of class tests); undone below if it overflowed.
        FRAME_WRITERS.get(type(frame), append_frame)(payload, frame)
        remaining = self._budget - len(payload)
        if remaining < 0:
            del payload[before:]
            raise ValueError("frame does not fit in the packet")
        self.remaining = remaining
        sent.note_frame(frame, handler)

    def push_stream(
        self, stream_id: int, offset: int, data: bytes, fin: bool, handler: DeliveryHandler
    ) -> None:
        """Append a STREAM frame (see ``FrameSink.push_stream``)."""
        self.push_frame(Stream(stream_id, offset, data, fin), handler)

    def require_padding(self) -> None:
        """The datagram must be padded to 1200 bytes (see ``PacketSink.require_padding``)."""
        self.padding_required = True

    def sent_is_ack_eliciting(self) -> bool:
        """True if the open packet already carries an ack-eliciting frame."""
        return self._sent is not None and self._sent.ack_eliciting

    # -- packets ---------------------------------------------------------------------------------------


    def start_packet(
        self,
        *,
        space: PacketSpace,
        protection: PacketProtection,
        first_byte: int,
        prefix: bytes,
        is_long: bool,
        packet_number: int,
        largest_acked: int | None,
    ) -> bool:
        """Open a packet; return False (nothing opened) if not even a small frame would fit."""
        if self._sent is not None:
            raise ValueError("a packet is already open")
        pn_value, pn_length = encode_packet_number(packet_number, largest_acked)
        overhead = 1 + len(prefix) + (LENGTH_FIELD_SIZE if is_long else 0) + pn_length + TAG_LENGTH
        budget = self._budget = self.max_size - self._closed_size - overhead
        if budget < 8:
            return False
        self.remaining = budget
        self._buf = bytearray()
        self._protection = protection
        self._first_byte = first_byte | (pn_length - 1)
        self._prefix = prefix
        self._is_long = is_long
        self._pn_value = pn_value
        self._pn_length = pn_length
        self._overhead = overhead
        self._sent = open_sent_packet(packet_number, space, self.now)
        return True

    def end_packet(self) -> SentPacket | None:
        """Close the open packet; an empty packet is dropped (its number is not used) and None returned."""
        sent = self._sent
        self._sent = None
        self.remaining = 0
        if sent is None or not self._buf:
            return None
        buf = self._buf
        pn_length = self._pn_length
        short = _MIN_PAYLOAD[pn_length] - len(buf)
        if short > 0:
            buf += bytes(short)  # PADDING so header protection can sample
            sent.in_flight = True
        self._packets.append(
            (
                self._protection,
                self._first_byte,
                self._prefix,
                self._is_long,
                sent.packet_number,
                self._pn_value,
                pn_length,
                sent,
                buf,
            )
        )
        self._closed_size += self._overhead + len(buf)
        return sent

    @property
    def size(self) -> int:
        """Bytes of the closed packets so far."""
        return self._closed_size

    @property
    def packet_count(self) -> int:
        """Closed packets in this datagram."""
        return len(self._packets)

    def finish(self, pad_to: int = 0) -> bytes:
        """Protect every closed packet and return the datagram, padded to ``pad_to`` bytes if needed.

        Padding is added as PADDING frames to the last packet (it counts as in flight).
        """
        if self._sent is not None:
            self.end_packet()
        packets = self._packets
        if not packets:
            return b""
        missing = min(pad_to, self.max_size) - self._closed_size if pad_to else 0
        if missing > 0:
            last = packets[-1]
            payload = last[8]
            payload += bytes(missing)  # the bytearray the closed packet holds, extended in place
            last[7].in_flight = True
        single = len(packets) == 1
        out = bytearray()
        for packet in packets:
            protection, first_byte, prefix, is_long, number, pn_value, pn_length, sent, payload = packet
            pn_bytes = pn_value.to_bytes(pn_length, "big")
            if is_long:
                length = pn_length + len(payload) + TAG_LENGTH
                header = _BYTE[first_byte] + prefix + (0x4000 | length).to_bytes(2, "big")
            else:
                header = _BYTE[first_byte] + prefix
            pn_offset = len(header)
            protected = protection.protect(header + pn_bytes, payload, number, pn_offset, pn_length)
            sent.size_bytes = len(protected)
            if single:
                return protected  # the usual datagram of one packet: no copy
            out += protected
        return bytes(out)

    def sent_packets(self) -> list[SentPacket]:
        """The packets of this datagram (valid after :meth:`finish`)."""
        return list(map(_SENT_OF, self._packets))  # no comprehension frame per datagram
