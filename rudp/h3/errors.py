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
    H3_DATAGRAM_ERROR = 0x33
    """RFC 9297 §2.1: a malformed HTTP/3 Datagram, or one on a request without datagram semantics."""
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


class HeadersTooLarge(H3Error):
    """A header (or trailer) section larger than a MAX_FIELD_SECTION_SIZE (RFC 9114 §4.2.2), code
    H3_EXCESSIVE_LOAD: raised before sending when it exceeds the peer's limit (nothing was sent), or
    when a received section exceeds ours (a server answers such a request with 431, RFC 9114 §10.5.1).
    """

    def __init__(self, size: int, limit: int, stream_id: int, *, by_peer: bool = False, ours: bool) -> None:
        self.size = size
        self.limit = limit
        self.undecoded = False
        """True when the section was refused by its encoded size, before QPACK decoded it."""
        whose = "our" if ours else "the peer's"
        super().__init__(
            H3ErrorCode.H3_EXCESSIVE_LOAD,
            f"a header section of {size} bytes exceeds {whose} MAX_FIELD_SECTION_SIZE of {limit}",
            stream_id=stream_id,
            by_peer=by_peer,
        )


class NotNegotiated(RudpError):
    """An HTTP/3 extension the peer (or this side) did not enable in SETTINGS, raised before anything
    is sent: HTTP Datagrams need SETTINGS_H3_DATAGRAM=1 from both (RFC 9297 §2.1.1) and QUIC datagrams
    (``Config.datagrams``); a client sends extended CONNECT only after the server's
    SETTINGS_ENABLE_CONNECT_PROTOCOL=1 (RFC 9220 §3, RFC 8441 §3).

    Attributes:
        setting: the SETTINGS identifier that is missing (0x33 or 0x08).
    """

    def __init__(self, setting: int, reason: str) -> None:
        self.setting = setting
        super().__init__(reason)


class TunnelRefused(RudpError):
    """The server answered a CONNECT request with a status other than 2xx (RFC 9110 §9.3.6): no
    tunnel. ``status`` and ``headers`` are the response's; ``body`` its content (at most 64 KiB)."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        super().__init__(f"the server refused the CONNECT request with status {status}")


__all__ = ["H3Error", "H3ErrorCode", "HeadersTooLarge", "NotNegotiated", "TunnelRefused", "error_name"]
