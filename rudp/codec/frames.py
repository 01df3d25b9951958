"""QUIC frames as typed, immutable values (RFC 9000 §19, RFC 9221 §4).

One frozen dataclass per frame kind. Encoding and decoding live in :mod:`rudp.codec.frame_codec`; the
rules about which packet types may carry which frames are data there too.
"""

from __future__ import annotations

from dataclasses import dataclass

AckRange = tuple[int, int]
"""An inclusive range of packet numbers ``(smallest, largest)``."""


@dataclass(frozen=True, slots=True)
class Padding:
    """PADDING (§19.1); consecutive padding bytes decode as one frame of ``length`` bytes."""

    length: int = 1


@dataclass(frozen=True, slots=True)
class Ping:
    """PING (§19.2): ack-eliciting, carries nothing."""


@dataclass(frozen=True, slots=True)
class Ack:
    """ACK / ACK_ECN (§19.3).

    ``ranges`` are inclusive ``(smallest, largest)`` pairs in descending order without overlap or
    adjacency (the first one holds the largest acknowledged). ``ack_delay`` is the raw field value;
    multiply by 2**ack_delay_exponent microseconds for the delay. ``ecn`` is (ECT0, ECT1, ECN-CE) counts
    for the ACK_ECN variant, else None.
    """

    ranges: tuple[AckRange, ...]
    ack_delay: int = 0
    ecn: tuple[int, int, int] | None = None

    @property
    def largest(self) -> int:
        """The largest acknowledged packet number."""
        return self.ranges[0][1]


@dataclass(frozen=True, slots=True)
class ResetStream:
    """RESET_STREAM (§19.4)."""

    stream_id: int
    error_code: int
    final_size: int


@dataclass(frozen=True, slots=True)
class StopSending:
    """STOP_SENDING (§19.5)."""

    stream_id: int
    error_code: int


@dataclass(frozen=True, slots=True)
class Crypto:
    """CRYPTO (§19.6): handshake bytes at ``offset`` of the level's crypto stream."""

    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class NewToken:
    """NEW_TOKEN (§19.7): a token for address validation on a future connection."""

    token: bytes


@dataclass(frozen=True, slots=True)
class Stream:
    """STREAM (§19.8). Encoded with the OFF bit when ``offset`` > 0.

    ``explicit_length`` selects the LEN bit; a frame without it extends to the end of the packet, so only
    the last frame of a packet may omit it.
    """

    stream_id: int
    offset: int
    data: bytes
    fin: bool = False
    explicit_length: bool = True


@dataclass(frozen=True, slots=True)
class MaxData:
    """MAX_DATA (§19.9)."""

    maximum: int


@dataclass(frozen=True, slots=True)
class MaxStreamData:
    """MAX_STREAM_DATA (§19.10)."""

    stream_id: int
    maximum: int


@dataclass(frozen=True, slots=True)
class MaxStreams:
    """MAX_STREAMS (§19.11), bidirectional (0x12) or unidirectional (0x13)."""

    bidirectional: bool
    maximum: int


@dataclass(frozen=True, slots=True)
class DataBlocked:
    """DATA_BLOCKED (§19.12)."""

    limit: int


@dataclass(frozen=True, slots=True)
class StreamDataBlocked:
    """STREAM_DATA_BLOCKED (§19.13)."""

    stream_id: int
    limit: int


@dataclass(frozen=True, slots=True)
class StreamsBlocked:
    """STREAMS_BLOCKED (§19.14), bidirectional (0x16) or unidirectional (0x17)."""

    bidirectional: bool
    limit: int


@dataclass(frozen=True, slots=True)
class NewConnectionId:
    """NEW_CONNECTION_ID (§19.15)."""

    sequence: int
    retire_prior_to: int
    connection_id: bytes
    stateless_reset_token: bytes


@dataclass(frozen=True, slots=True)
class RetireConnectionId:
    """RETIRE_CONNECTION_ID (§19.16)."""

    sequence: int


@dataclass(frozen=True, slots=True)
class PathChallenge:
    """PATH_CHALLENGE (§19.17): 8 bytes of unpredictable data."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PathResponse:
    """PATH_RESPONSE (§19.18): echoes a challenge's 8 bytes."""

    data: bytes


@dataclass(frozen=True, slots=True)
class ConnectionClose:
    """CONNECTION_CLOSE (§19.19).

    The transport variant (0x1c) has ``application`` False and carries the ``frame_type`` that caused
    the error (0 when unknown); the application variant (0x1d) has ``application`` True and no frame
    type. ``reason`` is the UTF-8 reason phrase as bytes (decoding is left to the user: it may be
    invalid UTF-8 from a misbehaving peer).
    """

    error_code: int
    reason: bytes = b""
    frame_type: int = 0
    application: bool = False


@dataclass(frozen=True, slots=True)
class HandshakeDone:
    """HANDSHAKE_DONE (§19.20): sent by the server once the handshake is confirmed."""


@dataclass(frozen=True, slots=True)
class Datagram:
    """DATAGRAM (RFC 9221 §4): 0x31 with a Length field, 0x30 extending to the end of the packet."""

    data: bytes
    explicit_length: bool = True


@dataclass(frozen=True, slots=True)
class AckFrequency:
    """ACK_FREQUENCY (draft-ietf-quic-ack-frequency §4): how the sender wants to be acknowledged."""

    sequence: int
    """Orders the frames: a receiver ignores one not above the largest it processed."""
    ack_eliciting_threshold: int
    """Ack-eliciting packets the receiver may get without acknowledging (an ACK after one more)."""
    request_max_ack_delay: int
    """The max_ack_delay the receiver should use, in microseconds."""
    reordering_threshold: int
    """Out-of-order distance that triggers an immediate ACK (0: never for reordering alone)."""


@dataclass(frozen=True, slots=True)
class ImmediateAck:
    """IMMEDIATE_ACK (draft-ietf-quic-ack-frequency §5): acknowledge this packet without delay."""


Frame = (
    Padding
    | Ping
    | Ack
    | ResetStream
    | StopSending
    | Crypto
    | NewToken
    | Stream
    | MaxData
    | MaxStreamData
    | MaxStreams
    | DataBlocked
    | StreamDataBlocked
    | StreamsBlocked
    | NewConnectionId
    | RetireConnectionId
    | PathChallenge
    | PathResponse
    | ConnectionClose
    | HandshakeDone
    | Datagram
    | AckFrequency
    | ImmediateAck
)
"""Any frame value."""
