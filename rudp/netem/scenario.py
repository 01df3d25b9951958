"""Named link scenarios and the compact text form of impairments used on the command line.

A spec is a comma-separated list of `key=value` items, for example
`delay=20ms,jitter=2ms,loss=1%,rate=50mbit,queue=64kb`. Keys:

    delay, jitter, reorder_delay      times ("20ms", "1.5s")
    loss, corrupt, duplicate, reorder  probabilities ("1%", "0.01")
    rate                               bits per second ("50mbit")
    queue                              bytes ("64kb") or packets ("100p")
    ge                                 Gilbert-Elliott "p/r" or "p/r/loss_good/loss_bad"
    burst                              burst of N: "rate/N" or "rate/MIN-MAX"
    aqm                                ECN marker at the bottleneck (needs rate): "step/1ms" (queue
                                       delay) or "step/30kb" (backlog), "red/MIN/MAX/MAX_P[/WEIGHT]"
                                       ("red/30kb/90kb/10%"), "codel[/TARGET/INTERVAL]" ("codel/5ms/100ms")
    blackhole                          periods "START-END" joined by "+" ("2s-3s+6s-7s"), or "on"
    drop                               drop list, 1-based indices joined by "+" ("1+2+5")
    corrupt_bytes                      an integer
    jitter_reorders, corrupt_fix_checksum   "yes"/"no"

This module owns parsing and the preset table only; the CLI (`python -m rudp.netem`) uses both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from rudp.netem.impairments import (
    Aqm,
    BurstLoss,
    CodelMarker,
    GilbertElliott,
    ImpairmentError,
    Impairments,
    RedMarker,
    StepMarker,
    parse_probability,
    parse_rate,
    parse_size,
    parse_time,
    periodic_blackhole,
)
from rudp.netem.nat import NatConfig


def _bool(text: str) -> bool:
    if text.lower() in ("1", "yes", "true", "on"):
        return True
    if text.lower() in ("0", "no", "false", "off"):
        return False
    raise ImpairmentError(f"expected yes/no, got {text!r}")


def _ge(text: str) -> GilbertElliott:
    parts = [parse_probability(p) for p in text.split("/")]
    if len(parts) not in (2, 4):
        raise ImpairmentError("ge takes p/r or p/r/loss_good/loss_bad")
    return GilbertElliott(*parts)


def _burst(text: str) -> BurstLoss:
    try:
        rate, lengths = text.split("/")
        low, _, high = lengths.partition("-")
        return BurstLoss(parse_probability(rate), int(low), int(high or low))
    except ValueError as exc:
        raise ImpairmentError(f"burst takes rate/N or rate/MIN-MAX, got {text!r}") from exc


def _aqm(text: str) -> Aqm:
    kind, *args = [part.strip() for part in text.split("/")]
    kind = kind.lower()
    if kind == "step" and len(args) <= 1:
        if not args:
            return StepMarker()
        if args[0].lower().endswith(("s", "ms", "us")):
            return StepMarker(threshold=parse_time(args[0]))
        return StepMarker(threshold_bytes=parse_size(args[0]))
    if kind == "red" and len(args) in (3, 4):
        weight = float(args[3]) if len(args) == 4 else 1.0
        return RedMarker(parse_size(args[0]), parse_size(args[1]), parse_probability(args[2]), weight)
    if kind == "codel" and not args:
        return CodelMarker()
    if kind == "codel" and len(args) == 2:
        return CodelMarker(target=parse_time(args[0]), interval=parse_time(args[1]))
    raise ImpairmentError(
        f"aqm takes step[/THRESHOLD], red/MIN/MAX/MAX_P[/WEIGHT] or codel[/TARGET/INTERVAL], got {text!r}"
    )


def _periods(text: str) -> tuple[tuple[float, float], ...]:
    out = []
    for item in text.split("+"):
        start, sep, end = item.partition("-")
        if not sep:
            raise ImpairmentError(f"blackhole period {item!r} is not START-END")
        out.append((parse_time(start), parse_time(end)))
    return tuple(out)


_SIMPLE: Final[dict[str, tuple[str, Callable[[str], object]]]] = {
    "delay": ("delay", parse_time),
    "jitter": ("jitter", parse_time),
    "reorder_delay": ("reorder_delay", parse_time),
    "loss": ("loss", parse_probability),
    "corrupt": ("corrupt", parse_probability),
    "duplicate": ("duplicate", parse_probability),
    "reorder": ("reorder", parse_probability),
    "rate": ("rate_bps", parse_rate),
    "ge": ("gilbert_elliott", _ge),
    "burst": ("burst", _burst),
    "aqm": ("aqm", _aqm),
    "corrupt_bytes": ("corrupt_bytes", int),
    "jitter_reorders": ("jitter_reorders", _bool),
    "corrupt_fix_checksum": ("corrupt_fix_checksum", _bool),
    "drop": ("drop_list", lambda t: frozenset(int(i) for i in t.split("+"))),
}


def parse_spec(spec: str) -> dict[str, object]:
    """Impairments fields from a spec string (see the module docstring).

    Raises:
        ImpairmentError: unknown key or bad value.
    """
    fields: dict[str, object] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep:
            raise ImpairmentError(f"{item!r} is not key=value")
        if key in _SIMPLE:
            name, parse = _SIMPLE[key]
            try:
                fields[name] = parse(value.strip())
            except ValueError as exc:
                raise ImpairmentError(f"{key}: {exc}") from exc
        elif key == "queue":
            value = value.strip().lower()
            if value.endswith("p"):
                fields["queue_packets"] = int(value[:-1])
            else:
                fields["queue_bytes"] = parse_size(value)
        elif key == "blackhole":
            if value.strip().lower() == "on":
                fields["blackhole"] = True
            else:
                fields["blackhole_periods"] = _periods(value.strip())
        else:
            raise ImpairmentError(f"unknown impairment key {key!r}")
    return fields


@dataclass(frozen=True)
class Scenario:
    """A named preset: per-direction impairments and an optional NAT."""

    description: str
    c2s: Impairments = field(default_factory=Impairments)
    s2c: Impairments = field(default_factory=Impairments)
    nat: NatConfig | None = None


def _both(description: str, imp: Impairments, nat: NatConfig | None = None) -> Scenario:
    return Scenario(description, imp, imp, nat)


_WAN: Final = Impairments(delay=0.02, jitter=0.002, rate_bps=50e6, queue_bytes=128_000)

SCENARIOS: Final[dict[str, Scenario]] = {
    "clean": Scenario("no impairment (forwarder only)"),
    "lan": _both("1 ms one-way delay", Impairments(delay=0.001)),
    "wan": _both("20 ms +- 2 ms one-way, 50 Mbit/s bottleneck, 128 kB drop-tail queue", _WAN),
    "lossy": _both("wan plus 2% random loss", _WAN.replace(loss=0.02)),
    "bursty": _both(
        "wan plus Gilbert-Elliott bursts (p=1%, mean burst 4)",
        _WAN.replace(gilbert_elliott=GilbertElliott(0.01, 0.25)),
    ),
    "satellite": _both(
        "300 ms one-way, 10 Mbit/s, 1 MB queue", Impairments(delay=0.3, rate_bps=10e6, queue_bytes=1_000_000)
    ),
    "blackhole": _both(
        "wan with a 2 s outage every 10 s, first at 3 s",
        _WAN.replace(blackhole_periods=periodic_blackhole(3.0, 2.0, 8.0, 30)),
    ),
    "handshake-loss": Scenario(
        "the first two packets in each direction are dropped",
        Impairments(delay=0.01, drop_list=frozenset({1, 2})),
        Impairments(delay=0.01, drop_list=frozenset({1, 2})),
    ),
    "corrupt": _both("wan with 1% of packets corrupted (checksums fixed)", _WAN.replace(corrupt=0.01)),
    "reorder": _both(
        "wan with 2% of packets held back 5 ms", _WAN.replace(reorder=0.02, reorder_delay=0.005)
    ),
    "l4s": _both(
        "20 ms one-way, 20 Mbit/s, 250 kB queue, CE marking above 1 ms queue delay (step)",
        Impairments(delay=0.02, rate_bps=20e6, queue_bytes=250_000, aqm=StepMarker(threshold=0.001)),
    ),
    "codel": _both(
        "20 ms one-way, 20 Mbit/s, 250 kB queue, CoDel marking/dropping (5 ms target, 100 ms interval)",
        Impairments(delay=0.02, rate_bps=20e6, queue_bytes=250_000, aqm=CodelMarker()),
    ),
    "rebind-port": _both(
        "wan; the NAT gives the client a new port at 2 s", _WAN, NatConfig(rebind_at=(2.0,), port=True)
    ),
    "rebind-address": _both(
        "wan; the NAT gives the client a new address and port at 2 s",
        _WAN,
        NatConfig(rebind_at=(2.0,), port=True, address=True),
    ),
}
