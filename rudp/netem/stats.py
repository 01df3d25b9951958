"""Per-direction counters of what the emulated link did, with drops broken down by cause.

The forwarder owns live :class:`DirectionStats` objects and sends snapshots over its control channel as
plain dicts; :class:`LinkStats` is what :meth:`rudp.netem.Network.stats` returns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

#: Drop causes, in the order the impairments are applied (then the forwarder's own).
DROP_CAUSES: Final = ("drop_list", "blackhole", "loss", "burst", "queue", "nat", "write_error")


@dataclass(slots=True)
class DirectionStats:
    """Counters for one direction ("c2s" or "s2c").

    `received_*` counts packets read from the sending side's TUN, `forwarded_*` packets written to the
    other side (duplicates included), `dropped` drops per cause. `ignored` counts packets never subject
    to impairments (IPv6 multicast, non-IP). `queue_peak_bytes` is the bottleneck queue's high-water mark.
    `tun_tx_dropped` is the kernel's count of packets lost because the forwarder read too slowly
    (filled in by the parent when it takes a snapshot).
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
        return cls(**kwargs)  # type: ignore[arg-type]

    def summary(self) -> str:
        """One line for humans."""
        drops = ", ".join(f"{k}={v}" for k, v in sorted(self.dropped.items())) or "none"
        return (
            f"rx {self.received_packets} pkts/{self.received_bytes} B, "
            f"fwd {self.forwarded_packets} pkts/{self.forwarded_bytes} B, drops: {drops}, "
            f"corrupted {self.corrupted}, duplicated {self.duplicated}, reordered {self.reordered}, "
            f"nat {self.nat_rewritten}, queue peak {self.queue_peak_bytes} B, "
            f"tun tx_dropped {self.tun_tx_dropped}"
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
