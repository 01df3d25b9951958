"""The deadlines of one connection, as their owners report them (the connection's timer).

Owns :class:`ConnectionDeadlines`, which owns no deadline: on every call it asks each subsystem for its
own (the closing period, loss detection and PTO, delayed ACKs, the idle timeout and keep-alive, the
pacer, path validation, the old 1-RTT read keys) and stores none of the answers, without side effects,
so no code elsewhere arms or forgets a timer. The connection asks it after every flush (its
``next_timer``: the earliest, :meth:`ConnectionDeadlines.earliest`) and when a timer fires
(which are due, :class:`~rudp.quic.timers.TimerTable`).
"""

from __future__ import annotations

from rudp.config import Config
from rudp.quic.handshake import Handshake
from rudp.quic.liveness import Liveness
from rudp.quic.paths import Paths
from rudp.quic.recovery import LossRecovery
from rudp.quic.sending import Sender
from rudp.quic.spaces import PacketSpaces
from rudp.quic.state import MIN_SENDABLE_BYTES, Lifecycle, State
from rudp.quic.timers import TIMER_COUNT, Timer

# Enum members bound once (read after every flush): in Python 3.11 the enum metaclass's __getattr__
# makes each ``Timer.X`` or ``State.X`` lookup cost about four global loads.
_CLOSED, _HANDSHAKE, _ESTABLISHED = State.CLOSED, State.HANDSHAKE, State.ESTABLISHED
_T_CLOSE, _T_LOSS_DETECTION, _T_ACK_DELAY, _T_IDLE = (
    Timer.CLOSE,
    Timer.LOSS_DETECTION,
    Timer.ACK_DELAY,
    Timer.IDLE,
)
_T_KEEPALIVE, _T_PACING, _T_PATH_VALIDATION = Timer.KEEPALIVE, Timer.PACING, Timer.PATH_VALIDATION
_T_KEY_DISCARD = Timer.KEY_DISCARD


class ConnectionDeadlines:
    """Every timer's deadline of one connection, asked of its owners on each call (see the module
    docstring)."""

    __slots__ = (
        "_config",
        "_handshake",
        "_lifecycle",
        "_liveness",
        "_paths",
        "_recovery",
        "_sender",
        "_spaces",
    )

    def __init__(
        self,
        config: Config,
        *,
        lifecycle: Lifecycle,
        recovery: LossRecovery,
        spaces: PacketSpaces,
        handshake: Handshake,
        liveness: Liveness,
        paths: Paths,
        sender: Sender,
    ) -> None:
        self._config = config
        self._lifecycle = lifecycle
        self._recovery = recovery
        self._spaces = spaces
        self._handshake = handshake
        self._liveness = liveness
        self._paths = paths
        self._sender = sender

    def collect(self) -> list[float | None]:
        """Every timer's deadline, by :class:`~rudp.quic.timers.Timer` (None: unset; all unset once
        the connection is closed)."""
        deadlines: list[float | None] = [None] * TIMER_COUNT  # filled in place (per call)
        lifecycle = self._lifecycle
        state = lifecycle.state  # (the state read once: Lifecycle.is_active and .established)
        if state is _CLOSED:
            return deadlines
        deadlines[_T_CLOSE] = lifecycle.closing.until
        if state is not _ESTABLISHED and state is not _HANDSHAKE:
            return deadlines  # closing or draining: only the end of the period
        # RFC 9002 §6.2.2.1: a server blocked by the anti-amplification limit (too little left to
        # send anything) arms no PTO (nor an ACK timer it could not act on); the peer's next datagram
        # unblocks it. A validated path has no limit (RFC 9000 §8.1): asked only before validation.
        current = self._paths.current
        allowance = None if current.validated else current.datagram_allowance()
        if allowance is None or allowance >= MIN_SENDABLE_BYTES:
            deadlines[_T_LOSS_DETECTION] = self._recovery.loss_timer()[0]
            ack_at = None
            for space in self._spaces.values():  # (a plain loop: asked after every flush)
                at = space.ack.ack_deadline()
                if at is not None and (ack_at is None or at < ack_at):
                    ack_at = at
            deadlines[_T_ACK_DELAY] = ack_at
        config = self._config
        # RFC 9000 §10.1: the idle timeout is at least three PTOs (the PTO computed once here).
        idle_timeout = self._handshake.idle_timeout(config.idle_timeout, self._recovery.pto())
        keepalive = config.keepalive_interval if state is _ESTABLISHED else None
        deadlines[_T_IDLE], deadlines[_T_KEEPALIVE] = self._liveness.deadlines(idle_timeout, keepalive)
        deadlines[_T_PACING] = self._sender.next_deadline()
        deadlines[_T_PATH_VALIDATION] = self._paths.next_deadline()
        deadlines[_T_KEY_DISCARD] = self._spaces.phase.previous_read_until
        return deadlines

    def earliest(self) -> float | None:
        """The earliest deadline :meth:`collect` gives, or None: the connection's next timer, asked
        after every flush (an endpoint's, on each flush of a receiver that sends only ACKs, issue 13).
        The same questions as :meth:`collect`, in the same order, folded into a minimum as they are
        answered (no list; equal to ``earliest_deadline(collect())``, which the tests check)."""
        lifecycle = self._lifecycle
        state = lifecycle.state
        if state is _CLOSED:
            return None
        earliest = lifecycle.closing.until
        if state is not _ESTABLISHED and state is not _HANDSHAKE:
            return earliest  # closing or draining: only the end of the period
        recovery = self._recovery
        current = self._paths.current
        allowance = None if current.validated else current.datagram_allowance()
        if allowance is None or allowance >= MIN_SENDABLE_BYTES:  # RFC 9002 §6.2.2.1 (see collect)
            at = recovery.loss_timer()[0]
            if at is not None and (earliest is None or at < earliest):
                earliest = at
            for space in self._spaces.values():  # RFC 9000 §13.2.1: the delayed-ACK timers
                at = space.ack.ack_deadline()
                if at is not None and (earliest is None or at < earliest):
                    earliest = at
        config = self._config
        # RFC 9000 §10.1: Handshake.idle_timeout, inline: the smaller of the two non-zero values, at
        # least three PTOs (the test compares the two).
        limit = config.idle_timeout
        peer = self._handshake.peer_idle_timeout
        if limit <= 0 or 0 < peer < limit:
            limit = peer
        idle_timeout: float | None = None
        if limit > 0:
            floor = 3 * recovery.pto()
            idle_timeout = limit if limit > floor else floor
        keepalive = config.keepalive_interval if state is _ESTABLISHED else None
        for at in self._liveness.deadlines(idle_timeout, keepalive):
            if at is not None and (earliest is None or at < earliest):
                earliest = at
        sender = self._sender
        for at in (
            sender.next_deadline() if sender.pacing_blocked else None,  # (RFC 9002 §7.7; usually not)
            self._paths.next_deadline(),
            self._spaces.phase.previous_read_until,
        ):
            if at is not None and (earliest is None or at < earliest):
                earliest = at
        return earliest


__all__ = ["ConnectionDeadlines"]
