"""QUIC packet headers: long and short headers, Version Negotiation, Retry, coalesced datagrams,
and packet number truncation/reconstruction (RFC 9000 §17, §12.2, RFC 8999, RFC 9369 §3.2).

This module parses and builds the *unprotected-visible* parts of headers. Header protection and AEAD
(which hide the packet number, key phase and reserved bits) belong to :mod:`rudp.crypto.protection`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final, NamedTuple

from rudp.codec.buffer import Reader, Writer
from rudp.codec.codes import PacketType, Version
from rudp.errors import DecodeError, TransportErrorCode

MAX_CID_LENGTH: Final = 20  # RFC 9000 §17.2: at most 20 bytes in QUIC v1 (and v2)
RETRY_INTEGRITY_TAG_SIZE: Final = 16
MIN_INITIAL_DATAGRAM_SIZE: Final = 1200  # RFC 9000 §14.1

HEADER_FORM_LONG: Final = 0x80
FIXED_BIT: Final = 0x40
SPIN_BIT: Final = 0x20
KEY_PHASE_BIT: Final = 0x04

_PV = TransportErrorCode.PROTOCOL_VIOLATION

# RFC 9000 §17.2 (v1) and RFC 9369 §3.2 (v2): the two long-header type bits differ per version.
_LONG_TYPE_BITS: Final[dict[int, dict[PacketType, int]]] = {
    Version.V1: {
        PacketType.INITIAL: 0,
        PacketType.ZERO_RTT: 1,
        PacketType.HANDSHAKE: 2,
        PacketType.RETRY: 3,
    },
    Version.V2: {
        PacketType.INITIAL: 1,
        PacketType.ZERO_RTT: 2,
        PacketType.HANDSHAKE: 3,
        PacketType.RETRY: 0,
    },
}
_LONG_TYPE_FROM_BITS: Final[dict[int, tuple[PacketType, ...]]] = {
    version: tuple(sorted(table, key=table.__getitem__)) for version, table in _LONG_TYPE_BITS.items()
}
_INITIAL, _RETRY, _ONE_RTT = PacketType.INITIAL, PacketType.RETRY, PacketType.ONE_RTT


class PacketHeader(NamedTuple):
    """The parsed visible header of one packet inside a datagram.

    Offsets are relative to the start of the datagram, so a coalesced datagram can be processed
    without copying: the packet is ``datagram[start:end]`` and its packet number starts at
    ``pn_offset`` (still under header protection).

    (An immutable tuple rather than a frozen dataclass: a frozen dataclass sets each of its twelve
    fields through ``object.__setattr__``, ~1.3 us per header against ~0.3, and every packet received
    has its header parsed.)
    """

    first_byte: int
    """The first byte as received (its low bits are still masked by header protection)."""
    is_long: bool
    """True for a long header."""
    version: int | None
    """The version field of a long header (0 for Version Negotiation); None for a short header."""
    packet_type: PacketType | None
    """The packet kind; None for a long header of a version rudp does not support."""
    dcid: bytes
    """Destination connection ID."""
    scid: bytes = b""
    """Source connection ID (long headers only)."""
    token: bytes = b""
    """Initial token, or the Retry token."""
    start: int = 0
    """Offset of the packet's first byte in the datagram."""
    pn_offset: int = 0
    """Offset of the (protected) packet number in the datagram; 0 for VN, Retry and unsupported."""
    end: int = 0
    """Offset one past the packet's last byte in the datagram."""
    integrity_tag: bytes = b""
    """The Retry Integrity Tag (Retry only)."""
    supported_versions: tuple[int, ...] = ()
    """The versions listed in a Version Negotiation packet."""

    @property
    def spin_bit(self) -> bool:
        """The latency spin bit of a short header (not covered by header protection)."""
        return not self.is_long and bool(self.first_byte & SPIN_BIT)


_new_header: Final = tuple.__new__
"""``PacketHeader``'s own constructor without its Python-level ``__new__`` (every field given, in order):
the two headers :func:`parse_header` reads by index are built in C (a server handshake parses three)."""


def long_type_bits(packet_type: PacketType, version: int) -> int:
    """Return the 2-bit long packet type code of ``packet_type`` in ``version``."""
    table = _LONG_TYPE_BITS.get(version)
    if table is None or packet_type not in table:
        raise ValueError(f"{packet_type!r} has no long-header type in version {version:#x}")
    return table[packet_type]


def _pull_cid(reader: Reader, limit: int) -> bytes:
    length = reader.pull_uint8()
    if length > limit:
        raise DecodeError(f"connection ID of {length} bytes", _PV)
    return reader.pull_bytes(length)


def parse_header(data: bytes | memoryview, offset: int = 0, *, short_dcid_length: int = 0) -> PacketHeader:
    """Parse the header of the packet that starts at ``offset`` in ``data``.

    ``short_dcid_length`` is the length of the connection IDs this endpoint issued: short headers do not
    carry it (RFC 9000 §17.3).

    Raises:
        DecodeError: (PROTOCOL_VIOLATION) for a truncated or inconsistent header, a zero fixed bit
            (RFC 9000 §17.2: such packets are discarded), or a connection ID over 20 bytes in a known
            version. The caller drops the rest of the datagram.
    """
    size = len(data)
    if offset >= size:
        raise DecodeError("truncated uint8", _PV)
    first = data[offset]
    if not first & HEADER_FORM_LONG:
        if not first & FIXED_BIT:
            raise DecodeError("fixed bit is zero", _PV)
        pn_offset = offset + 1 + short_dcid_length
        if pn_offset >= size:
            raise DecodeError("short header without packet number", _PV)
        dcid = bytes(data[offset + 1 : pn_offset])
        fields = (first, False, None, _ONE_RTT, dcid, b"", b"", offset, pn_offset, size, b"", ())
        return _new_header(PacketHeader, fields)
    table = None
    if offset + 7 <= size:  # version, both CID lengths, at least an empty DCID
        # The common case (RFC 9000 §17.2: Initial, 0-RTT, Handshake of a known version) is read
        # by index, without a Reader: every server handshake and client connection parses several.
        version = int.from_bytes(data[offset + 1 : offset + 5], "big")
        table = _LONG_TYPE_FROM_BITS.get(version)
    if table is not None and first & FIXED_BIT:
        packet_type = table[(first >> 4) & 0x03]
        if packet_type is not _RETRY:
            return _parse_long(data, first, version, packet_type, offset, size)
    return _parse_header_slow(data, offset)


def _pull_varint_at(data: bytes | memoryview, pos: int, size: int) -> tuple[int, int]:
    """The varint (RFC 9000 §16) at ``pos`` and the position after it."""
    if pos >= size:
        raise DecodeError("truncated varint", _PV)
    first = data[pos]
    length = 1 << (first >> 6)
    if length == 1:
        return first, pos + 1
    end = pos + length
    if end > size:
        raise DecodeError("truncated varint", _PV)
    return int.from_bytes(data[pos:end], "big") & ((1 << (length * 8 - 2)) - 1), end


def _parse_long(
    data: bytes | memoryview, first: int, version: int, packet_type: PacketType, offset: int, size: int
) -> PacketHeader:
    """An Initial, 0-RTT or Handshake header of a known version (RFC 9000 §17.2), the Retry aside."""
    pos = offset + 6
    dcid_length = data[pos - 1]
    if dcid_length > MAX_CID_LENGTH:
        raise DecodeError(f"connection ID of {dcid_length} bytes", _PV)
    dcid_end = pos + dcid_length
    if dcid_end >= size:
        raise DecodeError("truncated connection ID", _PV)
    scid_length = data[dcid_end]
    if scid_length > MAX_CID_LENGTH:
        raise DecodeError(f"connection ID of {scid_length} bytes", _PV)
    pos = dcid_end + 1 + scid_length
    if pos > size:
        raise DecodeError("truncated connection ID", _PV)
    if type(data) is bytes:  # (slices of bytes are bytes; a view's are views, copied for the header)
        dcid, scid = data[offset + 6 : dcid_end], data[dcid_end + 1 : pos]
    else:
        dcid, scid = bytes(data[offset + 6 : dcid_end]), bytes(data[dcid_end + 1 : pos])
    token = b""
    if packet_type is _INITIAL:
        if pos < size and data[pos] < 0x40:  # (a one-byte varint: the usual empty or short token)
            token_length = data[pos]
            pos += 1
        else:
            token_length, pos = _pull_varint_at(data, pos, size)
        if pos + token_length > size:
            raise DecodeError("truncated token", _PV)
        token = bytes(data[pos : pos + token_length])
        pos += token_length
    if pos + 1 < size and 0x40 <= data[pos] < 0x80:  # (a two-byte varint: the usual Length)
        length, pn_offset = ((data[pos] & 0x3F) << 8) | data[pos + 1], pos + 2
    else:
        length, pn_offset = _pull_varint_at(data, pos, size)
    if length < 1 or length > size - pn_offset:
        raise DecodeError(f"packet length {length} does not fit the datagram", _PV)
    end = pn_offset + length
    fields = (first, True, version, packet_type, dcid, scid, token, offset, pn_offset, end, b"", ())
    return _new_header(PacketHeader, fields)


def _parse_header_slow(data: bytes | memoryview, offset: int) -> PacketHeader:
    """A long header that :func:`parse_header` does not read by index: Version Negotiation, Retry, an
    unknown version, or one that is truncated or has a zero fixed bit."""
    reader = Reader(data, offset, error_code=_PV)
    first = reader.pull_uint8()
    version = reader.pull_uint32()
    if version == Version.NEGOTIATION:
        return _parse_version_negotiation(reader, first, offset)
    table = _LONG_TYPE_FROM_BITS.get(version)
    if table is None:
        # RFC 8999 §5.1: only the invariant fields can be read; CIDs may be up to 255 bytes.
        dcid = _pull_cid(reader, 255)
        scid = _pull_cid(reader, 255)
        return PacketHeader(first, True, version, None, dcid, scid, b"", offset, 0, len(data))
    if not first & FIXED_BIT:
        raise DecodeError("fixed bit is zero", _PV)
    dcid = _pull_cid(reader, MAX_CID_LENGTH)
    scid = _pull_cid(reader, MAX_CID_LENGTH)
    packet_type = table[(first >> 4) & 0x03]
    if packet_type is PacketType.RETRY:
        rest = reader.remaining - RETRY_INTEGRITY_TAG_SIZE
        if rest < 0:
            raise DecodeError("retry packet too short", _PV)
        token = reader.pull_bytes(rest)
        tag = reader.pull_bytes(RETRY_INTEGRITY_TAG_SIZE)
        return PacketHeader(first, True, version, packet_type, dcid, scid, token, offset, 0, len(data), tag)
    return _parse_long(data, first, version, packet_type, offset, len(data))


def _parse_version_negotiation(reader: Reader, first: int, offset: int) -> PacketHeader:
    dcid = _pull_cid(reader, 255)
    scid = _pull_cid(reader, 255)
    if reader.remaining == 0 or reader.remaining % 4:
        raise DecodeError("version negotiation list is empty or not a multiple of 4 bytes", _PV)
    versions = tuple(reader.pull_uint32() for _ in range(reader.remaining // 4))
    return PacketHeader(first, True, Version.NEGOTIATION, PacketType.VERSION_NEGOTIATION, dcid, scid,
                        b"", offset, 0, reader.position, b"", versions)


def iter_packets(
    datagram: bytes | memoryview, *, short_dcid_length: int = 0, first: PacketHeader | None = None
) -> Iterator[PacketHeader]:
    """Yield the headers of the packets coalesced in ``datagram`` (RFC 9000 §12.2), in order.

    Iteration stops after a short-header packet (it always extends to the end of the datagram) and
    after a Retry, Version Negotiation or unsupported-version packet (they carry no Length field).
    ``first``: the first packet's header, already parsed from these very bytes (with this
    ``short_dcid_length``) by the caller, yielded as it is instead of being parsed again.

    Raises:
        DecodeError: for an undecodable header; packets yielded before it remain valid.
    """
    offset = 0
    size = len(datagram)
    while offset < size:
        if first is not None:
            header, first = first, None
        else:
            header = parse_header(datagram, offset, short_dcid_length=short_dcid_length)
        yield header
        if header.pn_offset == 0 or header.end >= size:
            return
        offset = header.end


def encode_long_header(
    packet_type: PacketType,
    version: int,
    dcid: bytes,
    scid: bytes,
    *,
    token: bytes = b"",
    length: int,
    packet_number: int,
    pn_length: int,
) -> bytes:
    """Build an Initial, 0-RTT or Handshake header up to and including the truncated packet number.

    ``length`` is the Length field: packet number length + protected payload length (incl. AEAD tag).
    ``packet_number`` is the already truncated value written in ``pn_length`` (1..4) bytes.
    """
    if not 1 <= pn_length <= 4:
        raise ValueError("pn_length must be 1..4")
    if len(dcid) > MAX_CID_LENGTH or len(scid) > MAX_CID_LENGTH:
        raise ValueError("connection IDs are at most 20 bytes")
    if packet_type not in (PacketType.INITIAL, PacketType.ZERO_RTT, PacketType.HANDSHAKE):
        raise ValueError(f"{packet_type!r} is not a long header with a packet number")
    writer = Writer()
    writer.push_uint8(
        HEADER_FORM_LONG | FIXED_BIT | (long_type_bits(packet_type, version) << 4) | (pn_length - 1)
    )
    writer.push_uint32(version)
    writer.push_block(1, dcid)
    writer.push_block(1, scid)
    if packet_type is PacketType.INITIAL:
        writer.push_block(0, token)
    writer.push_varint(length)
    writer.push_bytes(packet_number.to_bytes(pn_length, "big"))
    return writer.getvalue()


def encode_short_header(
    dcid: bytes, *, packet_number: int, pn_length: int, spin_bit: bool = False, key_phase: bool = False
) -> bytes:
    """Build a 1-RTT short header up to and including the truncated packet number (RFC 9000 §17.3.1)."""
    if not 1 <= pn_length <= 4:
        raise ValueError("pn_length must be 1..4")
    first = FIXED_BIT | (pn_length - 1)
    if spin_bit:
        first |= SPIN_BIT
    if key_phase:
        first |= KEY_PHASE_BIT
    return bytes((first,)) + dcid + packet_number.to_bytes(pn_length, "big")


def encode_retry(
    version: int, dcid: bytes, scid: bytes, token: bytes, integrity_tag: bytes = b"", unused_bits: int = 0
) -> bytes:
    """Build a Retry packet; without ``integrity_tag`` the result is the input to the tag computation."""
    if not token:
        raise ValueError("a Retry packet must carry a token")  # RFC 9000 §17.2.5
    writer = Writer()
    writer.push_uint8(
        HEADER_FORM_LONG | FIXED_BIT | (long_type_bits(PacketType.RETRY, version) << 4) | (unused_bits & 0x0F)
    )
    writer.push_uint32(version)
    writer.push_block(1, dcid)
    writer.push_block(1, scid)
    writer.push_bytes(token)
    writer.push_bytes(integrity_tag)
    return writer.getvalue()


def encode_version_negotiation(
    dcid: bytes, scid: bytes, versions: Sequence[int], unused_bits: int = 0
) -> bytes:
    """Build a Version Negotiation packet (RFC 9000 §17.2.1).

    ``dcid``/``scid`` are the client's SCID/DCID echoed back; ``unused_bits`` fills the 7 unused bits
    of the first byte (servers should set them at random; pass the random value in).
    """
    writer = Writer()
    writer.push_uint8(HEADER_FORM_LONG | (unused_bits & 0x7F))
    writer.push_uint32(Version.NEGOTIATION)
    writer.push_block(1, dcid)
    writer.push_block(1, scid)
    for version in versions:
        writer.push_uint32(version)
    return writer.getvalue()


def encode_packet_number(packet_number: int, largest_acked: int | None) -> tuple[int, int]:
    """Truncate ``packet_number`` for sending; return ``(truncated_value, length_in_bytes)``.

    RFC 9000 §17.1 and Appendix A.2: use enough bits to represent more than twice the distance to the
    largest acknowledged packet (or the full number when nothing was acknowledged yet).
    """
    num_unacked = packet_number + 1 if largest_acked is None else packet_number - largest_acked
    # 2^bits must exceed twice the number of packets in flight (log2(n) + 1 bits, rounded up to whole
    # bytes, at least one; "or", not max(): asked for every packet sent).
    length = ((2 * num_unacked).bit_length() + 7) // 8 or 1
    if length > 4:
        raise ValueError("packet number too far ahead of the largest acknowledged")
    return packet_number & ((1 << (8 * length)) - 1), length


def decode_packet_number(truncated: int, pn_nbits: int, expected: int) -> int:
    """Reconstruct a full packet number (RFC 9000 Appendix A.3).

    ``expected`` is the largest packet number received so far in the space, plus one.
    """
    window = 1 << pn_nbits
    half_window = window >> 1
    mask = window - 1
    candidate = (expected & ~mask) | truncated
    if candidate <= expected - half_window and candidate < (1 << 62) - window:
        return candidate + window
    if candidate > expected + half_window and candidate >= window:
        return candidate - window
    return candidate
