"""A path on virtual time for driving :class:`~rudp.quic.recovery.LossRecovery` with a real controller.

The sender sends max-size Application packets whenever ``recovery.can_send`` allows and the
application has data (``app_packets_per_rtt`` limits it; it then reports the application-limited
period with ``recovery.on_app_limited()``, as the connection does). Each packet reaches the receiver
``rtt / 2`` after it was sent unless ``drop`` says so; ``hold_until_after[pn] = k`` delivers packet
``pn`` just after packet ``pn + k`` (reordering by ``k`` packets). A bottleneck of ``rate`` bytes/s
(unlimited queue) spaces the arrivals, so the ACK clock is as smooth as on a real path. The receiver
acknowledges every packet at once, with the ranges of the last 256 packet numbers it received, and
the ACK arrives ``rtt / 2`` later. The loss detection timer runs; PTO probes ignore the window.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from rudp.codec.frames import Ack
from rudp.quic.congestion.base import CongestionController
from rudp.quic.recovery import LossRecovery
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace, SentPacket

MDS = 1200
APP = PacketSpace.APPLICATION


class SimPath:
    def __init__(
        self,
        cc: CongestionController,
        *,
        rtt: float = 0.04,
        drop: Callable[[int, float], bool] | None = None,
        app_packets_per_rtt: int | None = None,
        rate: float = 1_500_000.0,
    ) -> None:
        self.cc = cc
        self.rtt = rtt
        self.recovery = LossRecovery(cc, RttEstimator(), max_ack_delay=0.0, is_client=False)
        self.recovery.set_handshake_confirmed()
        self.drop = drop or (lambda pn, at: False)
        self.app_packets_per_rtt = app_packets_per_rtt
        self.service = MDS / rate  # the bottleneck serialises packets (an unlimited FIFO queue before it)
        self._link_free_at = 0.0
        self.hold_until_after: dict[int, int] = {}
        self.now = 0.0
        self.next_pn = 0
        self.sent_log: list[tuple[float, int]] = []  # (time, packet number)
        self.ack_log: list[tuple[float, int]] = []  # (time, bytes newly acknowledged)
        self._events: list[tuple[float, int, str, int]] = []
        self._seq = 0
        self._received: set[int] = set()
        self._acks: dict[int, tuple[tuple[int, int], ...]] = {}
        self._held: dict[int, int] = {}  # trigger packet number -> held packet number
        self._app_credit = 0.0
        self._app_refill_at = 0.0

    def _push(self, at: float, kind: str, pn: int) -> None:
        self._seq += 1
        heapq.heappush(self._events, (at, self._seq, kind, pn))

    def _send(self) -> None:
        budget = self.app_packets_per_rtt
        if budget is not None and self.now >= self._app_refill_at:
            self._app_credit = budget
            self._app_refill_at = self.now + self.rtt
        while self.recovery.can_send(MDS):
            if budget is not None and self._app_credit < 1:
                self.recovery.on_app_limited()  # nothing more to send: the application limits us
                return
            self._send_one()
            if budget is not None:
                self._app_credit -= 1

    def _send_one(self) -> None:
        pn = self.next_pn
        self.next_pn += 1
        self.recovery.on_packet_sent(SentPacket(pn, APP, self.now, MDS, True, True))
        self.sent_log.append((self.now, pn))
        if self.drop(pn, self.now):
            return
        if pn in self.hold_until_after:
            self._held[pn + self.hold_until_after.pop(pn)] = pn
            return
        self._link_free_at = max(self.now, self._link_free_at) + self.service
        self._push(self._link_free_at + self.rtt / 2, "arrive", pn)

    def _arrive(self, pn: int) -> None:
        self._received.add(pn)
        self._acks[pn] = self._ranges(pn)  # the ACK frame as the receiver sends it now
        self._push(self.now + self.rtt / 2, "ack", pn)
        held = self._held.pop(pn, None)
        if held is not None:
            self._arrive(held)  # the reordered packet arrives right after the one it waited for

    def _ranges(self, newest: int) -> tuple[tuple[int, int], ...]:
        numbers = [pn for pn in range(newest, max(newest - 256, -1), -1) if pn in self._received]
        ranges: list[tuple[int, int]] = []
        for pn in numbers:
            if ranges and ranges[-1][0] == pn + 1:
                ranges[-1] = (pn, ranges[-1][1])
            else:
                ranges.append((pn, pn))
        return tuple(ranges)

    def _ack(self, newest: int) -> None:
        ack = Ack(ranges=self._acks.pop(newest), ack_delay=0)
        acked = self.recovery.on_ack_received(APP, ack, 0.0, self.now)
        if acked:
            self.ack_log.append((self.now, sum(p.size_bytes for p in acked)))

    def run(self, until: float, *, each_event: Callable[[], None] | None = None) -> None:
        self._send()
        while self.now < until:
            deadline = self.recovery.loss_detection_deadline()
            next_event = self._events[0][0] if self._events else None
            if deadline is not None and (next_event is None or deadline < next_event):
                self.now = max(self.now, deadline)
                probe = self.recovery.on_loss_detection_timeout(self.now)
                for _ in range(probe.count if probe is not None else 0):
                    self._send_one()  # RFC 9002 §7.5: probes ignore the window
            elif next_event is not None:
                at, _, kind, pn = heapq.heappop(self._events)
                self.now = at
                if kind == "arrive":
                    self._arrive(pn)
                else:
                    self._ack(pn)
            else:
                self.now = self._app_refill_at if self._app_refill_at > self.now else until
            self._send()
            if each_event is not None:
                each_event()
