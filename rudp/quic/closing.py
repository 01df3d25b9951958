"""The end of a connection (RFC 9000 §10.2): the CONNECTION_CLOSE we sent and when to send it again,
and when the closing or draining period is over.

Owns :class:`Closing`. The connection's lifecycle state (handshake, established, closing, draining,
closed) stays with the connection; this object only remembers what closing needs. It builds no packet
and reads no clock.
"""

from __future__ import annotations

from rudp.codec.frames import ConnectionClose


class Closing:
    """What a closing or draining connection keeps (RFC 9000 §10.2.1, §10.2.2)."""

    __slots__ = ("_due", "_frame", "_received", "period_pending", "until")

    def __init__(self) -> None:
        self._frame: ConnectionClose | None = None
        self._due = False
        self._received = 0
        self.until: float | None = None
        """End of the closing or draining period (three PTOs, RFC 9000 §10.2), or None."""
        self.period_pending = False
        """True between a close without the time and the next call that carries it."""

    def start(self, frame: ConnectionClose | None) -> None:
        """Closing with ``frame`` (sent at once), or draining (``frame`` None: we send nothing); the
        period's end comes with :meth:`begin_period`. A later call keeps the first frame: a connection
        closes once."""
        if frame is not None and self._frame is None:
            self._frame = frame
            self._due = True
        self.until = None
        self.period_pending = True

    def begin_period(self, until: float) -> None:
        """The closing or draining period lasts until ``until`` (RFC 9000 §10.2)."""
        self.until = until
        self.period_pending = False

    def on_datagram_received(self) -> None:
        """A datagram arrived while closing: answer it with the CONNECTION_CLOSE again, but only for
        the 1st, 2nd, 4th, 8th... datagram, so a peer cannot make us send much (RFC 9000 §10.2.1)."""
        self._received += 1
        if self._received & (self._received - 1) == 0:
            self._due = True

    def take_frame(self) -> ConnectionClose | None:
        """The CONNECTION_CLOSE to send now, if one is due (then it is no longer due)."""
        if not self._due or self._frame is None:
            return None
        self._due = False
        return self._frame
