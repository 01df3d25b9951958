"""The per-direction impairment engine: decide each packet's fate and delivery time.

A :class:`Channel` is sans-IO: it is fed a packet size and the current time and answers whether the
packet is dropped (and why), whether it is corrupted, and when each copy must be delivered. It never
holds packets; the caller (the namespace forwarder or the loopback relay) schedules the deliveries. It
updates a :class:`~rudp.netem.stats.DirectionStats` as it goes. Randomness comes from an injected
`random.Random`, so runs with the same seed and the same arrival times decide the same way.

The bottleneck is modelled analytically: a packet's transmission start and departure are computed when
it arrives (FIFO at `rate_bps`), so its queue delay (sojourn time) is known at once. The AQM markers use
that: the step marker compares it with a threshold, RED the backlog found on arrival, and CoDel runs
its state machine on the packets' transmission-start times (its dequeue times, which are monotonic).
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import NamedTuple

from rudp.netem.impairments import Aqm, CodelMarker, Impairments, RedMarker, StepMarker
from rudp.netem.packet import ECN_CE, ECN_ECT0, ECN_ECT1, ECN_NOT_ECT
from rudp.netem.stats import DirectionStats


class Verdict(NamedTuple):
    """The fate of one packet: a drop cause, or the delivery time of each copy (two when duplicated).

    `ce` says, per copy (parallel to `deliver_at`), whether the AQM marked it: the caller sets the
    packet's ECN field to CE.
    """

    cause: str | None
    deliver_at: tuple[float, ...]
    corrupt: bool
    ce: tuple[bool, ...] = ()


class _Codel:
    """CoDel's control state (RFC 8289 section 5), advanced once per packet at its dequeue time."""

    __slots__ = ("count", "drop_next", "dropping", "first_above", "last_count")

    def __init__(self) -> None:
        self.first_above = 0.0
        self.dropping = False
        self.drop_next = 0.0
        self.count = 0
        self.last_count = 0

    def signal(self, cfg: CodelMarker, sojourn: float, backlog: int, now: float) -> bool:
        """Whether the packet leaving the queue at `now` after `sojourn` seconds gets marked/dropped."""
        ok_to_signal = False
        if sojourn < cfg.target or backlog <= cfg.mtu:
            self.first_above = 0.0
        elif self.first_above == 0.0:
            self.first_above = now + cfg.interval
        elif now >= self.first_above:
            ok_to_signal = True
        if self.dropping:
            if not ok_to_signal:
                self.dropping = False
                return False
            if now >= self.drop_next:
                self.count += 1
                self.drop_next = self.drop_next + cfg.interval / math.sqrt(self.count)
                return True
            return False
        if ok_to_signal:
            self.dropping = True
            delta = self.count - self.last_count
            self.count = delta if delta > 1 and now - self.drop_next < 16 * cfg.interval else 1
            self.last_count = self.count
            self.drop_next = now + cfg.interval / math.sqrt(self.count)
            return True
        return False


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
        self._red_avg = 0.0
        self._codel = _Codel()

    @property
    def impairments(self) -> Impairments:
        """The settings in force."""
        return self._imp

    def configure(self, impairments: Impairments, now: float, restart_schedules: bool = True) -> None:
        """Switch to new settings. Packets already scheduled keep their delivery times.

        With `restart_schedules`, blackhole periods and the drop list count from `now` and from the
        next packet.
        """
        if impairments.aqm != self._imp.aqm:
            self._red_avg = 0.0
            self._codel = _Codel()
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

    def _signal(self, aqm: Aqm, queue_delay: float, backlog: int, start: float) -> bool:
        """Whether the AQM signals congestion (mark CE, or drop a Not-ECT packet) for this packet."""
        if isinstance(aqm, StepMarker):
            if aqm.threshold_bytes is not None:
                return backlog > aqm.threshold_bytes
            return queue_delay > aqm.threshold
        if isinstance(aqm, RedMarker):
            self._red_avg += aqm.weight * (backlog - self._red_avg)
            avg = self._red_avg
            if avg < aqm.min_bytes:
                return False
            if avg >= aqm.max_bytes:
                return True
            return self._rng.random() < aqm.max_p * (avg - aqm.min_bytes) / (aqm.max_bytes - aqm.min_bytes)
        return self._codel.signal(aqm, queue_delay, backlog, start)

    def _enqueue(
        self, imp: Impairments, rate_bps: float, size: int, now: float, ecn: int
    ) -> tuple[float | None, str | None, bool]:
        """Put a packet in the bottleneck queue: (departure time, None, marked CE) or (None, cause, False)."""
        queue = self._queue
        while queue and queue[0][0] <= now:
            self._queued_bytes -= queue.popleft()[1]
        backlog = self._queued_bytes
        if (imp.queue_packets is not None and len(queue) >= imp.queue_packets) or (
            imp.queue_bytes is not None and backlog + size > imp.queue_bytes
        ):
            return None, "queue", False
        start = self._link_free_at if self._link_free_at > now else now
        queue_delay = start - now
        marked = False
        if imp.aqm is not None and self._signal(imp.aqm, queue_delay, backlog, start):
            if ecn in (ECN_ECT0, ECN_ECT1):
                marked = True
            elif ecn != ECN_CE:
                return None, "aqm", False
        departure = start + size * 8.0 / rate_bps
        self._link_free_at = departure
        queue.append((departure, size))
        self._queued_bytes += size
        if self._queued_bytes > self.stats.queue_peak_bytes:
            self.stats.queue_peak_bytes = self._queued_bytes
        self.stats.record_queue_delay(queue_delay)
        if marked:
            self.stats.ce_marked += 1
        return departure, None, marked

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

    def process(self, size: int, now: float, ecn: int = ECN_NOT_ECT) -> Verdict:
        """Decide the fate of the next packet of `size` bytes arriving at `now`.

        `ecn` is the packet's ECN codepoint (see :mod:`rudp.netem.packet`); callers that cannot see it
        leave it Not-ECT, so an AQM drops where it would mark.
        """
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
        marks: list[bool] = []
        rate = imp.rate_bps
        drop_cause = "queue"
        for _ in range(copies):
            sent_at = now
            marked = False
            if rate is not None:
                departure, why, marked = self._enqueue(imp, rate, size, now, ecn)
                if departure is None:
                    drop_cause = why or "queue"
                    stats.drop(drop_cause, size)
                    continue
                sent_at = departure
            at = self._schedule(imp, sent_at) if (imp.delay or imp.jitter or imp.reorder) else sent_at
            if at > now:
                stats.delayed += 1
            times.append(at)
            marks.append(marked)
        if not times:
            return Verdict(drop_cause, (), False)
        return Verdict(None, tuple(times), corrupt, tuple(marks))
