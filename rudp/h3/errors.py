"""HTTP/3 and QPACK error codes (RFC 9114 §8.1, RFC 9204 §6) and :class:`H3Error`.

An HTTP/3 error is either a *connection error* (the whole QUIC connection is closed with the code as
its application error code, RFC 9114 §8) or a *stream error* (the one request stream is reset and
stopped with the code, other requests carry on).
"""

from __future__ import annotations

from enum import IntEnum

from rudp.errors import RudpError


class H3ErrorCode(IntEnum):
    """Application error codes of HTTP/3 (RFC 9114 §8.1) and QPACK (RFC 9204 §6)."""

    H3_NO_ERROR = 0x0100
    H3_GENERAL_PROTOCOL_ERROR = 0x0101
    H3_INTERNAL_ERROR = 0x0102
    H3_STREAM_CREATION_ERROR = 0x0103
    H3_CLOSED_CRITICAL_STREAM = 0x0104
    H3_FRAME_UNEXPECTED = 0x0105
    H3_FRAME_ERROR = 0x0106
    H3_EXCESSIVE_LOAD = 0x0107
    H3_ID_ERROR = 0x0108
    H3_SETTINGS_ERROR = 0x0109
    H3_MISSING_SETTINGS = 0x010A
    H3_REQUEST_REJECTED = 0x010B
    H3_REQUEST_CANCELLED = 0x010C
    H3_REQUEST_INCOMPLETE = 0x010D
    H3_MESSAGE_ERROR = 0x010E
    H3_CONNECT_ERROR = 0x010F
    H3_VERSION_FALLBACK = 0x0110
    QPACK_DECOMPRESSION_FAILED = 0x0200
    QPACK_ENCODER_STREAM_ERROR = 0x0201
    QPACK_DECODER_STREAM_ERROR = 0x0202


def error_name(code: int) -> str:
    """``0x105`` -> ``"H3_FRAME_UNEXPECTED"``; unknown codes (reserved, greased) as hex."""
    try:
        return H3ErrorCode(code).name
    except ValueError:
        return f"{code:#x}"


class H3Error(RudpError):
    """An HTTP/3 failure carrying its RFC 9114 §8.1 (or RFC 9204 §6) error code.

    Attributes:
        code: the HTTP/3 application error code (an :class:`H3ErrorCode` value when known).
        reason: what went wrong, in words.
        stream_id: the request stream for a stream error; None for a connection error.
        by_peer: True when the peer reported the error (it reset our stream or closed the connection).
    """

    def __init__(
        self, code: int, reason: str = "", *, stream_id: int | None = None, by_peer: bool = False
    ) -> None:
        self.code = int(code)
        self.reason = reason
        self.stream_id = stream_id
        self.by_peer = by_peer
        where = "connection" if stream_id is None else f"stream {stream_id}"
        who = "the peer reported " if by_peer else ""
        text = f"HTTP/3 {where} error: {who}{error_name(self.code)} ({self.code:#x})"
        super().__init__(f"{text}: {reason}" if reason else text)

    @property
    def is_connection_error(self) -> bool:
        """True when the error closes the whole connection, False for one request stream."""
        return self.stream_id is None


__all__ = ["H3Error", "H3ErrorCode", "error_name"]
