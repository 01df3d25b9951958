"""Wire constants of QUIC as IntEnums: versions, packet types and frame types (RFC 9000, RFC 9369).

Transport error codes live in :mod:`rudp.errors` (:class:`~rudp.errors.TransportErrorCode`) and are
re-exported here for codec users.
"""

from __future__ import annotations

from enum import IntEnum

from rudp.errors import TransportErrorCode


class Version(IntEnum):
    """QUIC versions rudp knows."""

    NEGOTIATION = 0x00000000
    V1 = 0x00000001  # RFC 9000
    V2 = 0x6B3343CF  # RFC 9369


SUPPORTED_VERSIONS: tuple[int, ...] = (Version.V1, Version.V2)


def is_grease_version(version: int) -> bool:
    """True for the reserved versions 0x?a?a?a?a used to exercise negotiation (RFC 9000 §15)."""
    return version & 0x0F0F0F0F == 0x0A0A0A0A


class PacketType(IntEnum):
    """Packet kinds, independent of the version's on-wire long-header type bits."""

    INITIAL = 0
    ZERO_RTT = 1
    HANDSHAKE = 2
    RETRY = 3
    ONE_RTT = 4
    VERSION_NEGOTIATION = 5


class FrameType(IntEnum):
    """Frame types (RFC 9000 §19, §12.4 Table 3; RFC 9221 §4)."""

    PADDING = 0x00
    PING = 0x01
    ACK = 0x02
    ACK_ECN = 0x03
    RESET_STREAM = 0x04
    STOP_SENDING = 0x05
    CRYPTO = 0x06
    NEW_TOKEN = 0x07
    STREAM = 0x08  # 0x08..0x0f: OFF=0x04, LEN=0x02, FIN=0x01
    STREAM_MAX = 0x0F
    MAX_DATA = 0x10
    MAX_STREAM_DATA = 0x11
    MAX_STREAMS_BIDI = 0x12
    MAX_STREAMS_UNI = 0x13
    DATA_BLOCKED = 0x14
    STREAM_DATA_BLOCKED = 0x15
    STREAMS_BLOCKED_BIDI = 0x16
    STREAMS_BLOCKED_UNI = 0x17
    NEW_CONNECTION_ID = 0x18
    RETIRE_CONNECTION_ID = 0x19
    PATH_CHALLENGE = 0x1A
    PATH_RESPONSE = 0x1B
    CONNECTION_CLOSE = 0x1C
    CONNECTION_CLOSE_APP = 0x1D
    HANDSHAKE_DONE = 0x1E
    DATAGRAM = 0x30
    DATAGRAM_LEN = 0x31
    IMMEDIATE_ACK = 0x1F  # draft-ietf-quic-ack-frequency §5
    ACK_FREQUENCY = 0xAF  # draft-ietf-quic-ack-frequency §4


__all__ = [
    "SUPPORTED_VERSIONS",
    "FrameType",
    "PacketType",
    "TransportErrorCode",
    "Version",
    "is_grease_version",
]
