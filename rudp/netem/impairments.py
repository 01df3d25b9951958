"""What a link does to packets: the impairment settings for one direction, and their text forms.

This module owns the *description* of impairments (immutable values that can cross a process boundary as
plain dicts) and the parsers for the command line ("20ms", "50mbit", "1%"). The behaviour that applies
them to packets lives in :mod:`rudp.netem.channel`; both the namespace forwarder and the loopback relay
use it.

Schedules (blackhole periods, the drop list) count from the moment the settings are applied to the
direction: network start for the initial settings, the call for run-time changes that mention them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Final, Literal, TypeAlias

Direction: TypeAlias = Literal["c2s", "s2c"]
DIRECTIONS: Final[tuple[Direction, Direction]] = ("c2s", "s2c")
Period: TypeAlias = tuple[float, float]


class ImpairmentError(ValueError):
    """An impairment setting is out of range or cannot be parsed."""


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ImpairmentError(f"{name} must be a probability in [0, 1], got {value!r}")


@dataclass(frozen=True, slots=True)
class GilbertElliott:
    """Two-state bursty loss: a Good state losing `loss_good`, a Bad state losing `loss_bad`.

    Each packet first moves Good->Bad with probability `p` or Bad->Good with probability `r`, then is
    lost with the loss probability of the state it is in. In the classic notation, where `k` and `h` are
    the probabilities that a packet *survives* in Good and in Bad, `loss_good = 1 - k` and
    `loss_bad = 1 - h` (the order of Linux netem's `loss gemodel p r 1-h 1-k` is different).

    Analytically: the stationary share of Bad is `p / (p + r)`, the loss rate is
    `(r * loss_good + p * loss_bad) / (p + r)`, a stay in Bad lasts `1 / r` packets on average
    (geometric), and with `loss_good = 0, loss_bad = 1` (the Gilbert model) the loss bursts are exactly
    the stays in Bad.
    """

    p: float
    r: float
    loss_good: float = 0.0
    loss_bad: float = 1.0

    def __post_init__(self) -> None:
        for name in ("p", "r", "loss_good", "loss_bad"):
            _check_probability(f"gilbert_elliott.{name}", getattr(self, name))


@dataclass(frozen=True, slots=True)
class BurstLoss:
    """Loss in bursts ("burst of N"), as the QUIC interop runner's drop scenarios use.

    Each packet starts a burst with probability `rate`; a burst drops that packet and the following
    ones, `min_length` to `max_length` packets in all (uniformly chosen).
    """

    rate: float
    min_length: int
    max_length: int

    def __post_init__(self) -> None:
        _check_probability("burst.rate", self.rate)
        if not 1 <= self.min_length <= self.max_length:
            raise ImpairmentError("burst lengths need 1 <= min_length <= max_length")


@dataclass(frozen=True, slots=True)
class StepMarker:
    """L4S-style step AQM: signal congestion on every packet whose queue delay exceeds `threshold`.

    The queue delay is the time the packet waits in the bottleneck queue before its transmission starts
    (its sojourn time). With `threshold_bytes` set, the backlog the packet finds on arrival (bytes,
    the packet in transmission included) is compared instead.
    """

    kind: ClassVar[str] = "step"
    threshold: float = 0.001
    threshold_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.threshold < 0:
            raise ImpairmentError("step.threshold must not be negative")
        if self.threshold_bytes is not None and self.threshold_bytes < 0:
            raise ImpairmentError("step.threshold_bytes must not be negative")


@dataclass(frozen=True, slots=True)
class RedMarker:
    """RED (RFC 2309/7567 style) by queue size: no signal below `min_bytes`, probability rising
    linearly to `max_p` at `max_bytes`, and every packet above `max_bytes`.

    The size compared is an exponentially weighted average of the backlog found by each arriving packet,
    `avg += weight * (backlog - avg)`; `weight=1` (the default) uses the instantaneous backlog. There is
    no inter-mark count correction (marks are independent draws).
    """

    kind: ClassVar[str] = "red"
    min_bytes: int = 30_000
    max_bytes: int = 90_000
    max_p: float = 0.1
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_bytes < self.max_bytes:
            raise ImpairmentError("red needs 0 <= min_bytes < max_bytes")
        _check_probability("red.max_p", self.max_p)
        if not 0.0 < self.weight <= 1.0:
            raise ImpairmentError("red.weight must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class CodelMarker:
    """CoDel (RFC 8289): once the queue delay has stayed at or above `target` for `interval`, signal one
    packet, then the next ones at `interval / sqrt(count)` spacing until the delay drops below `target`.

    Runs on the departure timeline (when each packet starts transmission), as CoDel runs at dequeue.
    A backlog of at most `mtu` bytes never counts as standing.
    """

    kind: ClassVar[str] = "codel"
    target: float = 0.005
    interval: float = 0.1
    mtu: int = 1500

    def __post_init__(self) -> None:
        if self.target < 0 or self.interval <= 0:
            raise ImpairmentError("codel needs target >= 0 and interval > 0")


Aqm: TypeAlias = StepMarker | RedMarker | CodelMarker
AQM_KINDS: Final[dict[str, type[StepMarker] | type[RedMarker] | type[CodelMarker]]] = {
    "step": StepMarker,
    "red": RedMarker,
    "codel": CodelMarker,
}


def aqm_to_dict(aqm: Aqm) -> dict[str, object]:
    """The wire form of a marker: its fields plus `kind`."""
    return {"kind": aqm.kind, **dataclasses.asdict(aqm)}


def aqm_from_dict(data: Mapping[str, object]) -> Aqm:
    """Inverse of :func:`aqm_to_dict`."""
    fields = dict(data)
    kind = str(fields.pop("kind", ""))
    cls = AQM_KINDS.get(kind)
    if cls is None:
        raise ImpairmentError(f"unknown aqm kind {kind!r} (step, red or codel)")
    try:
        return cls(**fields)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ImpairmentError(f"aqm {kind}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Impairments:
    """Everything one direction of the link does to packets. The default is a perfect link.

    Order applied to each packet: drop list, blackhole, random loss, bursty loss, duplication,
    corruption, bottleneck queue (drop-tail) and serialisation at `rate_bps`, then one-way `delay` plus
    `jitter` (uniform in [-jitter, +jitter]) and reordering. Jitter never reorders packets unless
    `jitter_reorders` is set; `reorder` holds the chosen packets back by `reorder_delay` so later ones
    overtake them.

    `corrupt` flips `corrupt_bytes` random bytes of the UDP payload (other packets: of the IP payload).
    With `corrupt_fix_checksum` (the default) the UDP checksum is recomputed so the damaged datagram
    reaches the application, which is what tests of AEAD rejection want; without it the receiving kernel
    discards it for a bad checksum, and corruption behaves like loss.

    `queue_bytes`/`queue_packets` bound the bottleneck queue (drop-tail; both may be set, either limit
    drops). They only matter with `rate_bps`. `blackhole` drops everything while set; `blackhole_periods`
    are (start, end) seconds after the settings were applied. `drop_list` holds 1-based indices of the
    packets to drop, counted in this direction after the settings were applied.

    `aqm` (a :class:`StepMarker`, :class:`RedMarker` or :class:`CodelMarker`) acts at the bottleneck
    queue (so only with `rate_bps`): where it signals congestion, an ECN-capable packet (ECT(0) or
    ECT(1) in the IP header) is marked CE, and a Not-ECT packet is dropped (cause `aqm`), as routers do.
    A packet already CE passes unchanged.
    """

    delay: float = 0.0
    jitter: float = 0.0
    jitter_reorders: bool = False
    loss: float = 0.0
    gilbert_elliott: GilbertElliott | None = None
    burst: BurstLoss | None = None
    corrupt: float = 0.0
    corrupt_bytes: int = 1
    corrupt_fix_checksum: bool = True
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.01
    rate_bps: float | None = None
    queue_bytes: int | None = None
    queue_packets: int | None = None
    aqm: Aqm | None = None
    blackhole: bool = False
    blackhole_periods: tuple[Period, ...] = ()
    drop_list: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for name in ("delay", "jitter", "reorder_delay"):
            if getattr(self, name) < 0:
                raise ImpairmentError(f"{name} must not be negative")
        for name in ("loss", "corrupt", "duplicate", "reorder"):
            _check_probability(name, getattr(self, name))
        if self.corrupt_bytes < 1:
            raise ImpairmentError("corrupt_bytes must be at least 1")
        if self.rate_bps is not None and self.rate_bps <= 0:
            raise ImpairmentError("rate_bps must be positive")
        for name in ("queue_bytes", "queue_packets"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ImpairmentError(f"{name} must not be negative")
        for start, end in self.blackhole_periods:
            if end < start:
                raise ImpairmentError(f"blackhole period ({start}, {end}) ends before it starts")
        if any(i < 1 for i in self.drop_list):
            raise ImpairmentError("drop_list indices are 1-based")

    def replace(self, **changes: object) -> Impairments:
        """A copy with `changes` applied (validated like the constructor)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def describe(self) -> str:
        """The non-default settings, compactly ("perfect link" when there are none)."""
        default = Impairments()
        parts = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        ]
        return ", ".join(parts) or "perfect link"

    def to_dict(self) -> dict[str, object]:
        """A JSON-able dict (the control channel's wire form)."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, GilbertElliott | BurstLoss):
                value = dataclasses.asdict(value)
            elif isinstance(value, StepMarker | RedMarker | CodelMarker):
                value = aqm_to_dict(value)
            elif isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, tuple):
                value = [list(p) for p in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Impairments:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ImpairmentError`."""
        return cls().replace(**coerce_fields(data))


def coerce_fields(data: Mapping[str, object]) -> dict[str, object]:
    """Turn dict/list forms of nested fields back into their dataclass/tuple types."""
    names = {f.name for f in dataclasses.fields(Impairments)}
    out: dict[str, object] = {}
    for key, value in data.items():
        if key not in names:
            raise ImpairmentError(f"unknown impairment {key!r}")
        if key == "gilbert_elliott" and isinstance(value, Mapping):
            value = GilbertElliott(**value)
        elif key == "burst" and isinstance(value, Mapping):
            value = BurstLoss(**value)
        elif key == "aqm" and isinstance(value, Mapping):
            value = aqm_from_dict(value)
        elif key == "drop_list" and isinstance(value, Iterable):
            value = frozenset(int(i) for i in value)
        elif key == "blackhole_periods" and isinstance(value, Iterable):
            value = tuple((float(p[0]), float(p[1])) for p in value)
        out[key] = value
    return out


def periodic_blackhole(start: float, on: float, off: float, count: int) -> tuple[Period, ...]:
    """`count` blackhole periods of `on` seconds separated by `off` seconds, the first at `start`."""
    return tuple((start + i * (on + off), start + i * (on + off) + on) for i in range(count))


_UNITS_TIME: Final = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
_UNITS_RATE: Final = {
    "": 1.0,
    "bit": 1.0,
    "bps": 1.0,
    "kbit": 1e3,
    "kbps": 1e3,
    "mbit": 1e6,
    "mbps": 1e6,
    "gbit": 1e9,
    "gbps": 1e9,
}
_UNITS_SIZE: Final = {"": 1, "b": 1, "kb": 1000, "k": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2}
_NUMBER: Final = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*([a-zA-Z%]*)\s*$")


def _split(text: str) -> tuple[float, str]:
    m = _NUMBER.match(text)
    if m is None:
        raise ImpairmentError(f"cannot parse {text!r}")
    return float(m.group(1)), m.group(2).lower()


def parse_time(text: str) -> float:
    """Seconds from '20ms', '1.5s', '500us' or a bare number of seconds."""
    value, unit = _split(text)
    if unit not in _UNITS_TIME:
        raise ImpairmentError(f"unknown time unit in {text!r}")
    return value * _UNITS_TIME[unit]


def parse_rate(text: str) -> float:
    """Bits per second from '50mbit', '10Mbps', '800kbit' or a bare number."""
    value, unit = _split(text)
    if unit not in _UNITS_RATE:
        raise ImpairmentError(f"unknown rate unit in {text!r}")
    return value * _UNITS_RATE[unit]


def parse_size(text: str) -> int:
    """Bytes from '64kb', '1MiB', '1500' ..."""
    value, unit = _split(text)
    if unit not in _UNITS_SIZE:
        raise ImpairmentError(f"unknown size unit in {text!r}")
    return int(value * _UNITS_SIZE[unit])


def parse_probability(text: str) -> float:
    """A probability from '2%' or '0.02'."""
    value, unit = _split(text)
    if unit == "%":
        value /= 100.0
    elif unit:
        raise ImpairmentError(f"unknown unit in probability {text!r}")
    _check_probability("probability", value)
    return value
