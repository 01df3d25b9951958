"""The sans-IO QUIC core: :class:`QuicConnection`, :class:`QuicEndpoint` and the events they report.

Nothing in this package does I/O or reads a clock: datagrams go in with the time they arrived, datagrams
come out, timers are queried. The names below are imported lazily so that importing one submodule
(``rudp.quic.sent``, say) does not pull in the whole connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rudp.quic import events
    from rudp.quic.connection import QuicConnection
    from rudp.quic.endpoint import QuicEndpoint
    from rudp.quic.stats import ConnectionStats

__all__ = ["ConnectionStats", "QuicConnection", "QuicEndpoint", "events"]


def __getattr__(name: str) -> Any:
    if name == "QuicConnection":
        from rudp.quic.connection import QuicConnection

        return QuicConnection
    if name == "QuicEndpoint":
        from rudp.quic.endpoint import QuicEndpoint

        return QuicEndpoint
    if name == "ConnectionStats":
        from rudp.quic.stats import ConnectionStats

        return ConnectionStats
    if name == "events":
        from rudp.quic import events

        return events
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
