"""rudp: a pure-Python QUIC v1 transport for asyncio, with a TCP+TLS baseline mode.

The public surface is re-exported here; everything else is an implementation detail. Power users import
the sans-IO core from :mod:`rudp.quic` and the testing tools from :mod:`rudp.testing`.
"""

from rudp import messages
from rudp._api import connect, open_connection, serve, start_server
from rudp._version import __version__
from rudp.aio.connection import Connection
from rudp.aio.resolution import NameResolutionError
from rudp.aio.server import Server
from rudp.aio.stream import Stream
from rudp.config import Config
from rudp.errors import (
    ConfigError,
    ConnectionClosed,
    ConnectionRefused,
    ConnectTimeout,
    DatagramError,
    DecodeError,
    HandshakeFailed,
    MigrationDisabled,
    NetworkError,
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
from rudp.quic.congestion import CongestionController, register_congestion_controller
from rudp.quic.stats import ConnectionStats
from rudp.tls.tickets import TicketStore

__all__ = [
    "Config",
    "ConfigError",
    "CongestionController",
    "ConnectTimeout",
    "Connection",
    "ConnectionClosed",
    "ConnectionRefused",
    "ConnectionStats",
    "DatagramError",
    "DecodeError",
    "HandshakeFailed",
    "MigrationDisabled",
    "NameResolutionError",
    "NetworkError",
    "RudpError",
    "Server",
    "Stream",
    "StreamError",
    "StreamLimitReached",
    "StreamReset",
    "StreamStateError",
    "StreamStopped",
    "TLSAlert",
    "TicketStore",
    "TransportError",
    "TransportErrorCode",
    "__version__",
    "connect",
    "messages",
    "open_connection",
    "register_congestion_controller",
    "serve",
    "start_server",
]
