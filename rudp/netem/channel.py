"""The per-direction impairment engine: decide each packet's fate and delivery time.

A :class:`Channel` is sans-IO: it is fed a packet size and the current time and answers whether the
packet is dropped (and why), whether it is corrupted, and when each copy must be delivered. It never
holds packets; the caller (the namespace forwarder or the loopback relay) schedules the deliveries. It
updates a :class:`~rudp.netem.stats.DirectionStats` as it goes. Randomness comes from an injected
`random.Random`, so runs with the same seed and the same arrival times decide the same way.
"""

from __future__ import annotations

import random
from collections import deque
from typing import NamedTuple

from rudp.netem.impairments import Impairments
from rudp.netem.stats import DirectionStats


class Verdict(NamedTuple):
    """The fate of one packet: a drop cause, or the delivery time of each copy (two when duplicated)."""

    cause: str | None
    deliver_at: tuple[float, ...]
    corrupt: bool


class Channel:
    """Apply one direction's :class:`Impairments` to a stream of packets.

    Call :meth:`process` once per packet in arrival order with a non-decreasing `now`.
    """

    def __init__(
        self, impairments: Impairments, stats: DirectionStats, rng: random.Random, now: float
    ) -> None:
        self.stats = stats
        self._rng = rng
        self._imp = impairments
        self._origin_at = now
        self._origin_count = 0
        self._count = 0
        self._ge_bad = False
        self._burst_left = 0
        self._link_free_at = 0.0
        self._queue: deque[tuple[float, int]] = deque()
        self._queued_bytes = 0
        self._last_deliver_at = 0.0

    @property
    def impairments(self) -> Impairments:
        """The settings in force."""
        return self._imp

    def configure(self, impairments: Impairments, now: float, restart_schedules: bool = True) -> None:
        """Switch to new settings. Packets already scheduled keep their delivery times.

        With `restart_schedules`, blackhole periods and the drop list count from `now` and from the
        next packet.
        """
        self._imp = impairments
        if restart_schedules:
            self._origin_at = now
            self._origin_count = self._count

    def _lost(self, imp: Impairments, now: float) -> str | None:
        """The drop cause decided before queueing, or None."""
        index = self._count - self._origin_count
        if imp.drop_list and index in imp.drop_list:
            return "drop_list"
        if imp.blackhole:
            return "blackhole"
        if imp.blackhole_periods:
            t = now - self._origin_at
            for start, end in imp.blackhole_periods:
                if start <= t < end:
                    return "blackhole"
        rng = self._rng
        if imp.loss and rng.random() < imp.loss:
            return "loss"
        ge = imp.gilbert_elliott
        if ge is not None:
            if self._ge_bad:
                if rng.random() < ge.r:
                    self._ge_bad = False
            elif rng.random() < ge.p:
                self._ge_bad = True
            if rng.random() < (ge.loss_bad if self._ge_bad else ge.loss_good):
                return "burst"
        burst = imp.burst
        if burst is not None:
            if self._burst_left > 0:
                self._burst_left -= 1
                return "burst"
            if rng.random() < burst.rate:
                self._burst_left = rng.randint(burst.min_length, burst.max_length) - 1
                return "burst"
        return None

    def _enqueue(self, imp: Impairments, rate_bps: float, size: int, now: float) -> float | None:
        """Put a packet in the bottleneck queue; return its departure time or None for a tail drop."""
        queue = self._queue
        while queue and queue[0][0] <= now:
            self._queued_bytes -= queue.popleft()[1]
        if (imp.queue_packets is not None and len(queue) >= imp.queue_packets) or (
            imp.queue_bytes is not None and self._queued_bytes + size > imp.queue_bytes
        ):
            return None
        start = self._link_free_at if self._link_free_at > now else now
        departure = start + size * 8.0 / rate_bps
        self._link_free_at = departure
        queue.append((departure, size))
        self._queued_bytes += size
        if self._queued_bytes > self.stats.queue_peak_bytes:
            self.stats.queue_peak_bytes = self._queued_bytes
        return departure

    def _schedule(self, imp: Impairments, sent_at: float) -> float:
        """The delivery time of a packet leaving the bottleneck at `sent_at`."""
        at = sent_at + imp.delay
        if imp.jitter:
            at += self._rng.uniform(-imp.jitter, imp.jitter)
            if at < sent_at:
                at = sent_at
        if imp.reorder and self._rng.random() < imp.reorder:
            self.stats.reordered += 1
            return at + imp.reorder_delay
        if not imp.jitter_reorders and at < self._last_deliver_at:
            at = self._last_deliver_at
        self._last_deliver_at = at
        return at

    def process(self, size: int, now: float) -> Verdict:
        """Decide the fate of the next packet of `size` bytes arriving at `now`."""
        stats = self.stats
        stats.received_packets += 1
        stats.received_bytes += size
        self._count += 1
        imp = self._imp
        cause = self._lost(imp, now)
        if cause is not None:
            stats.drop(cause, size)
            return Verdict(cause, (), False)
        copies = 1
        if imp.duplicate and self._rng.random() < imp.duplicate:
            copies = 2
            stats.duplicated += 1
        corrupt = bool(imp.corrupt) and self._rng.random() < imp.corrupt
        if corrupt:
            stats.corrupted += 1
        times: list[float] = []
        rate = imp.rate_bps
        for _ in range(copies):
            sent_at = now
            if rate is not None:
                departure = self._enqueue(imp, rate, size, now)
                if departure is None:
                    stats.drop("queue", size)
                    continue
                sent_at = departure
            at = self._schedule(imp, sent_at) if (imp.delay or imp.jitter or imp.reorder) else sent_at
            if at > now:
                stats.delayed += 1
            times.append(at)
        if not times:
            return Verdict("queue", (), False)
        return Verdict(None, tuple(times), corrupt)
