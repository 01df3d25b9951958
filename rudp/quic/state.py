"""The lifecycle of a QUIC connection (RFC 9000 §10): its state, why it ended, and its end.

Owns :class:`State` and :class:`Lifecycle`: the one writer of the lifecycle state (handshake,
established, closing, draining, closed), of the cause of the end (the
:class:`~rudp.quic.events.ConnectionTerminated` event, emitted once) and, through
:class:`~rudp.quic.closing.Closing`, of the CONNECTION_CLOSE we keep sending and of the end of the
closing or draining period. It builds no packet and reads no clock; the PTO that sets the length of
the closing period comes from loss recovery (``pto``).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Final

from rudp.codec.frames import ConnectionClose
from rudp.errors import ConnectionClosed, TLSAlert, TransportError, TransportErrorCode
from rudp.quic.closing import Closing
from rudp.quic.events import ConnectionTerminated, Event
from rudp.tls.alerts import AlertDescription

MIN_SENDABLE_BYTES = 64
"""Below this anti-amplification allowance no useful packet fits (header, AEAD tag, a few frames)."""

CLOSING_PTOS = 3
"""RFC 9000 §10.2: the closing and draining periods last three times the current PTO."""


class State(Enum):
    """Connection lifecycle (RFC 9000 §10)."""

    HANDSHAKE = "handshake"
    ESTABLISHED = "established"
    CLOSING = "closing"
    """We sent CONNECTION_CLOSE; answering late packets with it, rate-limited (§10.2.1)."""
    DRAINING = "draining"
    """The peer closed; we send nothing (§10.2.2)."""
    CLOSED = "closed"


# Enum members bound once: in Python 3.11 the enum metaclass's __getattr__ makes each ``State.X``
# lookup cost about four global loads, and these are read for every datagram.
_ACTIVE = (State.HANDSHAKE, State.ESTABLISHED)
_ESTABLISHED = State.ESTABLISHED
_NOT_CLOSING: Final = Closing()
"""The :class:`Closing` of every connection not closing (read only: no period, no frame to send)."""


class Lifecycle:
    """The state of one connection and how it ends (see the module docstring)."""

    __slots__ = ("_emit", "_pto", "cause", "closing", "state")

    def __init__(self, emit: Callable[[Event], None], pto: Callable[[], float]) -> None:
        self._emit = emit
        self._pto = pto
        self.state = State.HANDSHAKE
        self.cause: ConnectionTerminated | None = None
        """Why the connection ended (None while it is alive)."""
        self.closing = _NOT_CLOSING
        """What closing keeps; until the connection ends, one shared object that nothing changes
        (:meth:`terminate` gives the connection its own before closing or draining)."""

    @property
    def is_active(self) -> bool:
        """True while handshaking or established (not closing, draining or closed)."""
        return self.state in _ACTIVE

    @property
    def established(self) -> bool:
        """True once the handshake completed and until the connection closes."""
        return self.state is _ESTABLISHED

    def check_open(self) -> None:
        """Raise :class:`~rudp.errors.ConnectionClosed` unless the connection is still active."""
        if self.state in _ACTIVE:  # is_active, inline (every stream command asks)
            return
        cause = self.cause
        if cause is not None:
            raise ConnectionClosed(
                cause.code, cause.reason, by_peer=cause.by_peer, application=cause.application
            )
        raise ConnectionClosed(0, "connection closed")

    def establish(self) -> None:
        """The handshake completed (RFC 9000 §10: the connection is established)."""
        if self.state is State.HANDSHAKE:
            self.state = State.ESTABLISHED

    def closed(self) -> None:
        """The closing or draining period is over (RFC 9000 §10.2): nothing more to do."""
        self.state = State.CLOSED

    def on_local_error(self, exc: TransportError, now: float) -> None:
        """A protocol violation by the peer (or a TLS failure): close with its code (RFC 9000 §10.2).

        The application gets the full reason; the peer gets the code and, for a TLS failure, only the
        alert's name: our verdict on its certificate, our trust store and local details (file paths in
        an internal error) are none of an unauthenticated peer's business.
        """
        _drop_frames(exc)
        wire_reason = _alert_name(exc.code) if isinstance(exc, TLSAlert) else exc.reason
        frame = ConnectionClose(exc.code, wire_reason.encode()[:1000], exc.frame_type, False)
        event = ConnectionTerminated(exc.code, exc.reason, False, False, exc.frame_type)
        self.terminate(event, now, state=State.CLOSING, frame=frame)

    def close(self, frame: ConnectionClose, now: float | None) -> None:
        """Our application closes with ``frame``. Without ``now`` the closing period starts at the next
        call that carries the time (:meth:`tick`): the connection stores no clock of its own."""
        reason = frame.reason.decode("utf-8", "replace")
        event = ConnectionTerminated(frame.error_code, reason, False, frame.application, frame.frame_type)
        self.terminate(event, now, state=State.CLOSING, frame=frame)

    def on_peer_close(self, frame: ConnectionClose, now: float) -> None:
        """The peer sent CONNECTION_CLOSE: drain (RFC 9000 §10.2.2)."""
        reason = frame.reason.decode("utf-8", "replace")
        event = ConnectionTerminated(frame.error_code, reason, True, frame.application, frame.frame_type)
        self.terminate(event, now, state=State.DRAINING)

    def terminate(
        self,
        event: ConnectionTerminated,
        now: float | None,
        *,
        state: State = State.CLOSED,
        frame: ConnectionClose | None = None,
    ) -> None:
        """End the connection: report ``event`` (the first cause only) and enter ``state``."""
        if self.cause is None:
            self.cause = event
            self._emit(event)
        self.state = state
        if self.closing is _NOT_CLOSING:
            self.closing = Closing()
        self.closing.start(frame)
        if state is not State.CLOSED and now is not None:
            self.closing.begin_period(now + CLOSING_PTOS * self._pto())

    def tick(self, now: float) -> None:
        """Every input and output that carries the time calls this first: a close requested without
        the time starts its closing period now."""
        if self.closing.period_pending and self.state in (State.CLOSING, State.DRAINING):
            self.closing.begin_period(now + CLOSING_PTOS * self._pto())


def _alert_name(code: int) -> str:
    """ "TLS alert bad certificate" for CRYPTO_ERROR 0x12a (RFC 9001 §4.8); the number if unknown."""
    alert = code - TransportErrorCode.CRYPTO_ERROR
    try:
        name = AlertDescription(alert).name.replace("_", " ")
    except ValueError:
        name = str(alert)
    return f"TLS alert {name}"


__all__ = ["MIN_SENDABLE_BYTES", "Lifecycle", "State"]


def _drop_frames(exc: BaseException) -> None:
    """Forget the tracebacks of ``exc`` and the exceptions it chains: the error lives on (the TLS
    engine keeps it to raise again), and its frames refer to the objects that keep it, a reference
    cycle per failed connection that only a garbage collection would free. Only the code and the
    reason reach the application (:class:`~rudp.quic.events.ConnectionTerminated`)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__
