"""Stream ID arithmetic (RFC 9000 §2.1).

Owns the mapping between a stream ID and its initiator, direction and per-type index. It holds no
state and knows nothing of stream objects or limits (those live in :mod:`rudp.quic.streams.manager`).

The two least significant bits of a stream ID encode its type: bit 0x01 is the initiator (0 = client,
1 = server) and bit 0x02 the direction (0 = bidirectional, 1 = unidirectional). The remaining bits are
the stream's index among streams of that type, so the n-th stream of a type has ID ``n * 4 + type``.
"""

from __future__ import annotations

from typing import Final

SERVER_INITIATED_BIT: Final = 0x01
UNIDIRECTIONAL_BIT: Final = 0x02
TYPE_MASK: Final = 0x03
MAX_STREAM_ID: Final = (1 << 62) - 1


def is_client_initiated(stream_id: int) -> bool:
    """True when the client opened ``stream_id`` (RFC 9000 §2.1: bit 0x01 clear)."""
    return not stream_id & SERVER_INITIATED_BIT


def is_bidirectional(stream_id: int) -> bool:
    """True for a bidirectional stream (RFC 9000 §2.1: bit 0x02 clear)."""
    return not stream_id & UNIDIRECTIONAL_BIT


def is_local(stream_id: int, is_client: bool) -> bool:
    """True when the endpoint (client if ``is_client``) initiated ``stream_id``."""
    return (not stream_id & SERVER_INITIATED_BIT) == is_client  # (the helpers inline: asked per frame)


def stream_index(stream_id: int) -> int:
    """The stream's position among streams of its type (0 for the first one)."""
    return stream_id >> 2


def stream_type(*, client_initiated: bool, bidirectional: bool) -> int:
    """The two low bits for a stream type (0 client bidi, 1 server bidi, 2 client uni, 3 server uni)."""
    return (0 if client_initiated else SERVER_INITIATED_BIT) | (0 if bidirectional else UNIDIRECTIONAL_BIT)


def make_stream_id(index: int, *, client_initiated: bool, bidirectional: bool) -> int:
    """The ID of the ``index``-th stream of the given type (RFC 9000 §2.1)."""
    return (index << 2) | stream_type(client_initiated=client_initiated, bidirectional=bidirectional)


def can_send(stream_id: int, is_client: bool) -> bool:
    """True when the endpoint has a sending part on ``stream_id`` (bidi, or its own uni stream)."""
    return not stream_id & UNIDIRECTIONAL_BIT or (not stream_id & SERVER_INITIATED_BIT) == is_client


def can_receive(stream_id: int, is_client: bool) -> bool:
    """True when the endpoint has a receiving part on ``stream_id`` (bidi, or the peer's uni stream)."""
    return not stream_id & UNIDIRECTIONAL_BIT or (not stream_id & SERVER_INITIATED_BIT) != is_client


__all__ = [
    "MAX_STREAM_ID",
    "can_receive",
    "can_send",
    "is_bidirectional",
    "is_client_initiated",
    "is_local",
    "make_stream_id",
    "stream_index",
    "stream_type",
]
