"""The TCP baseline's sans-IO core: QUIC's stream API multiplexed over one TLS-over-TCP connection.

:class:`TcpMux` offers the same commands and events as :class:`rudp.quic.QuicConnection` (the
``StreamCore`` contract), with bytes in and out instead of datagrams; :mod:`rudp.tcp.framing` is its wire
format. Like the QUIC core, nothing here imports asyncio, socket or time: :mod:`rudp.aio.tcp` does the I/O.
"""

from __future__ import annotations

from rudp.tcp.framing import FrameDecoder, FrameKind, decode_frame, encode_frame
from rudp.tcp.mux import CHUNK_BYTES, LOST_CODE, STREAM_COUNT_FLOOR, STREAM_WINDOW_FLOOR, TcpMux

__all__ = [
    "CHUNK_BYTES",
    "LOST_CODE",
    "STREAM_COUNT_FLOOR",
    "STREAM_WINDOW_FLOOR",
    "FrameDecoder",
    "FrameKind",
    "TcpMux",
    "decode_frame",
    "encode_frame",
]
