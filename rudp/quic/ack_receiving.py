"""ACK frames received: what they tell recovery, ECN validation, the key phase, the ACK trackers
and the ACK frequency policy (RFC 9000 §13.2.4, §13.4.2, §19.3; RFC 9002 §6, §7.1; RFC 9001 §6.1).

Owns :class:`AckReceiving`, which the :class:`~rudp.quic.receiving.Receiver` hands every ACK frame
(and ACK_FREQUENCY frame) to, and the count of persistent congestion events it has seen (a PMTU black
hole hint, RFC 8899 §4.3).
"""

from __future__ import annotations

from rudp.codec import frames as f
from rudp.errors import TransportError, TransportErrorCode
from rudp.quic.ack_frequency import AckFrequency
from rudp.quic.ecn import EcnFeedback
from rudp.quic.handshake import Handshake
from rudp.quic.paths import Paths
from rudp.quic.qlog import NullQlog
from rudp.quic.recovery import LossRecovery
from rudp.quic.sent import PacketSpace
from rudp.quic.spaces import PacketSpaces

_PV = TransportErrorCode.PROTOCOL_VIOLATION
_APPLICATION = PacketSpace.APPLICATION  # bound once: enum member lookups are slow in 3.11


class AckReceiving:
    """The ACK frames of one connection (see the module docstring)."""

    def __init__(
        self,
        *,
        spaces: PacketSpaces,
        paths: Paths,
        recovery: LossRecovery,
        handshake: Handshake,
        qlog: NullQlog,
        ack_frequency: AckFrequency,
        feedback: EcnFeedback,
    ) -> None:
        self._spaces = spaces
        self._paths = paths
        self._recovery = recovery
        self._handshake = handshake
        self._qlog = qlog
        self._ack_frequency = ack_frequency
        self._feedback = feedback
        """our receive side's ECN counts (the peer's last counts are validated against them)"""
        self._persistent_congestion_seen = 0

    def on_ack(self, frame: f.Ack, space: PacketSpace, now: float) -> None:
        """Handle an ACK frame of a packet of ``space`` received at ``now`` (RFC 9000 §19.3, §13.2.4;
        RFC 9002 §6; RFC 9001 §6.1).

        Raises:
            TransportError: PROTOCOL_VIOLATION for an ACK of a packet never sent (RFC 9000 §21.4).
        """
        spaces = self._spaces
        state = spaces.application if space is _APPLICATION else spaces.get(space)  # (never discarded)
        if state is None:
            return  # discarded by an earlier frame of this packet (RFC 9001 §4.9)
        skipped = state.never_sent_in(frame.ranges) if state.skipped else None  # (usually none skipped)
        if skipped is not None:
            # RFC 9000 §21.4: acknowledging a packet we never sent is an optimistic-ACK attack.
            reason = f"ACK of packet {skipped}, which was never sent"
            raise TransportError(_PV, reason, (frame.ecn and 3) or 2)
        ack_delay = (
            self._handshake.peer_ack_delay(frame.ack_delay) if space is _APPLICATION else 0.0
        )
        recovery = self._recovery
        acked = recovery.on_ack_received(space, frame, ack_delay, now)
        if acked:
            # RFC 9000 §13.4.2.1: validate the counts against the newly acknowledged ECT(0) packets;
            # RFC 9002 §7.1: an increase of the CE count on a path that validates is congestion.
            ecn = self._paths.current.ecn
            before = ecn.state
            ce = ecn.on_ack_marked(space, frame.ecn, recovery.acked_ect0, self._feedback)
            if ce > 0:
                recovery.on_ecn_ce(ce, now)
            if ecn.state is not before:
                self._qlog.ecn_state_updated(ecn.state, ecn.failure, now)
        if recovery.persistent_congestion_count != self._persistent_congestion_seen:
            self._check_black_hole()
        if not acked:
            return
        # Both follow-ups depend only on the largest value (they are monotone), so one call each per
        # ACK frame rather than one per acknowledged packet; recovery found both (acked ascends).
        largest = acked[-1].packet_number
        largest_ack = recovery.acked_carried_largest
        if largest_ack >= 0:
            state.ack.on_ack_acked(largest_ack)  # RFC 9000 §13.2.4
        if space is _APPLICATION:
            phase = spaces.phase
            if phase.update_pending_ack:  # (the PTO only when a key update waits for this ACK)
                phase.on_packet_acked(largest, now, recovery.pto())  # RFC 9001 §6.1
            self._ask_ack_frequency(now)

    def on_ack_frequency(self, frame: f.AckFrequency) -> None:
        """An ACK_FREQUENCY frame: acknowledge as the peer asks (draft-ietf-quic-ack-frequency §4; checked,
        the newest frame only)."""
        if self._ack_frequency.accept(frame):
            self._spaces.application.ack.configure(
                threshold=frame.ack_eliciting_threshold,
                max_ack_delay=frame.request_max_ack_delay / 1e6,
                reordering_threshold=frame.reordering_threshold,
            )

    def _ask_ack_frequency(self, now: float) -> None:
        """The congestion window may have moved: ask the peer for fewer (or more) ACKs to match
        (draft-ietf-quic-ack-frequency; the policy is :class:`~rudp.quic.ack_frequency.AckFrequency`'s)."""
        peer = self._handshake.peer_params
        if peer is None or peer.min_ack_delay is None:
            return
        path = self._paths.current
        congestion = path.congestion
        if self._ack_frequency.resting(now, congestion.rtt.smoothed_rtt):
            return  # (usually: one request per smoothed RTT at most)
        self._ack_frequency.update(
            congestion_window=congestion.controller.congestion_window,
            max_datagram_size=path.pmtud.current,
            smoothed_rtt=congestion.rtt.smoothed_rtt,
            peer_min_ack_delay=peer.min_ack_delay,
            peer_max_ack_delay=peer.max_ack_delay,
            now=now,
            rate_sampling=getattr(congestion.controller, "uses_rate_samples", False),
        )

    def _check_black_hole(self) -> None:
        self._persistent_congestion_seen = self._recovery.persistent_congestion_count
        pmtud = self._paths.current.pmtud
        if pmtud.current > pmtud.base:
            # RFC 8899 §4.3: persistent loss at a probed size may be a PMTU black hole.
            pmtud.on_black_hole()
