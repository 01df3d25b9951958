"""Named connection timers (quinn's idea): one enum, one table, one earliest deadline."""

from __future__ import annotations

from enum import IntEnum


class Timer(IntEnum):
    """Every deadline a connection can have."""

    LOSS_DETECTION = 0
    """RFC 9002 loss detection / PTO."""
    ACK_DELAY = 1
    """A delayed ACK is due (RFC 9000 §13.2.1)."""
    IDLE = 2
    """Idle timeout (RFC 9000 §10.1)."""
    KEEPALIVE = 3
    """Send a PING to keep an idle connection open."""
    CLOSE = 4
    """End of the closing or draining period (RFC 9000 §10.2)."""
    PACING = 5
    """The pacer allows the next packet."""
    PATH_VALIDATION = 6
    """A path challenge timed out."""
    KEY_DISCARD = 7
    """Old 1-RTT read keys can be dropped after a key update (RFC 9001 §6.5)."""


TIMER_COUNT = len(Timer)


def earliest_deadline(deadlines: list[float | None]) -> float | None:
    """The earliest of ``deadlines`` that is set, or None (a connection's next timer, asked after
    every flush: a plain loop, no table built)."""
    earliest = None
    for deadline in deadlines:
        if deadline is not None and (earliest is None or deadline < earliest):
            earliest = deadline
    return earliest


class TimerTable:
    """Deadlines by :class:`Timer`; ``None`` means unset."""

    __slots__ = ("_deadlines",)

    def __init__(self, deadlines: list[float | None] | None = None) -> None:
        """An empty table, or one holding ``deadlines`` (one per :class:`Timer`, in enum order)."""
        if deadlines is None:
            deadlines = [None] * TIMER_COUNT
        elif len(deadlines) != TIMER_COUNT:
            raise ValueError(f"{len(deadlines)} deadlines for {TIMER_COUNT} timers")
        self._deadlines: list[float | None] = deadlines

    def set(self, timer: Timer, deadline: float | None) -> None:
        """Arm (or with ``None`` disarm) ``timer``."""
        self._deadlines[timer] = deadline

    def get(self, timer: Timer) -> float | None:
        """The deadline of ``timer``, or None."""
        return self._deadlines[timer]

    def stop(self, timer: Timer) -> None:
        """Disarm ``timer``."""
        self._deadlines[timer] = None

    def clear(self) -> None:
        """Disarm every timer."""
        self._deadlines = [None] * TIMER_COUNT

    def next_deadline(self) -> float | None:
        """The earliest armed deadline, or None."""
        return earliest_deadline(self._deadlines)

    def expired(self, now: float) -> list[Timer]:
        """Timers whose deadline is at or before ``now``, disarmed and returned in enum order."""
        fired = []
        for timer in Timer:
            deadline = self._deadlines[timer]
            if deadline is not None and deadline <= now:
                self._deadlines[timer] = None
                fired.append(timer)
        return fired
