"""Test tools for rudp and for code built on it: a virtual clock and a deterministic network simulator.

:class:`Pair` drives two sans-IO endpoints (anything with the :class:`SimEndpoint` methods) through two
impaired :class:`Link` directions on a :class:`VirtualClock`: no sockets, no sleeping, and the same
seeds always give the same run.

:class:`~rudp.testing.relay.UdpRelay` (an asyncio UDP impairment relay for real sockets) lives in
:mod:`rudp.testing.relay`; it is importable from here too, lazily, so that importing this package does not
import asyncio.
"""

from __future__ import annotations

from typing import Any

from rudp.testing.clock import VirtualClock
from rudp.testing.link import (
    Addr,
    BurstLoss,
    Datagram,
    DropCause,
    DropRange,
    GilbertElliott,
    Link,
    LinkConfig,
    LinkStats,
    TraceCallback,
    TraceEvent,
)
from rudp.testing.netsim import Pair, SimEndpoint, SimulationError, TimerLoopError

__all__ = [
    "Addr",
    "BurstLoss",
    "Datagram",
    "DropCause",
    "DropRange",
    "GilbertElliott",
    "Link",
    "LinkConfig",
    "LinkStats",
    "Pair",
    "SimEndpoint",
    "SimulationError",
    "TimerLoopError",
    "TraceCallback",
    "TraceEvent",
    "VirtualClock",
]


def __getattr__(name: str) -> Any:
    if name == "UdpRelay":
        from rudp.testing.relay import UdpRelay

        return UdpRelay
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
