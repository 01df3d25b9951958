"""rudp: a pure-Python QUIC v1 transport for asyncio, with a TCP+TLS baseline mode.

The public surface is re-exported here; everything else is an implementation detail.
"""

from rudp._version import __version__
from rudp.errors import (
    ConfigError,
    ConnectionClosed,
    ConnectTimeout,
    DecodeError,
    HandshakeFailed,
    RudpError,
    StreamError,
    StreamLimitReached,
    StreamReset,
    StreamStateError,
    StreamStopped,
    TLSAlert,
    TransportError,
    TransportErrorCode,
)

__all__ = [
    "ConfigError",
    "ConnectTimeout",
    "ConnectionClosed",
    "DecodeError",
    "HandshakeFailed",
    "RudpError",
    "StreamError",
    "StreamLimitReached",
    "StreamReset",
    "StreamStateError",
    "StreamStopped",
    "TLSAlert",
    "TransportError",
    "TransportErrorCode",
    "__version__",
]
