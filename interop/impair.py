"""Seeded network impairments for :class:`~interop.tap.WireTap`, after the runner's network scenarios.

Owns :class:`Impairment` (what a case wants done to the link, frozen) and :class:`Impairer` (one run's
random streams, blackhole clock and counts). The tap asks :meth:`Impairer.apply` about every datagram
before it forwards it and gets back what to deliver: the datagram, a copy with one bit flipped, or
nothing. What the runner's ns-3 scenarios do, and what this does instead:

* ``drop-rate`` / ``corrupt-rate``: each datagram is hit with a per-direction probability, but never
  more than ``burst`` in a row (the runner: 30 % for handshakeloss/handshakecorruption, 2 % for
  transferloss/transfercorruption, bursts of at most 3). Corruption flips one random bit of one random
  byte of the UDP payload, header bytes included.
* ``droplist``: the datagrams at the given 1-based positions of a direction are dropped (the runner's
  amplificationlimit drops the client's 2nd to 7th).
* ``blackhole``: everything in both directions is dropped for ``blackhole_seconds``, starting once
  ``blackhole_after`` bytes were delivered to the client (the runner: 2 s off every 5 s on a 30 ms RTT
  link; one blackout here, placed by bytes so it always falls mid-transfer).
* The runner's link is 1500-byte Ethernet: with ``max_datagram`` set, a larger UDP payload is dropped
  as a router would drop it (PMTU probes beyond it get lost), counted apart as ``oversized``.

Randomness comes from one ``random.Random`` per direction seeded with ``seed`` and the direction, so the
n-th datagram of a direction meets the same fate in every run with that seed: a failing run is replayed
with its seed (``python -m interop.run --seed N``). Delay, bandwidth and queues are not emulated.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

Direction = Literal["to_server", "to_client"]
Fate = Literal["delivered", "dropped", "corrupted", "blackholed", "oversized"]

DIRECTIONS: Final[tuple[Direction, Direction]] = ("to_server", "to_client")
ETHERNET_UDP_PAYLOAD: Final = 1500 - 20 - 8
"""The largest UDP payload of an IPv4 packet on a 1500-byte MTU link."""


@dataclass(frozen=True)
class Impairment:
    """What the link does to datagrams; every field off by default. Rates are probabilities (0..1)."""

    drop_to_server: float = 0.0
    drop_to_client: float = 0.0
    corrupt_to_server: float = 0.0
    corrupt_to_client: float = 0.0
    burst: int = 3
    """At most this many datagrams of one direction hit (dropped or corrupted) in a row."""
    drop_list_to_server: tuple[int, ...] = ()
    """1-based positions of the client's datagrams to drop (the runner's droplist)."""
    drop_list_to_client: tuple[int, ...] = ()
    blackhole_after: int | None = None
    """Start the blackout once this many bytes were delivered to the client."""
    blackhole_seconds: float = 0.0
    max_datagram: int | None = ETHERNET_UDP_PAYLOAD
    """Drop UDP payloads larger than this (None: no limit, as on loopback)."""

    def rate(self, direction: Direction) -> tuple[float, float]:
        """(drop, corrupt) probability for ``direction``."""
        if direction == "to_server":
            return self.drop_to_server, self.corrupt_to_server
        return self.drop_to_client, self.corrupt_to_client

    def drop_list(self, direction: Direction) -> tuple[int, ...]:
        """The droplist positions for ``direction``."""
        return self.drop_list_to_server if direction == "to_server" else self.drop_list_to_client


class Impairer:
    """One run of an :class:`Impairment`: decides each datagram's fate and counts them per direction."""

    def __init__(
        self, impairment: Impairment, seed: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.impairment = impairment
        self.seed = seed
        self.fates: dict[Direction, Counter[Fate]] = {d: Counter() for d in DIRECTIONS}
        """Datagrams per fate, per direction."""
        self.blackhole_started: float | None = None
        """When the blackout began (``clock`` time), None until then."""
        self.blackhole_ended = False
        self.delivered_after_blackhole: Counter[Direction] = Counter()
        """Datagrams delivered per direction once the blackout was over."""
        self.last_fate: Fate = "delivered"
        """The fate :meth:`apply` gave the latest datagram."""
        self._clock = clock
        self._random = {d: random.Random(f"{seed}/{d}") for d in DIRECTIONS}
        self._flips = {d: random.Random(f"{seed}/{d}/flip") for d in DIRECTIONS}
        self._offered: Counter[Direction] = Counter()
        self._in_a_row: Counter[Direction] = Counter()
        self._delivered_to_client = 0

    def count(self, direction: Direction, fate: Fate) -> int:
        """Datagrams of ``direction`` that met ``fate``."""
        return self.fates[direction][fate]

    def apply(self, direction: Direction, data: bytes) -> bytes | None:
        """What to deliver for ``data`` travelling in ``direction``: it, a corrupted copy, or None."""
        self._offered[direction] += 1
        fate, delivered = self._decide(direction, data)
        self.fates[direction][fate] += 1
        self.last_fate = fate
        if fate == "delivered" and self.blackhole_ended:
            self.delivered_after_blackhole[direction] += 1
        if delivered is not None and direction == "to_client":
            self._delivered_to_client += len(delivered)
        return delivered

    def summary(self) -> dict[str, int]:
        """The seed and the non-zero counts as a flat JSON-friendly dict (``to_server_dropped``, ...)."""
        result = {"seed": self.seed}
        for direction in DIRECTIONS:
            for fate, n in sorted(self.fates[direction].items()):
                result[f"{direction}_{fate}"] = n
        return result

    def _blackhole(self) -> bool:
        spec = self.impairment
        if spec.blackhole_after is None or self.blackhole_ended:
            return False
        now = self._clock()
        if self.blackhole_started is None:
            if self._delivered_to_client < spec.blackhole_after:
                return False
            self.blackhole_started = now
        if now - self.blackhole_started < spec.blackhole_seconds:
            return True
        self.blackhole_ended = True
        return False

    def _decide(self, direction: Direction, data: bytes) -> tuple[Fate, bytes | None]:
        spec = self.impairment
        draw = self._random[direction].random()  # one draw per datagram: the n-th one's fate depends on n
        if self._blackhole():
            return "blackholed", None
        if self._offered[direction] in spec.drop_list(direction):
            return "dropped", None
        if spec.max_datagram is not None and len(data) > spec.max_datagram:
            return "oversized", None
        drop, corrupt = spec.rate(direction)
        if draw < drop + corrupt and self._in_a_row[direction] < spec.burst:
            self._in_a_row[direction] += 1
            if draw < drop:
                return "dropped", None
            return "corrupted", flip_bit(data, self._flips[direction])
        self._in_a_row[direction] = 0
        return "delivered", data


def flip_bit(data: bytes, rng: random.Random) -> bytes:
    """``data`` with one random bit of one random byte inverted."""
    if not data:
        return data
    position = rng.randrange(len(data))
    corrupted = bytearray(data)
    corrupted[position] ^= 1 << rng.randrange(8)
    return bytes(corrupted)


__all__ = ["DIRECTIONS", "ETHERNET_UDP_PAYLOAD", "Fate", "Impairer", "Impairment", "flip_bit"]
