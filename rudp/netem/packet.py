"""Raw IPv4/IPv6 packet helpers: header fields, Internet checksums, payload corruption.

Only what the forwarder needs: locate the transport header, recompute IPv4 header and UDP/TCP checksums
(with the pseudo-header), and flip bytes in a UDP payload. Packets are `bytearray`s edited in place.
"""

from __future__ import annotations

import random
import sys
from array import array
from typing import Final

PROTO_TCP: Final = 6
PROTO_UDP: Final = 17
_LITTLE: Final = sys.byteorder == "little"


def ones_sum(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    """The 16-bit one's-complement sum of `data` (big-endian words, odd length padded), folded."""
    if len(data) % 2:
        data = bytes(data) + b"\x00"
    words = array("H")
    words.frombytes(data)  # array("H", memoryview) would iterate bytes, not words
    if _LITTLE:
        words.byteswap()
    total = sum(words) + start
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    """The Internet checksum (RFC 1071) of `data` with `start` folded in."""
    return ~ones_sum(data, start) & 0xFFFF


def ip_version(pkt: bytes | bytearray) -> int:
    """4 or 6 (or whatever the first nibble says)."""
    return pkt[0] >> 4 if pkt else 0


def ipv4_header_length(pkt: bytes | bytearray) -> int:
    """The IPv4 header length in bytes."""
    return (pkt[0] & 0x0F) * 4


def is_ipv4_fragment(pkt: bytes | bytearray) -> bool:
    """Whether an IPv4 packet is a fragment (more-fragments set or a non-zero offset)."""
    return bool(int.from_bytes(pkt[6:8], "big") & 0x3FFF)


def transport(pkt: bytes | bytearray) -> tuple[int, int]:
    """(protocol, offset of the transport header) for IPv4 or IPv6 without extension headers.

    Returns (-1, -1) when the packet is too short or not IP, and (proto, -1) for IPv4 fragments after
    the first (their payload does not start with a transport header).
    """
    if len(pkt) < 20:
        return -1, -1
    version = pkt[0] >> 4
    if version == 4:
        ihl = ipv4_header_length(pkt)
        if ihl < 20 or len(pkt) < ihl:
            return -1, -1
        if int.from_bytes(pkt[6:8], "big") & 0x1FFF:
            return pkt[9], -1
        return pkt[9], ihl
    if version == 6 and len(pkt) >= 40:
        return pkt[6], 40
    return -1, -1


def fix_ipv4_header_checksum(pkt: bytearray) -> None:
    """Recompute the IPv4 header checksum in place."""
    ihl = ipv4_header_length(pkt)
    pkt[10:12] = b"\x00\x00"
    pkt[10:12] = checksum(memoryview(pkt)[:ihl]).to_bytes(2, "big")


def _pseudo_sum(pkt: bytearray, proto: int, length: int) -> int:
    addrs = pkt[12:20] if pkt[0] >> 4 == 4 else pkt[8:40]
    return ones_sum(addrs, proto + length)


def fix_transport_checksum(pkt: bytearray, proto: int, offset: int) -> None:
    """Recompute the UDP or TCP checksum of an unfragmented packet in place.

    An IPv4 UDP datagram sent without a checksum (zero) is left without one.
    """
    if proto == PROTO_UDP:
        pos = offset + 6
        if pkt[0] >> 4 == 4 and pkt[pos] == 0 and pkt[pos + 1] == 0:
            return
    elif proto == PROTO_TCP:
        pos = offset + 16
    else:
        return
    if len(pkt) < pos + 2:
        return
    segment = memoryview(pkt)[offset:]
    length = len(segment)
    pkt[pos : pos + 2] = b"\x00\x00"
    value = checksum(segment, _pseudo_sum(pkt, proto, length))
    segment.release()
    if proto == PROTO_UDP and value == 0:
        value = 0xFFFF
    pkt[pos : pos + 2] = value.to_bytes(2, "big")


def transport_checksum_ok(pkt: bytes | bytearray) -> bool:
    """Whether the UDP/TCP checksum verifies (True for other protocols and checksum-less UDP)."""
    proto, offset = transport(pkt)
    if proto not in (PROTO_UDP, PROTO_TCP) or offset < 0:
        return True
    if proto == PROTO_UDP and pkt[0] >> 4 == 4 and pkt[offset + 6 : offset + 8] == b"\x00\x00":
        return True
    buf = bytearray(pkt)
    return ones_sum(memoryview(buf)[offset:], _pseudo_sum(buf, proto, len(buf) - offset)) == 0xFFFF


def corrupt(pkt: bytearray, nbytes: int, rng: random.Random, fix_checksum: bool) -> None:
    """Flip `nbytes` random bytes (XOR with a non-zero value) of the UDP payload in place.

    Non-UDP packets get their transport payload (after the IP header) damaged instead, and fragments
    are left alone. With `fix_checksum` the UDP checksum is recomputed so the receiver's kernel
    accepts the datagram.
    """
    proto, offset = transport(pkt)
    if offset < 0:
        return
    start = offset + 8 if proto == PROTO_UDP else offset
    if start >= len(pkt):
        return
    for _ in range(nbytes):
        pos = rng.randrange(start, len(pkt))
        pkt[pos] ^= rng.randrange(1, 256)
    if fix_checksum and proto == PROTO_UDP:
        fix_transport_checksum(pkt, proto, offset)


# -- ECN (RFC 3168): the two low bits of the IPv4 TOS byte / the IPv6 traffic class ---------------------

ECN_NOT_ECT: Final = 0
ECN_ECT1: Final = 1
ECN_ECT0: Final = 2
ECN_CE: Final = 3


def ecn(pkt: bytes | bytearray) -> int:
    """The ECN codepoint of an IPv4 or IPv6 packet (0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE); 0 if not IP."""
    if len(pkt) < 2:
        return ECN_NOT_ECT
    version = pkt[0] >> 4
    if version == 4:
        return pkt[1] & 0x03
    if version == 6:
        return (pkt[1] >> 4) & 0x03  # traffic class = low nibble of byte 0, high nibble of byte 1
    return ECN_NOT_ECT


def set_ecn(pkt: bytearray, codepoint: int) -> None:
    """Set the ECN codepoint in place; an IPv4 header checksum is updated, IPv6 has none."""
    version = pkt[0] >> 4
    if version == 4 and len(pkt) >= 20:
        old = pkt[0] << 8 | pkt[1]
        pkt[1] = (pkt[1] & 0xFC) | (codepoint & 0x03)
        new = pkt[0] << 8 | pkt[1]
        # Incremental update (RFC 1624, eqn. 3): HC' = ~(~HC + ~m + m').
        total = (~int.from_bytes(pkt[10:12], "big") & 0xFFFF) + (~old & 0xFFFF) + new
        while total >> 16:
            total = (total & 0xFFFF) + (total >> 16)
        pkt[10:12] = (~total & 0xFFFF).to_bytes(2, "big")
    elif version == 6 and len(pkt) >= 40:
        pkt[1] = (pkt[1] & 0xCF) | ((codepoint & 0x03) << 4)
