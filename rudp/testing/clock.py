"""A virtual clock for deterministic tests of the sans-IO core.

The sans-IO connections take ``now`` as an argument on every input and output, so a test can run
them on a clock that only moves when the test says so. :class:`VirtualClock` is that clock: it starts
at a chosen value and moves forward by explicit steps, never backwards. Nothing here sleeps.
"""

from __future__ import annotations

from rudp.errors import ConfigError

__all__ = ["VirtualClock"]


class VirtualClock:
    """A monotonic clock in float seconds that advances only when told to.

    Starting away from zero (for example at ``1000.0``) helps catch code that confuses an absolute
    time with a duration.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    @property
    def now(self) -> float:
        """The current virtual time, in seconds."""
        return self._now

    def __call__(self) -> float:
        """Return :attr:`now`, so the clock can stand in for a ``time.monotonic``-like callable."""
        return self._now

    def advance(self, dt: float) -> float:
        """Move the clock forward by ``dt`` seconds (``dt >= 0``) and return the new time."""
        if dt < 0:
            raise ConfigError(f"VirtualClock cannot go backwards (advance by {dt!r})")
        self._now += dt
        return self._now

    def advance_to(self, t: float) -> float:
        """Move the clock forward to ``t``; a ``t`` in the past is an error. Returns the new time."""
        if t < self._now:
            raise ConfigError(f"VirtualClock cannot go backwards (from {self._now!r} to {t!r})")
        self._now = float(t)
        return self._now

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now!r})"
