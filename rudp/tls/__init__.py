"""TLS 1.3 for QUIC on ``cryptography`` primitives: sans-IO client and server handshake engines.

QUIC feeds CRYPTO bytes per encryption level into :class:`TlsClient`/:class:`TlsServer` and gets
back handshake bytes per level and :class:`KeyEvent` secrets to install (RFC 9001 §4). Failures raise
:class:`rudp.errors.TLSAlert` (CRYPTO_ERROR 0x100 + alert).
"""

from __future__ import annotations

from rudp.errors import TLSAlert
from rudp.tls.alerts import AlertDescription
from rudp.tls.certs import SignatureScheme
from rudp.tls.client import TlsClient
from rudp.tls.config import TlsConfig
from rudp.tls.engine import Direction, EncryptionLevel, KeyEvent, TlsEngine
from rudp.tls.extensions import NamedGroup
from rudp.tls.keylog import keylog_file
from rudp.tls.server import TlsServer
from rudp.tls.tickets import ReplayCache, SessionTicket, TicketStore

__all__ = [
    "AlertDescription",
    "Direction",
    "EncryptionLevel",
    "KeyEvent",
    "NamedGroup",
    "ReplayCache",
    "SessionTicket",
    "SignatureScheme",
    "TLSAlert",
    "TicketStore",
    "TlsClient",
    "TlsConfig",
    "TlsEngine",
    "TlsServer",
    "keylog_file",
]
