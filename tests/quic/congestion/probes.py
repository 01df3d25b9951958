"""Controller subclasses that record what the connection made them do, and a factory that keeps them."""

from __future__ import annotations

from rudp.quic.congestion import Cubic, NewReno
from rudp.quic.congestion.base import BaseCongestionController
from rudp.quic.sent import SentPacket


class ProbeNewReno(NewReno):
    """NewReno that records each window cut ``(before, after)`` and each collapse."""

    def __init__(self, max_datagram_size: int = 1200) -> None:
        super().__init__(max_datagram_size)
        self.cuts: list[tuple[int, int]] = []
        self.collapses: list[int] = []

    def on_packets_lost(self, packets: list[SentPacket], now: float) -> None:
        before = self.congestion_window
        super().on_packets_lost(packets, now)
        if self.congestion_window != before:
            self.cuts.append((before, self.congestion_window))

    def on_persistent_congestion(self, now: float) -> None:
        super().on_persistent_congestion(now)
        self.collapses.append(self.congestion_window)


class ProbeCubic(Cubic):
    """CUBIC that records each window cut ``(before, after)`` and each collapse."""

    def __init__(self, max_datagram_size: int = 1200) -> None:
        super().__init__(max_datagram_size)
        self.cuts: list[tuple[int, int]] = []
        self.collapses: list[int] = []

    def on_packets_lost(self, packets: list[SentPacket], now: float) -> None:
        before = self.congestion_window
        super().on_packets_lost(packets, now)
        if self.congestion_window != before:
            self.cuts.append((before, self.congestion_window))

    def on_persistent_congestion(self, now: float) -> None:
        super().on_persistent_congestion(now)
        self.collapses.append(self.congestion_window)


PROBES: dict[str, tuple[type[ProbeNewReno | ProbeCubic], float]] = {
    "newreno": (ProbeNewReno, 0.5),
    "cubic": (ProbeCubic, 0.7),
}


class Keeper:
    """A congestion factory (``Config(congestion=keeper)``) that keeps every controller it builds."""

    def __init__(self, cls: type[BaseCongestionController]) -> None:
        self.cls = cls
        self.built: list[BaseCongestionController] = []

    def __call__(self, max_datagram_size: int) -> BaseCongestionController:
        controller = self.cls(max_datagram_size)
        self.built.append(controller)
        return controller

    @property
    def last(self) -> BaseCongestionController:
        return self.built[-1]
