"""MuxPair: a client and a server TcpMux wired back to back in memory, on a virtual clock.

``drive()`` moves bytes both ways until neither side has anything to send, advancing the clock by
``delay`` per hop, and collects each side's events. Optional ``on_idle`` hooks play the application.
"""

from __future__ import annotations

from collections.abc import Callable

from rudp.config import Config
from rudp.quic.events import Event
from rudp.tcp import TcpMux


class MuxPair:
    """Two muxes and the events each produced so far."""

    def __init__(
        self,
        client_config: Config | None = None,
        server_config: Config | None = None,
        *,
        delay: float = 0.01,
        max_bytes: int | None = None,
    ) -> None:
        self.now = 0.0
        self.delay = delay
        self.max_bytes = max_bytes
        self.client = TcpMux(client_config or Config(), is_client=True, now=0.0, alpn_protocol="hq-interop")
        self.server = TcpMux(server_config or Config(), is_client=False, now=0.0, alpn_protocol="hq-interop")
        self.client_events: list[Event] = []
        self.server_events: list[Event] = []
        self.wire_bytes = 0

    def events(self, mux: TcpMux) -> list[Event]:
        """Every event ``mux`` produced so far (collected by :meth:`collect`)."""
        self.collect()
        return self.client_events if mux is self.client else self.server_events

    def collect(self) -> None:
        """Pull pending events of both sides into the lists."""
        for mux, events in ((self.client, self.client_events), (self.server, self.server_events)):
            while (event := mux.next_event()) is not None:
                events.append(event)

    def step(self) -> bool:
        """One hop each way; True if any bytes moved."""
        moved = False
        for sender, receiver in ((self.client, self.server), (self.server, self.client)):
            data = sender.data_to_send(self.now, max_bytes=self.max_bytes)
            if data:
                moved = True
                self.wire_bytes += len(data)
                self.now += self.delay
                receiver.receive_data(data, self.now)
        self.collect()
        return moved

    def drive(self, on_step: Callable[[MuxPair], object] | None = None, max_steps: int = 100_000) -> None:
        """Step until idle: no bytes moved and ``on_step`` (called after each step) returned falsy."""
        for _ in range(max_steps):
            moved = self.step()
            if on_step is not None:
                busy = on_step(self)
                moved = self.step() or moved or bool(busy)
            if not moved:
                return
        raise AssertionError("the pair did not go idle")


def of_type(events: list[Event], kind: type) -> list[Event]:
    """The events of one class."""
    return [e for e in events if isinstance(e, kind)]
