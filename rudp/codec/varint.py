"""QUIC variable-length integers (RFC 9000 §16): sizes, encoding and decoding.

Owns only the varint arithmetic; reading from and writing to buffers is :mod:`rudp.codec.buffer`.
"""

from __future__ import annotations

from typing import Final

from rudp.errors import DecodeError

VARINT_MAX: Final = (1 << 62) - 1

_PREFIX_LEN: Final = (1, 2, 4, 8)


def varint_size(value: int) -> int:
    """Return the number of bytes the shortest encoding of ``value`` takes (1, 2, 4 or 8).

    Raises:
        ValueError: if ``value`` is negative or above :data:`VARINT_MAX`.
    """
    if value < 0:
        raise ValueError(f"varint out of range: {value}")
    if value <= 0x3F:
        return 1
    if value <= 0x3FFF:
        return 2
    if value <= 0x3FFFFFFF:
        return 4
    if value <= VARINT_MAX:
        return 8
    raise ValueError(f"varint out of range: {value}")


def encode_varint(value: int, size: int = 0) -> bytes:
    """Encode ``value`` as a varint, in ``size`` bytes if given (else the shortest form).

    RFC 9000 §16 allows a longer encoding than needed, which is why ``size`` exists (e.g. to reserve
    room for a Length field that is patched later).

    Raises:
        ValueError: if ``value`` is out of range or does not fit in ``size`` bytes.
    """
    need = varint_size(value)
    if size == 0:
        size = need
    elif size not in _PREFIX_LEN or size < need:
        raise ValueError(f"cannot encode {value} as a {size}-byte varint")
    prefix = _PREFIX_LEN.index(size) << (size * 8 - 2)
    return (prefix | value).to_bytes(size, "big")


def decode_varint(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode one varint at ``offset``; return ``(value, new_offset)``.

    Raises:
        DecodeError: if the input ends before the varint does.
    """
    try:
        first = data[offset]
    except IndexError:
        raise DecodeError("truncated varint") from None
    length = 1 << (first >> 6)
    end = offset + length
    if end > len(data):
        raise DecodeError("truncated varint")
    if length == 1:
        return first, end
    return int.from_bytes(data[offset:end], "big") & ((1 << (length * 8 - 2)) - 1), end
