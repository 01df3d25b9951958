"""RangeSet: a sorted set of disjoint half-open integer ranges.

Used for received packet numbers (ACK generation), acknowledged stream offsets, and reassembly
bookkeeping. Ranges are kept merged (adjacent ranges coalesce) in ascending order.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator


class RangeSet:
    """Disjoint, merged, ascending half-open ranges ``[start, stop)``."""

    __slots__ = ("_starts", "_stops")

    def __init__(self, ranges: Iterator[tuple[int, int]] | list[tuple[int, int]] | None = None) -> None:
        self._starts: list[int] = []
        self._stops: list[int] = []
        if ranges:
            for start, stop in ranges:
                self.add(start, stop)

    def __len__(self) -> int:
        return len(self._starts)

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self._starts, self._stops, strict=True)

    def __getitem__(self, index: int) -> tuple[int, int]:
        return self._starts[index], self._stops[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeSet):
            return NotImplemented
        return self._starts == other._starts and self._stops == other._stops

    def __repr__(self) -> str:
        return f"RangeSet({list(self)!r})"

    def __contains__(self, value: int) -> bool:
        index = bisect_left(self._stops, value + 1)
        return index < len(self._starts) and self._starts[index] <= value

    def add(self, start: int, stop: int | None = None) -> None:
        """Add ``[start, stop)`` (or the single value ``start``), merging with neighbours."""
        if stop is None:
            stop = start + 1
        if stop <= start:
            return
        starts, stops = self._starts, self._stops
        # Fast path: appending at or just past the end (in-order packet numbers, in-order data).
        if not starts or start > stops[-1]:
            starts.append(start)
            stops.append(stop)
            return
        if start >= starts[-1]:
            if stop > stops[-1]:
                stops[-1] = stop
            return
        first = bisect_left(stops, start)  # first range whose stop >= start (touching or overlapping)
        last = first
        while last < len(starts) and starts[last] <= stop:
            last += 1
        if first == last:
            starts.insert(first, start)
            stops.insert(first, stop)
            return
        new_start = min(start, starts[first])
        new_stop = max(stop, stops[last - 1])
        starts[first:last] = [new_start]
        stops[first:last] = [new_stop]

    def subtract(self, start: int, stop: int) -> None:
        """Remove ``[start, stop)`` from the set."""
        if stop <= start:
            return
        out_starts: list[int] = []
        out_stops: list[int] = []
        for low, high in zip(self._starts, self._stops, strict=True):
            if high <= start or low >= stop:
                out_starts.append(low)
                out_stops.append(high)
                continue
            if low < start:
                out_starts.append(low)
                out_stops.append(start)
            if high > stop:
                out_starts.append(stop)
                out_stops.append(high)
        self._starts, self._stops = out_starts, out_stops

    def clear(self) -> None:
        """Remove every range."""
        self._starts.clear()
        self._stops.clear()

    def shift(self) -> tuple[int, int]:
        """Remove and return the lowest range.

        Raises:
            IndexError: if the set is empty (a programming error, not a wire condition).
        """
        return self._starts.pop(0), self._stops.pop(0)

    def newest_inclusive(self, limit: int) -> tuple[tuple[int, int], ...]:
        """The ``limit`` highest ranges as inclusive ``(first, last)`` pairs, highest first (the ranges
        of an ACK frame, RFC 9000 §19.3); () when the set is empty."""
        starts, stops = self._starts, self._stops
        count = len(starts)
        if count == 1:  # (the usual case: one call, one tuple)
            return ((starts[0], stops[0] - 1),)
        out: list[tuple[int, int]] = []
        low = count - limit if count > limit else 0
        for index in range(count - 1, low - 1, -1):
            out.append((starts[index], stops[index] - 1))
        return tuple(out)

    def bounds(self) -> tuple[int, int]:
        """Return ``(lowest start, highest stop)``; the set must not be empty."""
        return self._starts[0], self._stops[-1]

    def covers(self, start: int, stop: int) -> bool:
        """True if ``[start, stop)`` lies entirely inside one range."""
        if stop <= start:
            return True
        index = bisect_left(self._stops, start + 1)
        return index < len(self._starts) and self._starts[index] <= start and stop <= self._stops[index]

    def trim_below(self, value: int) -> None:
        """Drop everything below ``value`` (keeps memory bounded for old packet numbers)."""
        while self._starts and self._stops[0] <= value:
            self._starts.pop(0)
            self._stops.pop(0)
        if self._starts and self._starts[0] < value:
            self._starts[0] = value
