"""QUIC streams (RFC 9000 §2-4): IDs, send/receive state machines, reassembly and the manager.

The connection uses :class:`StreamManager`; the other modules are its parts.
"""

from __future__ import annotations

from rudp.quic.streams.manager import StreamManager, StreamStats
from rudp.quic.streams.recv import RecvState
from rudp.quic.streams.send import SendState

__all__ = ["RecvState", "SendState", "StreamManager", "StreamStats"]
