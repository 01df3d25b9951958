"""The TCP mux's receive path: bytes -> frames -> the subsystem that owns each frame kind.

Owns :class:`Receiver`: the frame decoder, the rule that HELLO comes first and once (and its checks:
version, limits at or above the floors), the counters of bytes received, and :data:`ROUTES`, the one
table from frame class to the handler of its owner (streams, stream counts, pings, datagrams, the
lifecycle). Violations raise :class:`~rudp.errors.TransportError`;
:meth:`rudp.tcp.mux.TcpMux.receive_data` turns them into a CLOSE. It writes no other object's state:
each owner applies its frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from rudp.errors import TransportError
from rudp.errors import TransportErrorCode as Code
from rudp.quic.events import ConnectionTerminated
from rudp.tcp.framing import (
    PROTOCOL_VERSION,
    Close,
    Credit,
    Data,
    Datagram,
    Frame,
    FrameDecoder,
    FrameKind,
    Hello,
    MaxStreams,
    Ping,
    Pong,
    Reset,
    Stop,
    frame_kind,
)
from rudp.tcp.limits import MAX_STREAM_COUNT, STREAM_COUNT_FLOOR, StreamCounts
from rudp.tcp.liveness import Liveness, Pings
from rudp.tcp.output import Datagrams
from rudp.tcp.state import Lifecycle
from rudp.tcp.table import STREAM_WINDOW_FLOOR, StreamTable


@dataclass(frozen=True, slots=True)
class Owners:
    """The subsystems that apply the peer's frames."""

    lifecycle: Lifecycle
    streams: StreamTable
    counts: StreamCounts
    pings: Pings
    liveness: Liveness
    datagrams: Datagrams


def _on_close(owners: Owners, frame: Close, now: float) -> None:
    cause = ConnectionTerminated(frame.error_code, frame.reason, True, frame.application, frame.frame_kind)
    owners.lifecycle.end(cause)
    owners.streams.stop_output()


ROUTES: Final[dict[type[Any], Callable[[Owners, Any, float], None]]] = {
    Data: lambda o, f, now: o.streams.on_data(f),
    Reset: lambda o, f, now: o.streams.on_reset(f),
    Stop: lambda o, f, now: o.streams.on_stop(f),
    Credit: lambda o, f, now: o.streams.on_credit(f),
    MaxStreams: lambda o, f, now: o.counts.on_max_streams(f),
    Ping: lambda o, f, now: o.pings.on_ping(f),
    Pong: lambda o, f, now: o.pings.on_pong(f, now),
    Datagram: lambda o, f, now: o.datagrams.on_datagram(f),
    Close: _on_close,
}
"""Frame class -> the handler of the subsystem that owns it (HELLO is the receiver's own)."""


class Receiver:
    """Decodes the peer's bytes and routes each frame to its owner."""

    __slots__ = ("_decoder", "_hello_seen", "_owners", "bytes_received", "reads")

    def __init__(self, owners: Owners) -> None:
        self._owners = owners
        self._decoder = FrameDecoder()
        self._hello_seen = False
        self.reads = 0
        """Non-empty inputs received from the transport."""
        self.bytes_received = 0
        """Mux bytes received (after TLS)."""

    def receive(self, data: bytes | bytearray | memoryview, now: float) -> None:
        """Apply the frames in ``data`` (any split), received at ``now``; stop once the connection ends.

        Raises:
            TransportError: a frame is malformed or breaks a protocol rule.
        """
        owners = self._owners
        owners.liveness.on_received(now)
        self.reads += 1
        self.bytes_received += len(data)
        for frame in self._decoder.feed(data):
            self._on_frame(frame, now)
            if owners.lifecycle.dead:
                return

    def _on_frame(self, frame: Frame, now: float) -> None:
        if not self._hello_seen:
            if not isinstance(frame, Hello):
                raise TransportError(
                    Code.PROTOCOL_VIOLATION, "the first frame must be HELLO", frame_kind(frame)
                )
            self._on_hello(frame)
            return
        route = ROUTES.get(type(frame))
        if route is None:
            raise TransportError(Code.PROTOCOL_VIOLATION, "HELLO sent twice", FrameKind.HELLO)
        route(self._owners, frame, now)

    def _on_hello(self, hello: Hello) -> None:
        if hello.version != PROTOCOL_VERSION:
            raise TransportError(
                Code.PROTOCOL_VIOLATION, f"unsupported version {hello.version}", FrameKind.HELLO
            )
        too_low = (
            hello.stream_window < STREAM_WINDOW_FLOOR
            or min(hello.max_streams_bidi, hello.max_streams_uni) < STREAM_COUNT_FLOOR
        )
        if too_low or max(hello.max_streams_bidi, hello.max_streams_uni) > MAX_STREAM_COUNT:
            raise TransportError(
                Code.PROTOCOL_VIOLATION, "HELLO limits outside the allowed range", FrameKind.HELLO
            )
        self._hello_seen = True
        owners = self._owners
        owners.streams.on_peer_hello(hello.stream_window)
        owners.counts.raise_local_limit(True, hello.max_streams_bidi)
        owners.counts.raise_local_limit(False, hello.max_streams_uni)
        owners.datagrams.on_peer_hello(hello.max_datagram_bytes)
        owners.liveness.on_peer_hello(hello.idle_timeout_ms)


__all__ = ["ROUTES", "Owners", "Receiver"]
