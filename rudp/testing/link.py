"""One direction of a simulated network path, on virtual time.

A :class:`Link` takes datagrams with the virtual time they were sent and decides, deterministically from
its seeded random source, whether and when each one arrives. The impairments, applied in this order:

1. ``mtu``: a datagram larger than the MTU is dropped (no fragmentation);
2. ``drop_filter(datagram, index)``: the test picks exact datagrams to drop;
3. the bottleneck: at ``bandwidth`` bits/s each datagram waits for the ones before it to be serialized,
   and a drop-tail queue of ``queue_bytes`` drops what does not fit;
4. wire loss: ``burst_loss`` (Gilbert-Elliott or a fixed run of drops), then independent ``loss``;
5. ECN (RFC 3168): ``ecn_bleach`` clears every mark to Not-ECT (a path that mangles ECN); an
   ECN-capable datagram (ECT(0)/ECT(1)) is marked CE when the bottleneck queue holds more than
   ``ce_threshold_bytes`` (a step marker, as L4S and DCTCP use) or with probability ``ce_probability``
   (drawn from a random source of its own, so the other impairments keep their draws);
6. propagation: ``delay`` plus up to ``jitter`` (kept in order unless ``allow_reorder``), ``reorder``
   holds a datagram back an extra ``reorder_delay``, and ``duplicate`` delivers a second copy.

Every datagram draws the same number of random values whatever the configuration, so turning one
impairment on does not reshuffle the others. :class:`LinkStats` counts everything, the send log answers
"how many bytes did the sender emit within any window of X seconds" (pacing checks), and an optional
callback sees each datagram sent, dropped, duplicated and delivered.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rudp.errors import ConfigError

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
    "TraceCallback",
    "TraceEvent",
]

Addr = tuple[str, int]
DEFAULT_MTU = 1500 - 28  # IPv4 + UDP headers


class DropCause(StrEnum):
    """Why a datagram did not arrive."""

    MTU = "mtu"
    FILTER = "filter"
    QUEUE = "queue"
    BURST = "burst"
    LOSS = "loss"
    UNROUTABLE = "unroutable"  # nobody holds the destination address (e.g. after a NAT rebinding)


@dataclass(frozen=True, slots=True)
class GilbertElliott:
    """Two-state burst loss: per datagram, move good->bad with probability ``p``, bad->good with ``r``,
    then drop with the current state's loss probability. Mean burst length is ``1 / r``."""

    p: float
    r: float
    loss_bad: float = 1.0
    loss_good: float = 0.0


@dataclass(frozen=True, slots=True)
class DropRange:
    """Drop ``count`` consecutive datagrams starting at direction index ``start`` (0-based)."""

    start: int
    count: int


BurstLoss = GilbertElliott | DropRange


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} must be a probability in [0, 1], got {value!r}")


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """The impairments of one direction. Times in seconds, ``bandwidth`` in bits/s (None = infinite)."""

    delay: float = 0.0
    jitter: float = 0.0
    allow_reorder: bool = False
    loss: float = 0.0
    burst_loss: BurstLoss | None = None
    reorder: float = 0.0
    reorder_delay: float = 0.01
    duplicate: float = 0.0
    bandwidth: float | None = None
    queue_bytes: int | None = None
    drop_filter: Callable[[bytes, int], bool] | None = None
    mtu: int = DEFAULT_MTU
    seed: int = 0
    ecn_bleach: bool = False
    ce_threshold_bytes: int | None = None
    ce_probability: float = 0.0

    def __post_init__(self) -> None:
        for name in ("delay", "jitter", "reorder_delay"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("loss", "reorder", "duplicate", "ce_probability"):
            _check_probability(name, getattr(self, name))
        if isinstance(self.burst_loss, GilbertElliott):
            for name in ("p", "r", "loss_bad", "loss_good"):
                _check_probability(f"burst_loss.{name}", getattr(self.burst_loss, name))
        elif isinstance(self.burst_loss, DropRange) and (
            self.burst_loss.start < 0 or self.burst_loss.count < 0
        ):
            raise ConfigError(f"DropRange needs start >= 0 and count >= 0, got {self.burst_loss!r}")
        if self.bandwidth is not None and self.bandwidth <= 0:
            raise ConfigError(f"bandwidth must be > 0 bits/s or None, got {self.bandwidth!r}")
        if self.queue_bytes is not None and self.queue_bytes < 0:
            raise ConfigError(f"queue_bytes must be >= 0 or None, got {self.queue_bytes!r}")
        if self.mtu <= 0:
            raise ConfigError(f"mtu must be > 0, got {self.mtu!r}")


@dataclass(frozen=True, slots=True)
class Datagram:
    """A datagram on the link: ``index`` counts datagrams offered in this direction from 0."""

    data: bytes
    src: Addr
    dst: Addr
    index: int
    sent_at: float
    deliver_at: float
    duplicate: bool = False
    ecn: int = 0
    """The ECN codepoint it arrives with (0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE)."""


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One thing that happened to a datagram. ``kind`` is "sent", "dropped", "duplicated" or
    "delivered"; ``cause`` is set for drops. ``time`` is the virtual time of the event."""

    direction: str
    kind: str
    time: float
    size: int
    index: int
    cause: DropCause | None = None


TraceCallback = Callable[[TraceEvent], None]


@dataclass(slots=True)
class LinkStats:
    """Counters of one direction. ``reordered`` counts datagrams deliberately held back;
    ``out_of_order`` counts deliveries that arrived after a datagram sent later."""

    sent: int = 0
    delivered: int = 0
    dropped: dict[DropCause, int] = field(default_factory=dict)
    duplicated: int = 0
    reordered: int = 0
    out_of_order: int = 0
    bytes_sent: int = 0
    bytes_delivered: int = 0
    bytes_dropped: int = 0
    max_queue_bytes: int = 0
    ce_marked: int = 0
    """ECN-capable datagrams the link marked CE."""
    ecn_bleached: int = 0
    """Marked datagrams whose ECN field the link cleared."""

    @property
    def dropped_total(self) -> int:
        """All drops, whatever the cause."""
        return sum(self.dropped.values())


class Link:
    """One direction of a path: ``send()`` datagrams in, ``pop()`` them out when they are due."""

    def __init__(
        self,
        config: LinkConfig | None = None,
        *,
        name: str = "link",
        rng: random.Random | None = None,
        on_trace: TraceCallback | None = None,
    ) -> None:
        self.name = name
        self.on_trace = on_trace
        self.stats = LinkStats()
        self._config = LinkConfig() if config is None else config
        self._rng = rng if rng is not None else self._seeded(self._config.seed)
        self._ecn_rng = random.Random(f"{name}/ecn/{self._config.seed}")
        self._seq = itertools.count()
        self._heap: list[tuple[float, int, Datagram]] = []
        self._queue: deque[tuple[float, int]] = deque()  # (serialized_at, size) at the bottleneck
        self._queued_bytes = 0
        self._busy_until = float("-inf")
        self._last_fifo_at = float("-inf")
        self._bad_state = False
        self._max_index_delivered = -1
        self._send_log: list[tuple[float, int]] = []

    def _seeded(self, seed: int) -> random.Random:
        # The name is mixed in so that two directions built from one LinkConfig are independent.
        return random.Random(f"{self.name}/{seed}")

    # -- configuration ---------------------------------------------------------------------------

    @property
    def config(self) -> LinkConfig:
        """The current impairments; assign a new :class:`LinkConfig` to change them mid-run.
        Datagrams already in flight keep their fate. A changed ``seed`` reseeds the random source."""
        return self._config

    @config.setter
    def config(self, config: LinkConfig) -> None:
        if not isinstance(config, LinkConfig):
            raise ConfigError(f"expected a LinkConfig, got {type(config).__name__}")
        if config.seed != self._config.seed:
            self._rng = self._seeded(config.seed)
        self._config = config

    def update(self, **changes: Any) -> LinkConfig:
        """Change some fields of the config (``link.update(loss=0.1)``) and return the new config."""
        self.config = dataclasses.replace(self._config, **changes)
        return self._config

    # -- state -----------------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        """Datagrams (copies included) scheduled for delivery and not yet popped."""
        return len(self._heap)

    def next_delivery_at(self) -> float | None:
        """The delivery time of the earliest datagram in flight, or None."""
        return self._heap[0][0] if self._heap else None

    def next_key(self) -> tuple[float, int] | None:
        """(delivery time, sequence) of the earliest datagram, for a stable order between links."""
        return (self._heap[0][0], self._heap[0][1]) if self._heap else None

    @property
    def send_log(self) -> list[tuple[float, int]]:
        """(time, size) of every datagram offered to the link, in order (a copy)."""
        return list(self._send_log)

    def max_burst_bytes(self, window: float) -> int:
        """The largest number of bytes offered to the link within any interval ``[t, t + window)``."""
        if window <= 0:
            raise ConfigError(f"window must be > 0 seconds, got {window!r}")
        best = total = 0
        start = 0
        log = self._send_log
        for t, size in log:
            total += size
            while log[start][0] <= t - window:
                total -= log[start][1]
                start += 1
            best = max(best, total)
        return best

    # -- the datagram path -----------------------------------------------------------------------

    def _emit(self, kind: str, now: float, size: int, index: int, cause: DropCause | None = None) -> None:
        if self.on_trace is not None:
            self.on_trace(TraceEvent(self.name, kind, now, size, index, cause))

    def _drop(self, now: float, size: int, index: int, cause: DropCause) -> None:
        self.stats.dropped[cause] = self.stats.dropped.get(cause, 0) + 1
        self.stats.bytes_dropped += size
        self._emit("dropped", now, size, index, cause)

    def _wire_loss(self, index: int, u_ge: float, u_ge_loss: float, u_loss: float) -> DropCause | None:
        cfg = self._config
        burst = cfg.burst_loss
        if isinstance(burst, DropRange):
            if burst.start <= index < burst.start + burst.count:
                return DropCause.BURST
        elif isinstance(burst, GilbertElliott):
            if self._bad_state:
                self._bad_state = u_ge >= burst.r
            else:
                self._bad_state = u_ge < burst.p
            if u_ge_loss < (burst.loss_bad if self._bad_state else burst.loss_good):
                return DropCause.BURST
        if u_loss < cfg.loss:
            return DropCause.LOSS
        return None

    def _bottleneck(self, size: int, now: float) -> float | None:
        """Queue the datagram at the bottleneck; return when it has been serialized, or None if dropped."""
        cfg = self._config
        while self._queue and self._queue[0][0] <= now:
            self._queued_bytes -= self._queue.popleft()[1]
        if cfg.bandwidth is None:
            return now
        if cfg.queue_bytes is not None and self._queued_bytes + size > cfg.queue_bytes:
            return None
        done_at = max(now, self._busy_until) + size * 8.0 / cfg.bandwidth
        self._busy_until = done_at
        self._queue.append((done_at, size))
        self._queued_bytes += size
        self.stats.max_queue_bytes = max(self.stats.max_queue_bytes, self._queued_bytes)
        return done_at

    def send(self, data: bytes, src: Addr, dst: Addr, now: float, ecn: int = 0) -> Datagram | None:
        """Offer a datagram at virtual time ``now`` with the ECN codepoint ``ecn``; return it as
        scheduled, or None if it was dropped."""
        cfg = self._config
        rng = self._rng
        u_loss, u_ge, u_ge_loss, u_jitter, u_reorder, u_dup = (rng.random() for _ in range(6))
        size = len(data)
        index = self.stats.sent
        self.stats.sent += 1
        self.stats.bytes_sent += size
        self._send_log.append((now, size))
        self._emit("sent", now, size, index)
        if size > cfg.mtu:
            self._drop(now, size, index, DropCause.MTU)
            return None
        if cfg.drop_filter is not None and cfg.drop_filter(data, index):
            self._drop(now, size, index, DropCause.FILTER)
            return None
        departed_at = self._bottleneck(size, now)
        if departed_at is None:
            self._drop(now, size, index, DropCause.QUEUE)
            return None
        cause = self._wire_loss(index, u_ge, u_ge_loss, u_loss)
        if cause is not None:
            self._drop(now, size, index, cause)
            return None
        if ecn:
            ecn = self._ecn(ecn)
        deliver_at = departed_at + cfg.delay + u_jitter * cfg.jitter
        if not cfg.allow_reorder:
            deliver_at = max(deliver_at, self._last_fifo_at)
        if u_reorder < cfg.reorder:
            deliver_at += cfg.reorder_delay
            self.stats.reordered += 1
        elif not cfg.allow_reorder:
            self._last_fifo_at = deliver_at
        datagram = Datagram(data, src, dst, index, now, deliver_at, ecn=ecn)
        heapq.heappush(self._heap, (deliver_at, next(self._seq), datagram))
        if u_dup < cfg.duplicate:
            self.stats.duplicated += 1
            copy = dataclasses.replace(datagram, duplicate=True)
            heapq.heappush(self._heap, (deliver_at, next(self._seq), copy))
            self._emit("duplicated", now, size, index)
        return datagram

    def _ecn(self, ecn: int) -> int:
        cfg = self._config
        if cfg.ecn_bleach:
            self.stats.ecn_bleached += 1
            return 0
        if ecn == 3:
            return ecn
        threshold = cfg.ce_threshold_bytes
        # The queue already holds this datagram: "above the threshold" counts what waits before it.
        if (threshold is not None and self._queued_bytes > threshold) or (
            cfg.ce_probability and self._ecn_rng.random() < cfg.ce_probability
        ):
            self.stats.ce_marked += 1
            return 3
        return ecn

    def pop(self, now: float, accept: Callable[[Addr], bool] | None = None) -> Datagram | None:
        """Remove the earliest datagram (the caller makes sure it is due at ``now``).

        Returns it as delivered, or None if ``accept(dst)`` says nobody holds its destination address
        (then it counts as dropped, :attr:`DropCause.UNROUTABLE`) or nothing is in flight.
        """
        if not self._heap:
            return None
        datagram = heapq.heappop(self._heap)[2]
        size = len(datagram.data)
        if accept is not None and not accept(datagram.dst):
            self._drop(now, size, datagram.index, DropCause.UNROUTABLE)
            return None
        self.stats.delivered += 1
        self.stats.bytes_delivered += size
        if datagram.index < self._max_index_delivered:
            self.stats.out_of_order += 1
        self._max_index_delivered = max(self._max_index_delivered, datagram.index)
        self._emit("delivered", now, size, datagram.index)
        return datagram
