"""Datagram Packetization Layer PMTU Discovery (RFC 9000 §14.3, RFC 8899) for one path.

Owns the search for the largest UDP payload the path carries: it starts from the base size every QUIC
path supports, probes larger sizes with padded PING packets once the handshake is confirmed, raises the
usable size when a probe is acknowledged and lowers its ceiling after repeated probe losses. It does not
send anything itself: the connection asks :meth:`PmtuDiscovery.probe_size` when it may send and reports
each probe's fate, and the fate of every datagram larger than the base size (a PMTU black hole,
RFC 8899 §4.3). :attr:`PmtuDiscovery.current` is the size the path's datagrams are built with.
Probe losses are not congestion signals (RFC 9000 §14.4); the caller keeps them out of the congestion
controller.

Search: climb a ladder of common sizes (Ethernet, jumbo, ...) while probes succeed, then bisect between
the last good size and the first failing one, down to :data:`SEARCH_GRANULARITY` bytes. When the next
bisection step would be smaller than that, only the ceiling itself is worth a probe, and only when it is
a limit the peer declared: a ceiling just below a size that failed would fail too, and probing it would
walk down one byte at a time.
"""

from __future__ import annotations

import weakref
from math import inf
from typing import Final

from rudp.quic.delivery import AckedOnce

BLACK_HOLE_LOSSES: Final = 3
"""Consecutive losses of datagrams above the base size (none acknowledged between) that mean the path
no longer carries them (RFC 8899 §4.3)."""
MAX_PROBE_ATTEMPTS: Final = 3
"""Consecutive losses of one probe size before it is taken as too large (RFC 8899 MAX_PROBES)."""
SEARCH_GRANULARITY: Final = 64
"""The search stops when the ceiling is within this many bytes of the confirmed size."""
LADDER: Final = (1452, 4096, 8952, 16384, 32768, 65527)
"""Probe sizes tried in turn: IPv4 Ethernet (1500 - 48), then larger common links (loopback, jumbo)."""


class PmtuDiscovery:
    """The PMTU search state of one path."""

    __slots__ = (
        "__weakref__",  # (large_handler refers to its search weakly)
        "_attempts",
        "_ceiling",
        "_ceiling_failed",
        "_in_flight",
        "_large_losses",
        "_retry_at",
        "_retry_delay",
        "base",
        "current",
        "enabled",
        "large_handler",
        "next_probe_at",
        "probes_sent",
        "searching",
    )

    def __init__(self, base_size: int, ceiling: int, *, enabled: bool = True) -> None:
        self.base = base_size
        """The size every path carries (RFC 9000 §14: at least 1200), the fallback after a black hole."""
        self.current = base_size
        """The largest datagram size confirmed on the path (the size to send with)."""
        self._large_losses = 0
        self.enabled = enabled and ceiling > base_size
        self._ceiling = ceiling
        self._ceiling_failed = False  # True when the ceiling is one byte below a size that failed
        self._in_flight: int | None = None
        self._attempts = 0
        self._retry_at = 0.0
        self._retry_delay: float | None = None  # a loss's wait, counted from the next probe_size()
        self.probes_sent = 0
        # :meth:`_settle` at the start, inline (per path): with the size at the base and no failure
        # mark, :meth:`_next_size` finds a size (a candidate, else the ceiling) whenever the ceiling
        # is a granularity above the base; nothing is in flight or waits for a retry.
        self.searching = self.enabled and ceiling - base_size >= SEARCH_GRANULARITY
        """True while larger sizes remain to be tried (an attribute, read per batch: kept by every
        change of the size or the ceiling)."""
        self.large_handler = AckedOnce(_on_large_datagram, weakref.ref(self))  # (weak: no cycle)
        """The delivery handler of every datagram larger than the base size (:meth:`on_large_datagram`):
        an :class:`~rudp.quic.delivery.AckedOnce` one (an acknowledgment resets the count of losses in
        a row, RFC 8899 §4.3, the same once or many times), so an ACK of many large datagrams calls it
        once, not once per datagram."""
        self.next_probe_at = 0.0 if self.searching else inf
        """Before this time :meth:`probe_size` answers None and changes nothing (the search is over, a
        probe is in flight or a lost one's retry waits): the sender need not ask it (an attribute,
        read per batch while the search goes on; 0 when it must be asked)."""

    def _settle(self) -> None:
        """After every change of the size, the ceiling or its failure mark: :attr:`searching`."""
        self.searching = self.enabled and self._next_size() is not None
        self._schedule()

    def _schedule(self) -> None:
        """After every change of what :meth:`probe_size` reads: :attr:`next_probe_at`."""
        if self._retry_delay is not None:
            self.next_probe_at = 0.0  # the retry's wait starts at the next probe_size() call
        elif not self.searching or self._in_flight is not None:
            self.next_probe_at = inf
        else:
            self.next_probe_at = self._retry_at

    def set_ceiling(self, ceiling: int) -> None:
        """Lower the upper bound (e.g. to the peer's max_udp_payload_size)."""
        if ceiling < self._ceiling:
            self._ceiling = ceiling
            self._ceiling_failed = False
            self._settle()

    def limit_to(self, size: int) -> None:
        """The peer accepts no larger datagrams (its max_udp_payload_size, RFC 9000 §18.2): lower the
        base, the current size and the ceiling to ``size``."""
        self.base = min(self.base, size)
        self.current = min(self.current, size)
        if size < self._ceiling:  # (set_ceiling, inline; the size only falls with the ceiling)
            self._ceiling = size
            self._ceiling_failed = False
            self._settle()

    def on_large_datagram(self, acked: bool) -> None:
        """The fate of a datagram larger than the base size: after :data:`BLACK_HOLE_LOSSES` losses in
        a row, fall back to the base size (RFC 8899 §4.3)."""
        if acked:
            self._large_losses = 0
            return
        self._large_losses += 1
        if self._large_losses >= BLACK_HOLE_LOSSES and self.current > self.base:
            self.on_black_hole()

    def _candidate(self) -> int:
        for size in LADDER:
            if self.current < size <= self._ceiling:
                return size
        return (self.current + self._ceiling + 1) // 2

    def _next_size(self) -> int | None:
        """The next size to probe, None once the search is over."""
        if self._ceiling - self.current < SEARCH_GRANULARITY:
            return None
        size = self._candidate()
        if size - self.current >= SEARCH_GRANULARITY:
            return size
        # A step below the granularity: the ceiling is the last candidate, unless it sits just below a
        # size that failed (it would fail too, and the next ceiling would be one byte lower again).
        return None if self._ceiling_failed else self._ceiling

    def probe_size(self, now: float) -> int | None:
        """The size of the probe to send now, or None (one probe at a time, none after the search)."""
        if self._retry_delay is not None:
            self._retry_at, self._retry_delay = now + self._retry_delay, None
        size = self._next_size() if self.enabled else None
        if size is None or self._in_flight is not None or now < self._retry_at:
            self._schedule()
            return None
        self._in_flight = size
        self.probes_sent += 1
        self.next_probe_at = inf  # (one probe at a time)
        return size

    def cancel_probe(self, size: int) -> None:
        """The probe :meth:`probe_size` chose could not be sent after all (e.g. no congestion window)."""
        if self._in_flight == size:
            self._in_flight = None
            self.probes_sent -= 1
            self._schedule()

    def on_probe_acked(self, size: int) -> None:
        """A probe of ``size`` bytes arrived: the path carries it."""
        if self._in_flight == size:
            self._in_flight = None
        self._attempts = 0
        self.current = max(self.current, size)
        self._settle()  # (which schedules)

    def on_probe_lost(self, size: int, retry_delay: float) -> None:
        """A probe was declared lost: retry it ``retry_delay`` seconds after the next :meth:`probe_size`
        call (the connection's next chance to send, so no clock is needed here), or after
        :data:`MAX_PROBE_ATTEMPTS` lower the ceiling and go on at once."""
        if self._in_flight == size:
            self._in_flight = None
        self._attempts += 1
        self._retry_delay = retry_delay
        if self._attempts >= MAX_PROBE_ATTEMPTS:
            self._attempts = 0
            self._ceiling = size - 1
            self._ceiling_failed = True
            self._retry_delay = None
            self._retry_at = 0.0
            self._settle()
        else:
            self._schedule()

    def on_black_hole(self, base_size: int | None = None) -> None:
        """Packets of the current size stopped getting through (RFC 8899 §4.3): fall back to the base
        size and search again below the size that failed."""
        base = self.base if base_size is None else base_size
        self._ceiling = max(base, self.current - 1)
        self._ceiling_failed = True
        self.current = base
        self._in_flight = None
        self._attempts = 0
        self._large_losses = 0
        self._settle()


def _on_large_datagram(ref: weakref.ref[PmtuDiscovery], acked: bool) -> None:
    """:meth:`PmtuDiscovery.on_large_datagram` of a PMTU search still alive (a packet in flight can
    outlive an abandoned path's search)."""
    pmtud = ref()
    if pmtud is not None:
        pmtud.on_large_datagram(acked)
