"""Proportional Rate Reduction (RFC 6937) for window-based controllers during a recovery period.

Owns the PRR counters of one recovery period: ``prr_delivered`` (bytes acknowledged since it began),
``prr_out`` (bytes sent since), ``RecoverFS`` (the flight when it began) and the sending budget the
last ACK granted. It does not own the window (the controller's, read as ``ssthresh``: NewReno and
CUBIC set the window to the new ssthresh when they react) nor bytes in flight (loss recovery's).

Why: RFC 9002 §7.3.2 reduces the window at once, so with the flight still at the old window the
sender stops until enough is acknowledged to bring bytes in flight below the new window (about half
an RTT for NewReno), then sends in a burst; the ACK clock stops and restarts. PRR (RFC 6937 §3.1)
sends instead in proportion to what the network delivers, ``ssthresh / RecoverFS`` bytes per byte
delivered, so the flight shrinks smoothly to ssthresh by the end of the round; once the flight is at
or below ssthresh, the slow-start reduction bound (PRR-SSRB) lets it grow back towards ssthresh by at
most what was delivered plus one datagram per ACK. Loss recovery (:mod:`rudp.quic.recovery`) runs it
for controllers that set ``uses_prr``: until the recovery period ends (RFC 9002 §7.3.2: a packet sent
after it began is acknowledged), a packet may go when the budget allows it *or* the window does. The
window test stays as a floor because PRR only computes its budget on ACKs: a flight that drained
through timer-declared losses would otherwise wait for an ACK that never comes (TCP has its RTO
there; QUIC arms no PTO with nothing in flight). The floor gives up PRR-SSRB's burst bound below
ssthresh, which the pacer (RFC 9002 §7.7) provides anyway.
"""

from __future__ import annotations


class ProportionalRateReduction:
    """RFC 6937 §3.1 with PRR-SSRB, in bytes, one instance per connection (path)."""

    __slots__ = (
        "_budget",
        "active",
        "max_datagram_size",
        "prr_delivered",
        "prr_out",
        "recover_fs",
        "started_at",
    )

    def __init__(self, max_datagram_size: int) -> None:
        self.max_datagram_size = max_datagram_size
        self.active = False
        self.started_at = 0.0
        self.prr_delivered = 0
        self.prr_out = 0
        self.recover_fs = 0
        self._budget = 0

    def start(self, flight_size: int, now: float) -> None:
        """A congestion event began at ``now`` with ``flight_size`` bytes outstanding (RecoverFS)."""
        self.active = True
        self.started_at = now
        self.prr_delivered = 0
        self.prr_out = 0
        self.recover_fs = max(flight_size, 1)
        self._budget = 0

    def stop(self) -> None:
        """The recovery period ended (or was undone, or the window collapsed)."""
        self.active = False

    def on_ack(self, delivered: int, pipe: int, ssthresh: int) -> None:
        """An ACK delivered ``delivered`` bytes; ``pipe`` is bytes in flight after it (RFC 6937 §3.1)."""
        if delivered <= 0:
            return
        self.prr_delivered += delivered
        if pipe > ssthresh:
            # Proportional: CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out.
            sndcnt = -(-self.prr_delivered * ssthresh // self.recover_fs) - self.prr_out
        else:
            # PRR-SSRB: MIN(ssthresh - pipe, MAX(prr_delivered - prr_out, DeliveredData) + MSS).
            limit = max(self.prr_delivered - self.prr_out, delivered) + self.max_datagram_size
            sndcnt = min(ssthresh - pipe, limit)
        self._budget = max(sndcnt, 0)

    def allows(self) -> bool:
        """True while the last ACK's budget is not spent (a packet may overshoot it by < 1 datagram,
        as TCP's sndcnt counts whole segments)."""
        return self._budget > 0

    def on_sent(self, size: int) -> None:
        """``size`` bytes went into flight (new data, retransmission or probe)."""
        self.prr_out += size
        self._budget -= size
