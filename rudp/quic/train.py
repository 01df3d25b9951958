"""The packets of a packet train: one reused frame sink for a run of 1-RTT datagrams (issue 13).

A train is a run of datagrams of one short-header packet each (RFC 9000 §17.3.1), to one path, with
one peer connection ID and one largest acknowledged number, that :class:`~rudp.quic.sending.Sender`
builds in one loop when stream data is all it has to send. :class:`TrainBuilder` is the frame sink of
its packets, one open at a time: it encrypts each packet as it closes (RFC 9001 §5.3: the AEAD, whose
use counts towards the key's confidentiality limit before the next packet is built) and applies header
protection (RFC 9001 §5.4) to all of them at the end, with one cipher call over all samples for AES
(ECB encrypts each 16-byte block on its own, so the masks are those of one call per sample).

The bytes are exactly those :class:`~rudp.quic.packetizer.DatagramBuilder` writes for the same frames.
What the sender does with each packet (recovery, pacing, the after-send bookkeeping) stays in the
sender; this module only builds packets.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from struct import Struct
from typing import cast

from rudp.codec.frame_writing import FRAME_WRITERS, append_frame
from rudp.codec.frames import Frame
from rudp.codec.packet import encode_packet_number
from rudp.crypto.protection import SAMPLE_LENGTH, SAMPLE_OFFSET, TAG_LENGTH, PacketProtection
from rudp.quic.delivery import DeliveryHandler
from rudp.quic.sent import PacketSpace, SentPacket, open_sent_packet

_SHORT_FIRST_BYTE_MASK = 0x1F  # RFC 9001 §5.4.1: a short header's reserved, key phase and PN length bits
_STREAM = 0x08  # RFC 9000 §19.8: the STREAM type and its OFF, LEN and FIN bits
_STREAM_OFF = 0x04
_STREAM_LEN = 0x02
_STREAM_FIN = 0x01
_MIN_FRAME_ROOM = 8  # as DatagramBuilder.start_packet: no packet without room for a small frame
_APPLICATION = PacketSpace.APPLICATION
_SAMPLED = SAMPLE_OFFSET + SAMPLE_LENGTH - TAG_LENGTH
"""RFC 9001 §5.4.2: the packet number and payload bytes a header-protection sample needs."""
_PN_FORMATS = {1: "B", 2: "H", 3: "3s", 4: "I"}  # a truncated packet number's field (3 bytes: as bytes)
_USUAL_STREAM_HEADER = Struct(">BBIH").pack
"""The header of a train's usual STREAM frame: type, a 1-byte stream ID, a 4-byte offset varint (its
0b10 prefix included), a 2-byte length varint (0b01 prefix included)."""
_FIRST_STREAM_HEADERS = (Struct(">BBB").pack, Struct(">BBH").pack, Struct(">BHB").pack, Struct(">BHH").pack)
"""The header of a stream's first STREAM frame (no offset) with a stream ID and a length below 2**14:
type, then the ID and the length as 1- or 2-byte varints (RFC 9000 §16; index: 2 for a 2-byte ID, plus
1 for a 2-byte length). A small request or response is one such frame."""

_HeaderCodec = tuple[Callable[..., bytes], Callable[[bytes, int], tuple[int, int | bytes]]]


@cache
def _header_codec(dcid_length: int, pn_length: int) -> _HeaderCodec:
    """A short header's packer (first byte, DCID, truncated packet number: RFC 9000 §17.3.1) and the
    reader of a header-protection mask's first byte and packet number mask (RFC 9001 §5.4.1), for
    ``dcid_length``-byte connection IDs and ``pn_length``-byte numbers (3 bytes: the number as bytes)."""
    field = _PN_FORMATS[pn_length]
    return Struct(f">B{dcid_length}s{field}").pack, Struct(f">B{field}").unpack_from


def _varint(value: int) -> bytes:
    """RFC 9000 §16: the shortest varint of ``value`` (0 <= value < 2**62, as every offset and ID)."""
    if value <= 0x3F:
        return bytes((value,))
    if value <= 0x3FFF:
        return (0x4000 | value).to_bytes(2, "big")
    if value <= 0x3FFFFFFF:
        return (0x80000000 | value).to_bytes(4, "big")
    return (0xC000000000000000 | value).to_bytes(8, "big")


class TrainBuilder:
    """The frame sink of a train's packets (``FrameSink``: :attr:`remaining` and :meth:`push_frame`).

    :meth:`start_packet` opens a packet, :meth:`end_packet` encrypts it and returns its
    :class:`SentPacket`, :meth:`finish` applies header protection to every packet closed since the
    last call and returns their datagrams in order.
    """

    __slots__ = (
        "_budget",
        "_buf",
        "_dcid",
        "_done",
        "_first_byte",
        "_header_codec",
        "_header_size",
        "_largest_acked",
        "_overhead",
        "_packet_number",
        "_pending",
        "_pn_length",
        "_pn_limit",
        "_pn_mask",
        "_pn_value",
        "_protection",
        "_sent",
        "now",
        "remaining",
    )

    def __init__(self, now: float, dcid: bytes, largest_acked: int | None) -> None:
        self.now = now
        self.remaining = 0
        """Bytes left for frames in the open packet (an attribute, kept by :meth:`push_frame`)."""
        self._dcid = dcid
        self._largest_acked = largest_acked
        self._buf = bytearray()
        self._budget = 0
        self._sent: SentPacket | None = None
        self._protection: PacketProtection | None = None
        self._packet_number = 0
        self._header_size = 1 + len(dcid)
        self._first_byte = 0
        self._pn_value = 0
        self._header_codec = _header_codec(len(dcid), 1)
        """:func:`_header_codec` of the open packet's packet number length."""
        self._overhead = self._header_size + 1 + TAG_LENGTH
        """The open packet's bytes but its payload: header and AEAD tag."""
        self._pn_length = 1
        self._pn_limit = -1
        """Packet numbers below this one keep :attr:`_pn_length` (truncated by :attr:`_pn_mask`)."""
        self._pn_mask = 0
        self._pending: list[tuple[PacketProtection, int, int, int, bytes]] = []
        self._done: list[bytes] = []
        """Datagrams protected already (:meth:`stream_run`'s and the packets before them), in order."""
        """Closed packets awaiting header protection: (keys, first byte, truncated packet number, its
        length, AEAD output)."""

    def start_packet(
        self, size: int, protection: PacketProtection, first_byte: int, packet_number: int
    ) -> bool:
        """Open a 1-RTT packet of at most ``size`` bytes; False (nothing opened) if not even a small
        frame would fit. ``first_byte`` has the fixed and key phase bits (RFC 9000 §17.3.1)."""
        if self._sent is not None:
            raise ValueError("a packet is already open")
        if packet_number < self._pn_limit:
            pn_length = self._pn_length
            pn_value = packet_number & self._pn_mask
        else:
            pn_value, pn_length = encode_packet_number(packet_number, self._largest_acked)
            # RFC 9000 §17.1: the length holds while twice the distance to the largest acknowledged
            # fits its bits, for the later (larger) numbers of the train too.
            largest = -1 if self._largest_acked is None else self._largest_acked
            self._pn_limit = largest + (1 << (8 * pn_length - 1))
            self._pn_mask = (1 << (8 * pn_length)) - 1
            self._header_codec = _header_codec(len(self._dcid), pn_length)
            self._overhead = self._header_size + pn_length + TAG_LENGTH
        budget = size - self._overhead
        if budget < _MIN_FRAME_ROOM:
            return False
        self._sent = open_sent_packet(packet_number, _APPLICATION, self.now)
        self._protection = protection
        self._first_byte = first_byte | (pn_length - 1)
        self._packet_number = packet_number
        self._pn_value = pn_value
        self._pn_length = pn_length
        self._buf = bytearray()
        self._budget = budget
        self.remaining = budget
        return True

    def push_frame(self, frame: Frame, handler: DeliveryHandler | None = None) -> None:
        """Append a frame to the open packet (see ``FrameSink.push_frame``)."""
        sent = self._sent
        if sent is None:
            raise ValueError("no packet is open")
        buf = self._buf
        before = len(buf)
        FRAME_WRITERS.get(type(frame), append_frame)(buf, frame)
        remaining = self._budget - len(buf)
        if remaining < 0:
            del buf[before:]
            raise ValueError("frame does not fit in the packet")
        self.remaining = remaining
        sent.note_frame(frame, handler)

    def push_stream(
        self, stream_id: int, offset: int, data: bytes, fin: bool, handler: DeliveryHandler
    ) -> None:
        """Append a STREAM frame to the open packet (see ``FrameSink.push_stream``): RFC 9000 §19.8, as
        write_frame encodes it, without a frame object or a Writer."""
        sent = self._sent
        if sent is None:
            raise ValueError("no packet is open")
        length = len(data)
        if stream_id <= 0x3F and 0x3FFF < offset <= 0x3FFFFFFF and 0x3F < length <= 0x3FFF:
            # The usual frame of a train: a small stream ID, a 4-byte offset and a 2-byte length.
            header = _USUAL_STREAM_HEADER(
                _STREAM | _STREAM_OFF | _STREAM_LEN | (_STREAM_FIN if fin else 0),
                stream_id,
                0x80000000 | offset,
                0x4000 | length,
            )
        elif not offset and stream_id <= 0x3FFF and length <= 0x3FFF:
            wide_id, wide_length = stream_id > 0x3F, length > 0x3F
            header = _FIRST_STREAM_HEADERS[wide_id * 2 + wide_length](
                _STREAM | _STREAM_LEN | (_STREAM_FIN if fin else 0),
                0x4000 | stream_id if wide_id else stream_id,
                0x4000 | length if wide_length else length,
            )
        else:
            header = (
                bytes((_STREAM | (_STREAM_OFF if offset else 0) | _STREAM_LEN | (_STREAM_FIN if fin else 0),))
                + _varint(stream_id)
                + (_varint(offset) if offset else b"")
                + _varint(length)
            )
        remaining = self.remaining - len(header) - length
        if remaining < 0:
            raise ValueError("frame does not fit in the packet")
        buf = self._buf
        buf += header
        buf += data
        self.remaining = remaining
        # SentPacket.note_frame for STREAM, inline: it elicits an ACK (RFC 9002 §2).
        sent.ack_eliciting = sent.in_flight = True
        sent.handlers.append(handler)

    def run_room(self, size: int, next_pn: int) -> tuple[int, int]:
        """For :meth:`stream_run` after a packet of this builder: the frame room of a ``size``-byte
        packet and how many packets from ``next_pn`` on keep the last packet's number length (half
        the numbers left below the limit: numbers skipped meanwhile, RFC 9000 §21.4, are far apart)."""
        if self._pn_length == 3:
            return 0, 0  # (a 3-byte number is packed as bytes: such packets go one by one)
        return size - self._overhead, (self._pn_limit - next_pn) // 2

    def stream_run(
        self,
        protection: PacketProtection,
        first_byte: int,
        numbers: list[int],
        stream_id: int,
        offset: int,
        length: int,
        frames: list[tuple[bytes, DeliveryHandler]],
        large: DeliveryHandler | None,
    ) -> list[SentPacket]:
        """Whole packets, each one STREAM frame of ``length`` bytes filling it (:meth:`start_packet`,
        :meth:`push_stream`, :meth:`end_packet` for each, the usual frame header): ``frames`` from
        ``offset`` on, numbered ``numbers`` (below the limit :meth:`run_room` gave), each record with
        ``large`` after the frame's handler when given (a datagram above the PMTU base, watched for a
        black hole). Header protection is applied to them here, with one mask call for the run (and
        to the packets closed before them first): :meth:`finish` returns them all in order. No packet
        may be open."""
        if self._sent is not None:
            raise ValueError("a packet is already open")
        if self._pending:
            self._protect_pending(self._done)  # the packets before the run first (their order)
        pn_length = self._pn_length
        first_byte |= pn_length - 1
        pack = self._header_codec[0]
        # (1, 2 or 4-byte numbers: run_room gives no room for 3-byte ones, packed as bytes)
        unpack = cast(Callable[[bytes, int], tuple[int, int]], self._header_codec[1])
        dcid, mask, now = self._dcid, self._pn_mask, self.now
        size = self._overhead + 8 + length
        frame_type = _STREAM | _STREAM_OFF | _STREAM_LEN
        field = 0x4000 | length
        seal = protection.seal
        low = SAMPLE_OFFSET - pn_length  # RFC 9001 §5.4.2: the sample, from the packet number's start
        high = low + SAMPLE_LENGTH
        samples = bytearray()
        sealed_packets: list[bytes] = []
        keep = sealed_packets.append
        out: list[SentPacket] = []
        for number, (data, handler) in zip(numbers, frames, strict=True):
            payload = _USUAL_STREAM_HEADER(frame_type, stream_id, 0x80000000 | offset, field) + data
            sealed = seal(pack(first_byte, dcid, number & mask), payload, number)
            samples += sealed[low:high]
            keep(sealed)
            offset += length
            sent = open_sent_packet(number, _APPLICATION, now)
            sent.size_bytes = size
            sent.ack_eliciting = sent.in_flight = True  # RFC 9002 §2
            if large is None:
                sent.handlers.append(handler)
            else:
                sent.handlers += (handler, large)
            out.append(sent)
        # RFC 9001 §5.4.1: header protection of the run, one mask call for all of it (as finish).
        masks = protection.header_masks(bytes(samples))
        done = self._done
        at = 0
        for number, sealed in zip(numbers, sealed_packets, strict=False):
            first_mask, pn_mask = unpack(masks, at)
            masked = first_byte ^ (first_mask & _SHORT_FIRST_BYTE_MASK)
            done.append(pack(masked, dcid, (number & mask) ^ pn_mask) + sealed)
            at += SAMPLE_LENGTH
        return out

    def sent_is_ack_eliciting(self) -> bool:
        """True if the open packet already carries an ack-eliciting frame."""
        return self._sent is not None and self._sent.ack_eliciting

    def require_padding(self) -> None:
        """``PacketSink.require_padding``: a train's packets are never padded to 1200 bytes (no frame
        source that asks for it writes into a train)."""
        raise ValueError("a packet train is never padded")

    def push_ack(self, encoded: bytes, largest: int, handler: DeliveryHandler) -> None:
        """Append an ACK frame already encoded (:meth:`AckTracker.take_encoded_ack
        <rudp.quic.acks.AckTracker.take_encoded_ack>`, the bytes :meth:`push_frame` would write for it)
        whose largest acknowledged is ``largest``: as ``SentPacket.note_frame`` for an ACK, it neither
        elicits an ACK nor puts the packet in flight (RFC 9002 §2)."""
        sent = self._sent
        if sent is None:
            raise ValueError("no packet is open")
        remaining = self._budget - len(self._buf) - len(encoded)
        if remaining < 0:
            raise ValueError("frame does not fit in the packet")
        self._buf += encoded
        self.remaining = remaining
        sent.largest_acked_in_ack = largest
        sent.handlers.append(handler)

    def end_packet(self) -> SentPacket | None:
        """Close and encrypt the open packet (RFC 9001 §5.3); None for an empty packet (its number is
        then not used). Header protection waits for :meth:`finish`."""
        sent, protection = self._sent, self._protection
        self._sent = None
        buf = self._buf
        if sent is None or protection is None or not buf:
            return None
        pn_length = self._pn_length
        length = len(buf)
        # RFC 9001 §5.4.2: the packet number and ciphertext must cover the sample (min_payload_length).
        short = _SAMPLED - pn_length - length
        if short > 0:
            buf += bytes(short)  # PADDING frames
            length += short
            sent.in_flight = True
        first_byte, pn_value = self._first_byte, self._pn_value
        header = self._header_codec[0](
            first_byte, self._dcid, pn_value if pn_length != 3 else pn_value.to_bytes(3, "big")
        )
        sealed = protection.seal(header, buf, self._packet_number)
        sent.size_bytes = self._overhead + length
        self._pending.append((protection, first_byte, pn_value, pn_length, sealed))
        return sent

    def finish(self) -> list[bytes]:
        """The datagrams of the packets closed since the last call, in order, header protection applied
        (RFC 9001 §5.4.1; :meth:`stream_run` applied it to its own)."""
        out = self._done
        self._done = []
        if self._pending:
            self._protect_pending(out)
        return out

    def _protect_pending(self, out: list[bytes]) -> None:
        """Apply header protection to the packets closed but not protected yet (RFC 9001 §5.4.1) and
        append their datagrams to ``out``: one :meth:`PacketProtection.header_masks` call per run of
        packets under the same keys (a key update shares the header protection key, RFC 9001 §6, but
        the runs do not rely on it)."""
        pending = self._pending
        self._pending = []
        dcid = self._dcid
        count = len(pending)
        start = 0
        while start < count:
            protection = pending[start][0]
            samples = bytearray()
            stop = start
            while stop < count:
                entry = pending[stop]
                if entry[0] is not protection:
                    break
                # RFC 9001 §5.4.2: the sample starts 4 bytes after the packet number's first byte.
                pn_length = entry[3]
                samples += entry[4][SAMPLE_OFFSET - pn_length : SAMPLE_OFFSET + SAMPLE_LENGTH - pn_length]
                stop += 1
            masks = protection.header_masks(bytes(samples))
            at = 0
            codec_length = 0
            pack, unpack = self._header_codec
            for index in range(start, stop):
                _, first_byte, pn_value, pn_length, sealed = pending[index]
                if pn_length != codec_length:
                    pack, unpack = _header_codec(len(dcid), pn_length)
                    codec_length = pn_length
                # The first byte's low bits and the packet number's bytes (RFC 9001 §5.4.1).
                first_mask, pn_mask = unpack(masks, at)
                first_byte ^= first_mask & _SHORT_FIRST_BYTE_MASK
                if isinstance(pn_mask, int):
                    header = pack(first_byte, dcid, pn_value ^ pn_mask)
                else:  # a 3-byte packet number (as bytes)
                    masked = pn_value ^ int.from_bytes(pn_mask, "big")
                    header = pack(first_byte, dcid, masked.to_bytes(3, "big"))
                out.append(header + sealed)
                at += SAMPLE_LENGTH
            start = stop


__all__ = ["TrainBuilder"]
