"""When a handshake that has not completed gives up, without a clock (both roles).

Owns :class:`HandshakeDeadline` (when the handshake started, when the peer last showed progress in it)
and :data:`HANDSHAKE_LIFETIME`. A handshake gives up ``Config.handshake_timeout`` after the peer was
last heard making progress (a client: or one PTO after its last probe sent before that), and in any
case :data:`HANDSHAKE_LIFETIME` timeouts after it started.

Under heavy loss a live peer is heard seconds apart (each probe doubles the PTO, RFC 9002 §6.2.1; a
first RTT sample can be a delayed ACK's), so a deadline fixed at the start ended handshakes that were
about to complete (interop handshakeloss and handshakecorruption, issue 15). Talking alone must not
keep a handshake for ever either: Initial keys derive from the client's first Destination Connection
ID (RFC 9001 §5.2), so anyone who saw that Initial can forge more Initial packets in either direction.

Which packets show progress is :class:`~rudp.quic.handshake.Handshake`'s decision (it sees every
authenticated packet); this object records their time and answers with the deadline. The server
endpoint drops a server connection there (:mod:`rudp.quic.endpoint`); a client's adapter ends
``connect()`` there (:mod:`rudp.aio.client`).
"""

from __future__ import annotations

HANDSHAKE_LIFETIME = 3
"""A handshake still making progress is given up at most this many ``Config.handshake_timeout`` after
its start. It bounds what a forger of Initial packets can hold (a server's handshake slot, a client's
``connect()``) and leaves room for live peers: of 10,000 handshakes simulated at 30 % loss each way
(``benchmarks/handshake_deadline.py``), none that completed took more than 23 s. A rudp server with the
default Config forgets a handshake at this bound too, so a client waiting longer would wait for nothing."""

HANDSHAKE_PROBES = 5
"""Until the handshake is confirmed, an endpoint's PTO period stops at ``Config.handshake_timeout`` divided
by this, or twice the smallest RTT sample on a slower path (:mod:`rudp.quic.recovery`), so a peer that is
still there is heard at least this many times per ``handshake_timeout`` of silence that would give the
handshake up. With the defaults that is one probe flight (at most two datagrams, RFC 9002 §6.2.4) every 2
s: the exponential backoff guards the network against probes sent every few round trips under congestion
(§6.2.1), not against this; and the total is bounded by :data:`HANDSHAKE_LIFETIME` and the idle timeout.
Measured with ``benchmarks/handshake_deadline.py``: see the commit that set it."""


class HandshakeDeadline:
    """The deadline of one handshake (see the module docstring)."""

    __slots__ = ("_heard", "_started")

    def __init__(self, now: float) -> None:
        self._started = now
        self._heard = now

    def on_progress(self, now: float) -> None:
        """The peer showed progress at ``now`` (an authenticated packet that counts)."""
        if now > self._heard:
            self._heard = now

    def at(self, timeout: float, probed_at: float | None = None, answer_time: float = 0.0) -> float:
        """When the handshake gives up with ``Config.handshake_timeout`` = ``timeout``: ``timeout``
        after the last progress, or ``answer_time`` after a probe sent at ``probed_at`` before that (a
        probe sent just before the deadline deserves its answer; one sent after does not count, so
        this extends the deadline once, by at most ``answer_time``), never later than
        :data:`HANDSHAKE_LIFETIME` timeouts after the start."""
        silence = self._heard + timeout
        if probed_at is not None and probed_at < silence:
            silence = max(silence, probed_at + answer_time)
        return min(silence, self._started + HANDSHAKE_LIFETIME * timeout)
