"""The windowed filters of BBR's path model (draft-ietf-ccwg-bbr, "BBR.max_bw Max Filter" and
"BBR.extra_acked"), and the small deterministic random source its ProbeBW cycle needs.

Owns no decision: :mod:`rudp.quic.congestion.bbr` feeds the filters and reads their maxima. The sans-IO
core may not import :mod:`random`, so :class:`XorShift32` draws the randomised probe waits from a seed.
"""

from __future__ import annotations

from collections import deque


class MaxBwFilter:
    """A windowed maximum of delivery rates over the current and the previous ProbeBW cycle.

    draft-ietf-ccwg-bbr ("Updating the BBR.max_bw Max Filter"): MaxBwFilterLen is 2 cycles, and the
    window moves only when the state machine says a bandwidth probe's samples are over
    (:meth:`advance`), not on a clock, so the estimate lasts as long as the probing cycle.
    """

    __slots__ = ("current", "previous")

    def __init__(self) -> None:
        self.current = 0.0
        """Highest sample of the current cycle, bytes/s."""
        self.previous = 0.0
        """Highest sample of the previous cycle, bytes/s."""

    def update(self, rate: float) -> float:
        """Add a sample; returns the filter's maximum."""
        if rate > self.current:
            self.current = rate
        return self.maximum

    def advance(self) -> None:
        """Start a new cycle: the previous one's samples are forgotten."""
        self.previous = self.current
        self.current = 0.0

    @property
    def maximum(self) -> float:
        """max over both cycles, bytes/s."""
        return max(self.current, self.previous)


class WindowedMax:
    """Maximum of the values seen in the last ``window`` rounds (for BBR.extra_acked, 10 rounds).

    A monotonic deque of ``(round, value)``: amortised O(1) per update.
    """

    __slots__ = ("_entries", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self._entries: deque[tuple[int, float]] = deque()

    def update(self, value: float, round_count: int, window: int | None = None) -> float:
        """Add ``value`` seen in round ``round_count`` (non-decreasing); returns the maximum over the
        last ``window`` rounds (default :attr:`window`)."""
        span = self.window if window is None else window
        entries = self._entries
        while entries and entries[-1][1] <= value:
            entries.pop()
        entries.append((round_count, value))
        while entries[0][0] <= round_count - span:
            entries.popleft()
        return entries[0][1]

    def reset(self) -> None:
        """Forget everything."""
        self._entries.clear()


class XorShift32:
    """Marsaglia's xorshift32: deterministic, seedable draws for the randomised ProbeBW waits."""

    __slots__ = ("state",)

    def __init__(self, seed: int) -> None:
        self.state = (seed & 0xFFFFFFFF) or 0x9E3779B9

    def next_unit(self) -> float:
        """A draw in [0, 1)."""
        x = self.state
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.state = x
        return x / 4294967296.0
