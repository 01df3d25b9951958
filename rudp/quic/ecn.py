"""ECN: counting received marks, and validating a path's ECN support (RFC 9000 §13.4, RFC 9002 §7.1).

Two owners:

* :class:`EcnFeedback` (one per connection): per packet number space, the ECT(0)/ECT(1)/CE counts of
  packets *received* (reported in ACK_ECN, RFC 9000 §13.4.1: once per QUIC packet, so coalesced packets
  each count) and the last counts the *peer* reported (the baseline every new ACK is validated against;
  the counts belong to the space, not to a path).
* :class:`EcnPath` (one per :class:`~rudp.quic.paths.Path`): the validation state of the path, after the
  sample algorithm of RFC 9000 Appendix A.4: ``testing`` (the first :data:`TESTING_PACKETS` packets are
  marked ECT(0)), then ``unknown`` (unmarked, waiting for an ACK), ``capable`` (an ACK validated the
  counts and acknowledged marked packets: marking resumes) or ``failed`` (counts missing, decreasing,
  too small, ECT(1) reported, or every testing packet lost: marking stops for good on this path).

What goes on the wire: the connection reports :attr:`EcnPath.marking`; the socket layer marks the
datagrams (per socket: see ``rudp.aio.endpoint.UdpEndpoint``), the simulator per datagram.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from rudp.quic.sent import PacketSpace, SentPacket

NOT_ECT: Final = 0
ECT_1: Final = 1
ECT_0: Final = 2
CE: Final = 3
"""ECN codepoints (RFC 3168 §5): the low two bits of the IP TOS / traffic class byte."""

TESTING_PACKETS: Final = 10
"""Packets marked while testing a new path (RFC 9000 §13.4.2: "the first ten outgoing packets")."""


class EcnState(StrEnum):
    """RFC 9000 Appendix A.4 states, plus ``disabled`` (the configuration turned ECN off)."""

    TESTING = "testing"
    UNKNOWN = "unknown"
    CAPABLE = "capable"
    FAILED = "failed"
    DISABLED = "disabled"


class EcnFeedback:
    """Received-mark counts per space (what our ACKs report) and the peer's last reported counts."""

    __slots__ = ("peer", "received")

    def __init__(self) -> None:
        initial, handshake, application = _SPACES  # (a literal: no comprehension per connection)
        self.received: dict[PacketSpace, list[int]] = {
            initial: [0, 0, 0], handshake: [0, 0, 0], application: [0, 0, 0]
        }
        """ECT(0), ECT(1), CE counts of packets received per space (RFC 9000 §13.4.1)."""
        self.peer: dict[PacketSpace, tuple[int, int, int]] = dict.fromkeys(_SPACES, (0, 0, 0))
        """The ECT(0), ECT(1), CE counts of the last ACK_ECN validated per space."""

    def on_packet_received(self, space: PacketSpace, codepoint: int) -> tuple[int, int, int] | None:
        """Count one processed (non-duplicate) packet; return the space's new counts if they changed."""
        index = _COUNT_INDEX.get(codepoint)
        if index is None:
            return None
        counts = self.received[space]
        counts[index] += 1
        return counts[0], counts[1], counts[2]

    def on_packets_received(self, space: PacketSpace, codepoint: int, count: int) -> tuple[int, int, int]:
        """Count ``count`` processed packets marked ``codepoint`` (ECT(0), ECT(1) or CE) at once; return
        the space's new counts."""
        counts = self.received[space]
        counts[_COUNT_INDEX[codepoint]] += count
        return counts[0], counts[1], counts[2]

    def totals(self) -> tuple[int, int, int]:
        """ECT(0), ECT(1), CE received over all spaces."""
        spaces = self.received.values()
        return sum(c[0] for c in spaces), sum(c[1] for c in spaces), sum(c[2] for c in spaces)


_COUNT_INDEX: Final = {ECT_0: 0, ECT_1: 1, CE: 2}
_SPACES: Final = tuple(PacketSpace)  # iterating the enum class itself is slow (once per connection)
# States bound once (enum member lookups are slow in 3.11; these are read per ACK frame or datagram).
_OFF: Final = (EcnState.FAILED, EcnState.DISABLED)
_VALIDATING: Final = (EcnState.TESTING, EcnState.UNKNOWN)
_CAPABLE: Final = EcnState.CAPABLE
_TESTING: Final = EcnState.TESTING
_MARKING: Final = (EcnState.TESTING, EcnState.CAPABLE)


class EcnPath:
    """ECN validation of one path (RFC 9000 §13.4.2, Appendix A.4)."""

    __slots__ = ("acked", "failure", "lost", "sent", "state", "testing_lost", "testing_sent")

    def __init__(self, *, enabled: bool) -> None:
        self.state = EcnState.TESTING if enabled else EcnState.DISABLED
        self.sent = 0
        """Packets sent marked ECT(0) on this path."""
        self.acked = 0
        """Marked packets acknowledged, of those sent until the first was (see :meth:`on_datagram_sent`)."""
        self.lost = 0
        """Marked packets declared lost, of those sent until the first was acknowledged."""
        self.testing_sent = 0
        self.testing_lost = 0
        self.failure = ""
        """Why validation failed (for stats and qlog), empty otherwise."""

    def __repr__(self) -> str:
        return f"<EcnPath {self.state} sent={self.sent} acked={self.acked} lost={self.lost}>"

    @property
    def marking(self) -> bool:
        """True if packets sent on this path now carry ECT(0)."""
        return self.state in _MARKING

    def on_datagram_sent(self, packets: list[SentPacket], marked: bool) -> None:
        """The packets of one datagram leave on this path, ECT(0) if ``marked`` (the marking the
        connection reported for the whole batch, read before the batch was built: a state change
        mid-batch takes effect with the next batch, so what the socket applied is what we count)."""
        if not marked:
            return
        # The fate of each marked packet matters only until one is acknowledged: after that, losing
        # every marked packet (the one failure losses decide, RFC 9000 §13.4.2) can no longer happen,
        # so later packets carry no delivery handler (one call less per acknowledged packet).
        watch = self.acked == 0
        for packet in packets:
            packet.ect0 = True
            if watch:
                packet.handlers.append(self._on_delivery)
        self.sent += len(packets)
        if self.state is _TESTING:
            self.testing_sent += len(packets)
            if self.testing_sent >= TESTING_PACKETS:
                self.state = EcnState.UNKNOWN  # Appendix A.4: the testing period ends

    def _on_delivery(self, acked: bool) -> None:
        # The delivery handler of every marked packet: RFC 9000 §13.4.2, if every packet sent while
        # testing is lost, the marks may be the cause.
        if acked:
            self.acked += 1
            return
        self.lost += 1
        if self.state in _VALIDATING:
            self.testing_lost += 1
            if self.acked == 0 and self.testing_lost >= TESTING_PACKETS:
                self._fail("all ECT(0) testing packets lost")

    def on_ack(
        self,
        space: PacketSpace,
        counts: tuple[int, int, int] | None,
        acked: list[SentPacket],
        feedback: EcnFeedback,
    ) -> int:
        """Validate the counts of an ACK that newly acknowledged ``acked`` (RFC 9000 §13.4.2.1).

        Called only for ACKs that newly acknowledge packets, so the largest acknowledged grew or a gap
        was filled (reordered ACKs acknowledge nothing new and never fail validation). Returns the
        increase of the CE count to treat as a congestion signal (RFC 9002 §7.1), 0 if none or if the
        counts did not validate.
        """
        newly_marked = 0
        if self.state not in _OFF:
            for packet in acked:  # a plain loop (no generator step per acknowledged packet)
                if packet.ect0 and not packet.off_path:
                    newly_marked += 1
        return self.on_ack_marked(space, counts, newly_marked, feedback)

    def on_ack_marked(
        self,
        space: PacketSpace,
        counts: tuple[int, int, int] | None,
        newly_marked: int,
        feedback: EcnFeedback,
    ) -> int:
        """:meth:`on_ack` given the count of ECT(0) packets on this path the ACK newly acknowledged
        (loss recovery counts them in its pass over the packets)."""
        if self.state in _OFF:
            if counts is not None:  # (the largest counts seen, element by element: inline, per ACK)
                peer = feedback.peer
                ect0, ect1, ce = counts
                base0, base1, base_ce = peer[space]
                peer[space] = (
                    ect0 if ect0 > base0 else base0,
                    ect1 if ect1 > base1 else base1,
                    ce if ce > base_ce else base_ce,
                )
            return 0
        if counts is None:
            if newly_marked:
                self._fail("ACK without ECN counts acknowledged ECT(0) packets")
            return 0
        ect0, ect1, ce = counts
        base0, base1, base_ce = feedback.peer[space]
        if ect0 < base0 or ect1 < base1 or ce < base_ce:
            self._fail("ECN counts decreased")
            return 0
        if ect1:
            self._fail("ECT(1) counted, never sent")  # RFC 9000 §13.4.2.1: a codepoint never applied
            return 0
        if (ect0 - base0) + (ce - base_ce) < newly_marked:
            self._fail("ECN counts smaller than the ECT(0) packets acknowledged")
            return 0
        feedback.peer[space] = counts
        if newly_marked and self.state in _VALIDATING:
            self.state = _CAPABLE
        return ce - base_ce

    def _fail(self, reason: str) -> None:
        # RFC 9000 §13.4.2.2: validation failed, stop marking on this path.
        self.state = EcnState.FAILED
        self.failure = reason


__all__ = [
    "CE",
    "ECT_0",
    "ECT_1",
    "NOT_ECT",
    "TESTING_PACKETS",
    "EcnFeedback",
    "EcnPath",
    "EcnState",
]
