"""Per-direction counters of what the emulated link did, with drops broken down by cause.

The forwarder owns live :class:`DirectionStats` objects and sends snapshots over its control channel as
plain dicts; :class:`LinkStats` is what :meth:`rudp.netem.Network.stats` returns.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

#: Drop causes, in the order the impairments are applied (then the forwarder's own).
#: `burst` covers both Gilbert-Elliott and burst-of-N loss; `aqm` is a Not-ECT packet dropped where the
#: marker would have marked an ECN-capable one.
DROP_CAUSES: Final = ("drop_list", "blackhole", "loss", "burst", "queue", "aqm", "nat", "write_error")

#: Queue-delay histogram resolution: buckets per doubling, from 1 us (bucket 0 holds anything below).
_BUCKETS_PER_OCTAVE: Final = 16


def delay_bucket(seconds: float) -> int:
    """The histogram bucket of a queue delay (relative width 2**(1/16), about 4.4%)."""
    us = seconds * 1e6
    if us < 1.0:
        return 0
    return int(math.log2(us) * _BUCKETS_PER_OCTAVE) + 1


def bucket_value(bucket: int) -> float:
    """A representative delay (the geometric middle, seconds) of a bucket; 0 for bucket 0."""
    if bucket <= 0:
        return 0.0
    return float(2.0 ** ((bucket - 0.5) / _BUCKETS_PER_OCTAVE) * 1e-6)


@dataclass(slots=True)
class DirectionStats:
    """Counters for one direction ("c2s" or "s2c").

    `received_*` counts packets read from the sending side's TUN, `forwarded_*` packets written to the
    other side (duplicates included), `dropped` drops per cause. `ignored` counts packets never subject
    to impairments (IPv6 multicast, non-IP). `queue_peak_bytes` is the bottleneck queue's high-water mark.
    `tun_tx_dropped` is the kernel's count of packets lost because the forwarder read too slowly
    (filled in by the parent when it takes a snapshot).

    `ce_marked` counts ECT packets the AQM marked CE. `queue_delay_hist` is a histogram of the queue
    delay (time waiting before transmission at the bottleneck) of every packet that passed a
    rate-limited link, with `queue_delay_max` exact; read it with :meth:`queue_delay_percentile`.
    """

    received_packets: int = 0
    received_bytes: int = 0
    forwarded_packets: int = 0
    forwarded_bytes: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    dropped_bytes: int = 0
    corrupted: int = 0
    duplicated: int = 0
    reordered: int = 0
    delayed: int = 0
    nat_rewritten: int = 0
    ignored: int = 0
    queue_peak_bytes: int = 0
    tun_tx_dropped: int = 0
    ce_marked: int = 0
    queue_delay_hist: dict[int, int] = field(default_factory=dict)
    queue_delay_max: float = 0.0

    def record_queue_delay(self, seconds: float) -> None:
        """Add one packet's queue delay to the histogram."""
        bucket = delay_bucket(seconds)
        self.queue_delay_hist[bucket] = self.queue_delay_hist.get(bucket, 0) + 1
        if seconds > self.queue_delay_max:
            self.queue_delay_max = seconds

    @property
    def queue_delay_samples(self) -> int:
        """How many packets the histogram holds."""
        return sum(self.queue_delay_hist.values())

    def queue_delay_percentile(self, q: float) -> float:
        """The `q`-th percentile (0..100) of the queue delay in seconds, to about 2%; 0 if no samples."""
        total = self.queue_delay_samples
        if total == 0:
            return 0.0
        rank = max(1, math.ceil(q / 100.0 * total))
        seen = 0
        for bucket in sorted(self.queue_delay_hist):
            seen += self.queue_delay_hist[bucket]
            if seen >= rank:
                return min(bucket_value(bucket), self.queue_delay_max)
        return self.queue_delay_max

    def queue_delay_percentiles(self) -> dict[str, float]:
        """p50/p90/p99 and the maximum of the queue delay, seconds."""
        return {
            "p50": self.queue_delay_percentile(50),
            "p90": self.queue_delay_percentile(90),
            "p99": self.queue_delay_percentile(99),
            "max": self.queue_delay_max,
        }

    def drop(self, cause: str, size: int) -> None:
        """Count one dropped packet of `size` bytes."""
        self.dropped[cause] = self.dropped.get(cause, 0) + 1
        self.dropped_bytes += size

    @property
    def dropped_packets(self) -> int:
        """Total drops over all causes."""
        return sum(self.dropped.values())

    def to_dict(self) -> dict[str, object]:
        """A JSON-able copy."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> DirectionStats:
        """Inverse of :meth:`to_dict` (unknown keys are ignored, for forward compatibility)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        if "dropped" in kwargs and isinstance(kwargs["dropped"], Mapping):
            kwargs["dropped"] = {str(k): int(v) for k, v in kwargs["dropped"].items()}
        if "queue_delay_hist" in kwargs and isinstance(kwargs["queue_delay_hist"], Mapping):
            kwargs["queue_delay_hist"] = {int(k): int(v) for k, v in kwargs["queue_delay_hist"].items()}
        return cls(**kwargs)  # type: ignore[arg-type]

    def summary(self) -> str:
        """One line for humans."""
        drops = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items())) or "none"
        queue = ""
        if self.queue_delay_hist:
            pct = self.queue_delay_percentiles()
            queue = ", queue delay ms p50/p90/p99/max " + "/".join(f"{v * 1e3:.2f}" for v in pct.values())
        return (
            f"rx {self.received_packets} pkts/{self.received_bytes} B, "
            f"fwd {self.forwarded_packets} pkts/{self.forwarded_bytes} B, drops: {drops}, "
            f"corrupted {self.corrupted}, duplicated {self.duplicated}, reordered {self.reordered}, "
            f"nat {self.nat_rewritten}, CE marked {self.ce_marked}, queue peak {self.queue_peak_bytes} B"
            f"{queue}, tun tx_dropped {self.tun_tx_dropped}"
        )


@dataclass(slots=True)
class LinkStats:
    """Both directions of the link."""

    c2s: DirectionStats
    s2c: DirectionStats

    def __getitem__(self, direction: str) -> DirectionStats:
        if direction == "c2s":
            return self.c2s
        if direction == "s2c":
            return self.s2c
        raise KeyError(direction)

    def summary(self) -> str:
        """Two lines for humans."""
        return f"c2s: {self.c2s.summary()}\ns2c: {self.s2c.summary()}"
