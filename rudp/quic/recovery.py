"""Loss detection and probe timeouts (RFC 9002 §6 and Appendix A).

Owns the send side of the three packet number spaces: sent packets awaiting acknowledgment, bytes in
flight, acknowledgment processing (RTT samples, loss by packet and time threshold, persistent
congestion), the single loss-detection timer with PTO backoff and the handshake rules, and discarding a
space's state. It does not own the window arithmetic (:mod:`rudp.quic.congestion`), the RTT formulas
(:mod:`rudp.quic.rtt`), the receive side (:mod:`rudp.quic.spaces`) nor what a probe packet contains
(the connection decides, given a :class:`ProbeRequest`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, cast

from rudp.codec.codes import FrameType
from rudp.codec.frames import Ack
from rudp.errors import TransportError, TransportErrorCode
from rudp.quic.acks import DEFAULT_MAX_ACK_DELAY
from rudp.quic.congestion.base import BaseCongestionController, CongestionController, RateSampleConsumer
from rudp.quic.congestion.delivery_rate import DeliveryRateEstimator
from rudp.quic.congestion.prr import ProportionalRateReduction
from rudp.quic.congestion.undo import K_PACKET_THRESHOLD, K_TIME_THRESHOLD, SpuriousLossDetector
from rudp.quic.congestion.window_use import WindowUse
from rudp.quic.delivery import deliver_acked
from rudp.quic.handshake_deadline import HANDSHAKE_PROBES
from rudp.quic.persistent_congestion import in_persistent_congestion
from rudp.quic.rtt import K_GRANULARITY, RttEstimator
from rudp.quic.sent import PacketSpace, SentPacket, SentPackets
from rudp.quic.stats import RecoveryStats

__all__ = ["K_PACKET_THRESHOLD", "K_PERSISTENT_CONGESTION_THRESHOLD", "K_TIME_THRESHOLD", "LossRecovery"]
# The thresholds start at RFC 9002's kPacketThreshold = 3 and kTimeThreshold = 9/8 and widen after
# spurious losses (RFC 8985 §6.2); rudp/quic/congestion/undo.py documents the choices.

K_PERSISTENT_CONGESTION_THRESHOLD: Final = 3
"""Persistent congestion duration as a multiple of the PTO period (RFC 9002 §7.6.1)."""

_SPACES: Final = (PacketSpace.INITIAL, PacketSpace.HANDSHAKE, PacketSpace.APPLICATION)
_INITIAL, _HANDSHAKE, _APPLICATION = _SPACES  # bound once: enum member lookups are slow in 3.11
_NEVER: Final = float("-inf")
"""A send time before every other (no packet)."""
_IDLE_PRR: Final = ProportionalRateReduction(0)
"""The PRR of every controller that uses one until its first recovery period (most connections never
have one), shared: never started (each connection starts its own, see _start_prr), so never active."""


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """The PTO fired: send ``count`` ack-eliciting probe packets in ``space`` now (RFC 9002 §6.2.4).

    New data is preferred, else data still unacknowledged, else a PING. ``count`` is 1 for the
    client's anti-deadlock probe (RFC 9002 §6.2.2.1), 2 otherwise; probes ignore the congestion window.
    """

    space: PacketSpace
    count: int


class LossRecovery:
    """RFC 9002 loss detection for one connection (one path).

    Call :meth:`on_packet_sent` for every packet sent, :meth:`on_ack_received` for every ACK frame,
    arm a timer at :meth:`loss_detection_deadline` after every input, and call
    :meth:`on_loss_detection_timeout` when it fires. Delivery handlers of every tracked packet are
    called exactly once (``True`` acked, ``False`` lost) unless the packet's space is discarded.
    """

    __slots__ = (  # (attributes stored in place: a connection makes one, a handshake touches many)
        "__weakref__", "_app_limited", "_app_limited_sink", "_bytes_lost", "_bytes_sent", "_ce_events",
        "_first_rtt_sample_at", "_handshake_confirmed", "_handshake_pto_cap", "_has_handshake_keys",
        "_on_sent_hook", "_packets_acked", "_packets_lost", "_packets_sent", "_peer_validated", "_probed_at",
        "_prr", "_prr_size", "_rates", "_spaces", "_timer_base_at", "_total_ptos", "_undo", "_window_steady",
        "_window_use", "acked_carried_largest", "acked_ect0", "bytes_in_flight", "congestion", "is_client",
        "max_ack_delay", "persistent_congestion_count", "pto_count", "rtt",
    )
    _prr: ProportionalRateReduction | None  # (None: a controller without PRR; see _IDLE_PRR)

    def __init__(
        self,
        congestion: CongestionController,
        rtt: RttEstimator,
        *,
        is_client: bool,
        max_ack_delay: float = DEFAULT_MAX_ACK_DELAY,
        handshake_timeout: float | None = None,
    ) -> None:
        self.congestion = congestion
        self.rtt = rtt
        self.max_ack_delay = max_ack_delay
        self.is_client = is_client
        # A PTO cap before confirmation (see loss_timer), None for RFC 9002's plain backoff.
        self._handshake_pto_cap = None if handshake_timeout is None else handshake_timeout / HANDSHAKE_PROBES
        self._probed_at: float | None = None  # when the PTO last fired
        self.bytes_in_flight = 0
        self.pto_count = 0
        self._spaces = (SentPackets(), SentPackets(), SentPackets())  # (indexed by PacketSpace)
        self._handshake_confirmed = False
        self._peer_validated = not is_client  # RFC 9002 §6.2.1: clients validate servers implicitly
        self._has_handshake_keys = False
        self._first_rtt_sample_at: float | None = None
        self._timer_base_at: float | None = None  # "now" of the last event that re-armed the timer
        self._packets_sent = 0
        self._bytes_sent = 0
        self._packets_acked = 0
        self._packets_lost = 0
        self._bytes_lost = 0
        self._total_ptos = 0
        self.persistent_congestion_count = 0
        """Times persistent congestion was established so far."""
        self._ce_events = 0
        self.acked_ect0 = 0
        """The ECT(0) packets on the current path the last ACK newly acknowledged."""
        self.acked_carried_largest = -1
        """The largest acknowledged of the ACK frames in the packets the last ACK newly acknowledged (-1:
        none carried one)."""
        # Delivery-rate sampling, only for controllers that consume it (congestion/base.py says why).
        self._attach(congestion)
        # RFC 9002 §7.8: whether the application (or flow control), not the window, limits sending,
        # judged per round trip (congestion/window_use.py).
        self._app_limited = False

    # -- state from the connection ------------------------------------------------------------------------

    @property
    def handshake_confirmed(self) -> bool:
        """True once :meth:`set_handshake_confirmed` was called."""
        return self._handshake_confirmed

    @property
    def peer_address_validated(self) -> bool:
        """True if the peer has certainly validated our address (always true for servers)."""
        return self._peer_validated

    @property
    def probed_at(self) -> float | None:
        """When the PTO last fired (None: never)."""
        return self._probed_at

    def set_handshake_confirmed(self) -> None:
        """The handshake is confirmed (RFC 9001 §4.1.2): Application PTOs and ack-delay capping begin."""
        self._handshake_confirmed = True
        self._peer_validated = True

    def set_peer_address_validated(self) -> None:
        """Client: the server validated our address (we got a Handshake ACK; RFC 9002 §6.2.2.1)."""
        self._peer_validated = True

    def set_handshake_keys_available(self) -> None:
        """Handshake keys are installed: the anti-deadlock probe moves to the Handshake space."""
        self._has_handshake_keys = True

    def set_max_ack_delay(self, seconds: float) -> None:
        """Use the peer's max_ack_delay transport parameter (in seconds) from now on."""
        self.max_ack_delay = seconds

    # -- sending ------------------------------------------------------------------------------------------

    def can_send(self, size_bytes: int) -> bool:
        """True if the congestion controller allows ``size_bytes`` more in flight (probes excepted).

        During a recovery period of a PRR controller, the PRR budget may allow more (RFC 6937 §3.1): it
        sends in proportion to what is delivered while the flight is still above the reduced window.
        It never allows less than the window: PRR computes its budget only on ACKs, and a flight that
        drained without one (losses declared by the timer) must not wait for an ACK that never comes.
        """
        prr = self._prr
        allowed = (prr is not None and prr.active and prr.allows()) or self.congestion.can_send(
            self.bytes_in_flight + size_bytes
        )
        if not allowed:
            self._window_use.on_window_refused(self.bytes_in_flight)  # the window limits the sender
        return allowed

    @property
    def app_limited(self) -> bool:
        """True if, at the last ACK, the window had not limited the sender over the round trip (RFC 9002
        §7.8, :mod:`rudp.quic.congestion.window_use`; NewReno and CUBIC do not grow then)."""
        return self._app_limited

    def on_packet_sent(self, packet: SentPacket) -> None:
        """Track a packet just sent (RFC 9002 Appendix A.5).

        Raises:
            ValueError: if the packet number does not increase within its space or the space was
                discarded (a bug in the caller, never a wire condition).
        """
        state = self._spaces[packet.space]
        if state.discarded:
            raise ValueError(f"packet sent in discarded space {packet.space.name}")
        if state.largest_sent is not None and packet.packet_number <= state.largest_sent:
            raise ValueError(f"packet number {packet.packet_number} does not increase")
        state.add(packet)
        if packet.space is _HANDSHAKE:
            self._has_handshake_keys = True
        if packet.in_flight:
            self.bytes_in_flight += packet.size_bytes
            if self._prr is not None and self._prr.active:
                self._prr.on_sent(packet.size_bytes)
            full = self.bytes_in_flight + packet.size_bytes > self.congestion.congestion_window
            self._window_use.on_sent(self.bytes_in_flight, full, packet.sent_at)
            if self._rates is not None:
                self._rates.on_packet_sent(packet, self.bytes_in_flight, packet.sent_at)
        self._packets_sent += 1
        self._bytes_sent += packet.size_bytes
        self._timer_base_at = packet.sent_at
        hook = self._on_sent_hook
        if hook is not None:
            hook(packet, packet.sent_at)

    def train_window(self) -> int | None:
        """Bytes the congestion window lets a packet train add to the flight now, or None when each
        packet must ask :meth:`can_send` and be recorded by :meth:`on_packet_sent` (a PRR recovery
        period, or a controller whose window or answer may move as packets leave).

        Otherwise sending moves neither the window nor :meth:`can_send`'s rule (``flight + size <=
        window``), so a train may send while each packet fits what is left, record its packets with
        :meth:`on_packets_sent`, then ask :meth:`can_send` for the packet that did not fit (the
        refusal is noted there, RFC 9002 §7.8)."""
        prr = self._prr
        if not self._window_steady or (prr is not None and prr.active):
            return None
        return self.congestion.congestion_window - self.bytes_in_flight

    def on_packets_sent(self, packets: list[SentPacket]) -> None:
        """:meth:`on_packet_sent` for the packets of a train, sent at one instant in one space while
        :meth:`train_window` answered (no PRR period): the ledger in one call, the window's use and
        the controller's hooks per packet in order."""
        if not packets:
            return
        first = packets[0]
        state = self._spaces[first.space]
        if state.discarded:
            raise ValueError(f"packet sent in discarded space {first.space.name}")
        if state.largest_sent is not None and first.packet_number <= state.largest_sent:
            raise ValueError(f"packet number {first.packet_number} does not increase")
        state.add_train(packets)
        if first.space is _HANDSHAKE:
            self._has_handshake_keys = True
        window = self.congestion.congestion_window
        flight = self.bytes_in_flight
        use, rates, hook = self._window_use, self._rates, self._on_sent_hook
        total = 0
        if rates is None and hook is None:
            flight = use.on_train_sent(packets, flight, window)
            for packet in packets:
                total += packet.size_bytes
        else:
            for packet in packets:
                size = packet.size_bytes
                total += size
                if packet.in_flight:
                    flight += size
                    use.on_sent(flight, flight + size > window, packet.sent_at)
                    if rates is not None:
                        rates.on_packet_sent(packet, flight, packet.sent_at)
                if hook is not None:
                    hook(packet, packet.sent_at)
        self.bytes_in_flight = flight
        self._packets_sent += len(packets)
        self._bytes_sent += total
        self._timer_base_at = packets[-1].sent_at

    # -- acknowledgments ------------------------------------------------------------------------------------

    def on_ack_received(self, space: PacketSpace, ack: Ack, ack_delay: float, now: float) -> list[SentPacket]:
        """Process an ACK frame received in ``space`` (RFC 9002 Appendix A.7).

        ``ack_delay`` is the decoded delay in seconds. Calls the handlers of newly acknowledged
        packets with ``True`` and of newly lost ones with ``False``, and informs the congestion
        controller. Returns the newly acknowledged packets in ascending packet-number order, so the
        caller can prune its ACK ranges (:attr:`SentPacket.largest_acked_in_ack`). ACKs for a
        discarded space are ignored.

        Raises:
            TransportError: PROTOCOL_VIOLATION if the ACK covers a packet number never sent
                (RFC 9000 §13.1).
        """
        state = self._spaces[space]
        if state.discarded:
            return []
        ranges = ack.ranges
        largest = ranges[0][1]  # (Ack.largest, without the property's call)
        if state.largest_sent is None or largest > state.largest_sent:
            raise TransportError(
                TransportErrorCode.PROTOCOL_VIOLATION,
                f"ACK of unsent packet {largest} in {space.name} space",
                FrameType.ACK_ECN if ack.ecn is not None else FrameType.ACK,
            )
        prior_largest = state.largest_acked
        if state.largest_acked is None or largest > state.largest_acked:
            state.largest_acked = largest
        self._timer_base_at = now
        flight_before = self.bytes_in_flight
        undo = self._undo
        undone = bool(undo.lost) and undo.on_ack(space, ranges, prior_largest, self._rtt_unit(), now)
        if undone and self._prr is not None:
            # RFC 4015 §2: every loss of the last congestion event was spurious; the controller undid it.
            self._prr.stop()
        acked = state.remove_acked(ranges)
        if not acked:
            return []
        if space is _HANDSHAKE:
            # RFC 9002 §6.2.2.1: a Handshake ACK proves the server validated the client's address.
            self._peer_validated = True
        # One pass: the flight, delivery rates, whether any packet elicited an ACK, any was sent on
        # a path we left, and when the newest in flight left (the window's use, _judge_window_use).
        # Also for the ACK's other readers (AckReceiving): the ECT(0) packets on this path (RFC 9000
        # §13.4.2.1) and the largest number the acknowledged packets' ACK frames carried (§13.2.4).
        rates = self._rates
        eliciting = off_path = False
        flight = self.bytes_in_flight
        newest_sent_at = _NEVER
        marked = 0
        carried_max = -1
        for packet in acked:
            eliciting = eliciting or packet.ack_eliciting
            if packet.off_path:
                off_path = True
            else:
                if packet.ect0:
                    marked += 1
                if packet.in_flight:
                    flight -= packet.size_bytes
                    if packet.sent_at > newest_sent_at:
                        newest_sent_at = packet.sent_at
                    if rates is not None:
                        rates.on_packet_acked(packet, now)
            if packet.largest_acked_in_ack is not None and packet.largest_acked_in_ack > carried_max:
                carried_max = packet.largest_acked_in_ack
        self.bytes_in_flight = flight
        self.acked_ect0, self.acked_carried_largest = marked, carried_max
        newest = acked[-1]
        if (
            newest.packet_number == largest
            and not newest.off_path  # RFC 9000 §9.4: the old path's round trip is not the new one's
            and eliciting
        ):
            # RFC 9002 §5.3: Initial acknowledgments are not delayed on purpose (_sample_rtt, inline).
            self.rtt.update(
                now - newest.sent_at,
                0.0 if space is _INITIAL else ack_delay,
                handshake_confirmed=self._handshake_confirmed,
                max_ack_delay=self.max_ack_delay,
            )
            if self._first_rtt_sample_at is None:
                self._first_rtt_sample_at = now
        self._packets_acked += len(acked)
        prr = self._prr
        if prr is not None and prr.active and any(packet.sent_at > prr.started_at for packet in acked):
            prr.stop()  # RFC 9002 §7.3.2: a packet sent in the recovery period was acknowledged
        # Only the packets below an acknowledged one that are still outstanding (the ledger's holes)
        # can be lost (RFC 9002 §6.1); without any, the ledger has no loss time either.
        lost = self._detect_lost(state, now) if state.holes else None
        if lost:
            self._on_packets_lost(state, lost, now, flight_before)
            prr = self._prr  # (a first recovery period made the connection's own: _start_prr)
        self._deliver_acked(acked)
        on_path = [packet for packet in acked if not packet.off_path] if off_path else acked
        if on_path:
            self._judge_window_use(newest_sent_at)
            self.congestion.on_packets_acked(on_path, now, self.rtt)
            if prr is not None and prr.active:
                delivered = sum(packet.size_bytes for packet in on_path if packet.in_flight)
                prr.on_ack(delivered, self.bytes_in_flight, self.congestion.congestion_window)
        if rates is not None:
            self._deliver_rate_sample(now)
        if self._peer_validated:
            # RFC 9002 §6.2.1: the backoff resets on an ACK, except for a client unsure whether the
            # server validated its address (it may be blocked by the anti-amplification limit).
            self.pto_count = 0
        if lost or state.holes:
            state.trim_acked()  # (without either, remove_acked left nothing to trim)
        return acked

    _deliver_acked = staticmethod(deliver_acked)  # (rudp.quic.delivery; tests call it here)

    def on_ecn_ce(self, count: int, now: float) -> None:
        """The peer's CE count grew by ``count`` in an ACK whose counts validated (RFC 9000 §13.4.2.1).

        RFC 9002 §7.1 and Appendix B.7: a congestion event, at most one reduction per round trip (the
        controller's recovery period, keyed on the send time of the newest acknowledged packet, which
        :meth:`on_ack_received` just reported).
        """
        if count > 0:
            self._ce_events += count
            window = self.congestion.congestion_window
            self.congestion.on_ecn_ce(count, now)
            if self._prr is not None and self.congestion.congestion_window < window:
                self._start_prr(self.bytes_in_flight, now)  # RFC 6937 §3.1 applies to ECN too

    def on_app_limited(self) -> None:
        """The connection has nothing more to send now: if the window is not full, the sending rate is
        the application's, not the path's (draft-ietf-ccwg-bbr "Delivery Rate Samples"; the samples of
        the flight now in flight are marked application-limited)."""
        if self._rates is not None and self.bytes_in_flight < self.congestion.congestion_window:
            self._rates.on_app_limited(self.bytes_in_flight)

    def _judge_window_use(self, newest_sent_at: float) -> None:
        """Before the controller sees an ACK: tell it whether the window limited the sender over the
        round trip (RFC 9002 §7.8 with Linux's rule, congestion/window_use.py). ``newest_sent_at``:
        when the newest acknowledged packet in flight on this path left (:data:`_NEVER` if none was)."""
        sink = self._app_limited_sink
        if sink is None:
            return
        app_limited = not self._window_use.on_ack(self.congestion, newest_sent_at)
        if app_limited != self._app_limited:
            self._app_limited = app_limited
            sink(app_limited)

    def _deliver_rate_sample(self, now: float) -> None:
        rates = self._rates
        if rates is not None:
            sample = rates.take_sample(now, self.rtt.min_rtt, self.bytes_in_flight)
            if sample is not None:
                cast(RateSampleConsumer, self.congestion).on_rate_sample(sample, now)

    @property
    def ce_count(self) -> int:
        """CE marks the peer reported so far (from validated ACK_ECN counts)."""
        return self._ce_events

    # -- losses -------------------------------------------------------------------------------------------

    def _rtt_unit(self) -> float:
        return max(self.rtt.latest_rtt, self.rtt.smoothed_rtt)

    def _detect_lost(self, state: SentPackets, now: float) -> list[SentPacket]:
        # RFC 9002 §6.1 and Appendix A.10 DetectAndRemoveLostPackets. The loss delay (§6.1.2): 9/8 (or,
        # after spurious losses, more: RFC 8985 §6.2) of the larger of latest and smoothed RTT, at
        # least kGranularity (_rtt_unit and max() as comparisons: asked on every ACK).
        rtt, undo = self.rtt, self._undo
        latest, smoothed = rtt.latest_rtt, rtt.smoothed_rtt
        loss_delay = undo.time_threshold * (latest if latest > smoothed else smoothed)
        if loss_delay < K_GRANULARITY:
            loss_delay = K_GRANULARITY
        return state.remove_lost(now, loss_delay, undo.packet_threshold)

    def _on_packets_lost(
        self, state: SentPackets, lost: list[SentPacket], now: float, flight_before: int | None = None
    ) -> None:
        if flight_before is None:
            flight_before = self.bytes_in_flight
        for packet in lost:
            if packet.in_flight and not packet.off_path:
                self.bytes_in_flight -= packet.size_bytes
            for handler in packet.handlers:
                handler(False)
        # RFC 9000 §14.4: a lost PMTU probe is no sign of congestion (nor a retransmission cost), and
        # RFC 9000 §9.4: losses on a path we left say nothing about the current one.
        lost = [packet for packet in lost if not packet.is_pmtu_probe and not packet.off_path]
        if not lost:
            return
        self._packets_lost += len(lost)
        self._bytes_lost += sum(packet.size_bytes for packet in lost)
        if self._rates is not None:
            for packet in lost:
                if packet.in_flight:
                    self._rates.on_packet_lost(packet)
        before = self._undo.snapshot()
        window = self.congestion.congestion_window
        self.congestion.on_packets_lost(lost, now)
        prr = self._prr
        if prr is not None and self.congestion.congestion_window < window:
            prr = self._start_prr(flight_before, now)  # RFC 6937 §3.1: RecoverFS, the flight at the event
        duration = self.persistent_congestion_duration()
        if in_persistent_congestion(state, lost, self._first_rtt_sample_at, duration):
            self.persistent_congestion_count += 1
            self.congestion.on_persistent_congestion(now)
            if prr is not None:
                prr.stop()  # RFC 9002 §7.6.2: the window collapsed; slow start, not PRR, follows
        self._undo.on_packets_lost(lost, before)

    def _start_prr(self, flight_size: int, now: float) -> ProportionalRateReduction:
        """A recovery period begins: the connection's own PRR (made at the first) starts it."""
        prr = self._prr
        if prr is None or prr is _IDLE_PRR:
            prr = ProportionalRateReduction(self._prr_size)
            self._prr = prr
        prr.start(flight_size, now)
        return prr

    def persistent_congestion_duration(self) -> float:
        """``(smoothed + max(4*rttvar, kGranularity) + max_ack_delay) * 3`` seconds (RFC 9002 §7.6.1)."""
        return (self.rtt.base_pto + self.max_ack_delay) * K_PERSISTENT_CONGESTION_THRESHOLD

    # -- the loss detection timer ----------------------------------------------------------------------------

    def _ack_eliciting_outstanding(self) -> bool:
        # In flight in a space whose PTO may be armed (Application only after confirmation).
        spaces = self._spaces
        if spaces[_INITIAL].ack_eliciting_in_flight or spaces[_HANDSHAKE].ack_eliciting_in_flight:
            return True
        return self._handshake_confirmed and spaces[_APPLICATION].ack_eliciting_in_flight > 0

    def loss_timer(self) -> tuple[float | None, PacketSpace, bool]:
        """The loss detection timer (RFC 9002 Appendix A.8 SetLossDetectionTimer): when it fires, in
        which space, and True for a time-threshold loss (the earliest loss time of any space) or False
        for a PTO (GetPtoTimeAndSpace, RFC 9002 §6.2.1); (None, Initial, False) when unset."""
        earliest: float | None = None
        earliest_space = _INITIAL
        initial, handshake, app = spaces = self._spaces
        if initial.loss_time is not None or handshake.loss_time is not None or app.loss_time is not None:
            for space in _SPACES:
                loss_time = spaces[space].loss_time
                if loss_time is not None and (earliest is None or loss_time < earliest):
                    earliest, earliest_space = loss_time, space
            return earliest, earliest_space, True
        backoff = 1 << self.pto_count  # 2**pto_count (a shift: asked after every flush)
        base = self.rtt.base_pto
        duration = base * backoff
        cap = self._handshake_pto_cap
        confirmed = self._handshake_confirmed
        capped = False
        if cap is not None and not confirmed:
            # A deliberate deviation from RFC 9002 §6.2.1 (each PTO doubles the period, with no cap):
            # until the handshake is confirmed, the period stops at handshake_timeout /
            # HANDSHAKE_PROBES, or twice the smallest RTT sample on a slower path. Both ends give up a
            # handshake after handshake_timeout without the peer (rudp.quic.handshake_deadline); under
            # loss a first RTT sample of ~1 s spaced probes 6 s then 12 s apart, and one late ACK can
            # inflate rttvar so far that even the first PTO (~10 s) outlasts the peer's patience: live
            # peers were given up as silent. Why this rate is harmless is at HANDSHAKE_PROBES; after
            # confirmation the backoff is as specified. Counted from the last PTO too: a probe that
            # could not be sent (anti-amplification limit) must not make the timer fire again at once.
            floor = 2.0 * self.rtt.min_rtt
            limit = floor if floor > cap else cap
            if duration > limit:
                duration = limit
                capped = True
        outstanding = False  # (_ack_eliciting_outstanding, found by the same loop)
        for space in _SPACES:
            state = spaces[space]
            if state.ack_eliciting_in_flight == 0:
                continue
            if space is _APPLICATION:
                # RFC 9002 §6.2.1: no Application PTO before confirmation; include max_ack_delay.
                if not confirmed:
                    break
                duration += self.max_ack_delay * backoff
            outstanding = True
            if state.last_ack_eliciting_at is None:
                continue
            deadline = state.last_ack_eliciting_at + duration
            if capped and self._probed_at is not None and deadline < self._probed_at + duration:
                deadline = self._probed_at + duration
            if earliest is None or deadline < earliest:
                earliest, earliest_space = deadline, space
        if not outstanding:  # nothing the PTO covers is in flight
            if self._peer_validated or self._timer_base_at is None:
                return None, _INITIAL, False
            # RFC 9002 §6.2.2.1: the client keeps probing so the server is never stuck at its
            # anti-amplification limit; this timer counts from the last event, not from a packet.
            space = _HANDSHAKE if self._has_handshake_keys else _INITIAL
            return self._timer_base_at + duration, space, False
        return earliest, earliest_space, False

    def loss_detection_deadline(self) -> float | None:
        """When :meth:`on_loss_detection_timeout` must be called, or None (RFC 9002 Appendix A.8;
        :meth:`loss_timer`, which the connection's timer asks directly).

        A server blocked by the anti-amplification limit may ignore this timer.
        """
        return self.loss_timer()[0]

    def on_loss_detection_timeout(self, now: float) -> ProbeRequest | None:
        """Run the loss detection timer (RFC 9002 Appendix A.9).

        Declares time-threshold losses (returns None), or, for a PTO, increments :attr:`pto_count`
        and returns what to probe. Returns None too if the timer is not due at ``now``.
        """
        deadline, space, loss = self.loss_timer()
        if deadline is None or now < deadline:
            return None
        if loss:
            state = self._spaces[space]
            lost = self._detect_lost(state, now)
            if lost:
                self._on_packets_lost(state, lost, now)
                state.trim_acked()
                self._deliver_rate_sample(now)
            self._timer_base_at = now
            return None
        count = 2 if self._ack_eliciting_outstanding() else 1
        self.pto_count += 1
        self._total_ptos += 1
        self._timer_base_at = self._probed_at = now
        return ProbeRequest(space, count)

    def pto(self) -> float:
        """The current PTO duration without backoff (RFC 9002 §6.2.1): max_ack_delay counts once the
        handshake is confirmed. The closing period, the idle timeout floor, path validation and the
        key discard delay are measured in it."""
        return self.rtt.base_pto + (self.max_ack_delay if self._handshake_confirmed else 0.0)

    def pto_period(self) -> float:
        """The current PTO period without backoff, including max_ack_delay (for closing/idle timers)."""
        return self.rtt.base_pto + self.max_ack_delay

    # -- discarding and inspection -------------------------------------------------------------------------

    def discard_space(self, space: PacketSpace, now: float | None = None) -> None:
        """Forget a space whose keys were discarded (RFC 9002 §6.4, Appendix A.11).

        Its packets leave bytes in flight without their handlers being called and without any
        congestion signal; its loss time and PTO state are reset, as is :attr:`pto_count`. Later ACKs
        for the space are ignored and sending in it raises ``ValueError``. ``now`` (optional) restarts
        the anti-deadlock timer base.
        """
        state = self._spaces[space]
        for packet in state.discard():
            if packet.in_flight and not packet.off_path:
                self.bytes_in_flight -= packet.size_bytes
        if space == _INITIAL:
            self._has_handshake_keys = True
        self.pto_count = 0
        if now is not None:
            self._timer_base_at = now

    def requeue_application_packets(self) -> list[SentPacket]:
        """0-RTT was rejected: forget the outstanding Application packets (RFC 9002 §6.4).

        Their handlers are called with ``False`` so the data is sent again in 1-RTT packets
        (RFC 9001 §4.6.2), but this is neither a loss (statistics) nor a congestion signal. Packet
        numbering continues. Returns the packets forgotten.
        """
        return self._forget_and_requeue(_APPLICATION)

    def on_retry_received(self) -> list[SentPacket]:
        """Client: a Retry arrived; restart loss recovery for Initial and 0-RTT (RFC 9002 §6.3).

        The Retry acknowledges nothing: outstanding Initial and Application packets are forgotten
        and their handlers called with ``False`` so their data is sent again in new packets (numbers
        continue in each space, RFC 9000 §17.2.5.3), without loss statistics or congestion signals.
        The PTO backoff and timers restart. Unlike :meth:`discard_space`, both spaces stay usable.
        Returns the packets forgotten.
        """
        self.pto_count = 0
        return self._forget_and_requeue(_INITIAL, _APPLICATION)

    def _forget_and_requeue(self, *spaces: PacketSpace) -> list[SentPacket]:
        # Outstanding packets leave flight and report False (re-send the data); not a loss event.
        dropped = [packet for space in spaces for packet in self._spaces[space].drain()]
        self.bytes_in_flight -= sum(
            packet.size_bytes for packet in dropped if packet.in_flight and not packet.off_path
        )
        for packet in dropped:
            for handler in packet.handlers:
                handler(False)
        return dropped

    def switch_path(self, congestion: CongestionController, rtt: RttEstimator) -> None:
        """Sending moved to a path with its own congestion controller and RTT estimator (RFC 9000
        §9.4): what is outstanding leaves the old accounting (:meth:`on_path_change`) and acknowledgments
        from now on feed the new path's controller and estimator."""
        if congestion is self.congestion and rtt is self.rtt:
            return
        self.on_path_change()
        self.congestion = congestion
        self.rtt = rtt
        # The new path's delivery rate, spurious-loss record and PRR state come from its own packets
        # (draft-cheng-iccrg-delivery-rate-estimation, RFC 8985, RFC 6937), like its window and RTT.
        self._attach(congestion)

    def _attach(self, congestion: CongestionController) -> None:
        """The per-controller helpers, only for the controllers that use them."""
        # The controller's per-packet send hook, unless it is the base class's no-op (NewReno's): it
        # is called for every packet sent, and most controllers do nothing there.
        hook = congestion.on_packet_sent
        self._on_sent_hook = (
            None if getattr(hook, "__func__", None) is BaseCongestionController.on_packet_sent else hook
        )
        # Delivery-rate sampling (congestion/base.py says why only for some controllers).
        self._rates = DeliveryRateEstimator() if getattr(congestion, "uses_rate_samples", False) else None
        # Spurious losses: undo and the adaptive thresholds (congestion/undo.py).
        self._undo = SpuriousLossDetector(congestion)
        # RFC 6937 PRR during recovery periods, for the controllers that ask for it (congestion/prr.py).
        mds = int(getattr(congestion, "max_datagram_size", 1200))
        self._prr_size = mds
        self._prr = _IDLE_PRR if getattr(congestion, "uses_prr", False) else None
        self._app_limited_sink = getattr(congestion, "set_app_limited", None)
        self._window_use = WindowUse()
        self._app_limited = False  # as a new controller starts
        # Whether trains may check the window once (train_window): can_send is the base rule and
        # no send hook moves the window (none, or a controller that says its hook keeps it).
        self._window_steady = (
            getattr(type(congestion), "can_send", None) is BaseCongestionController.can_send
            and (self._on_sent_hook is None or getattr(congestion, "send_hook_keeps_window", False))
        )

    def on_path_change(self) -> None:
        """The connection moved to a new network path (RFC 9000 §9.4): packets outstanding on the old
        one leave the new path's bytes in flight, congestion control and RTT sampling. They are still
        acknowledged or declared lost as usual, so their data is repaired; the PTO still covers them."""
        for state in self._spaces:
            for packet in state.packets.values():
                if packet.in_flight and not packet.off_path:
                    packet.off_path = True
                    self.bytes_in_flight -= packet.size_bytes
        self._undo.forget_event()  # the new path's controller starts over; nothing left to undo
        if self._prr is not None:
            self._prr.stop()

    def ack_eliciting_in_flight(self, space: PacketSpace) -> int:
        """Number of ack-eliciting packets outstanding in ``space``."""
        return self._spaces[space].ack_eliciting_in_flight

    def largest_acked(self, space: PacketSpace) -> int | None:
        """The largest packet number the peer acknowledged in ``space`` (for packet-number encoding)."""
        return self._spaces[space].largest_acked

    def stats(self) -> RecoveryStats:
        """A snapshot of the counters and estimates."""
        return RecoveryStats(
            packets_sent=self._packets_sent,
            bytes_sent=self._bytes_sent,
            packets_acked=self._packets_acked,
            packets_lost=self._packets_lost,
            bytes_lost=self._bytes_lost,
            pto_count=self.pto_count,
            total_ptos=self._total_ptos,
            persistent_congestion_count=self.persistent_congestion_count,
            latest_rtt=self.rtt.latest_rtt,
            smoothed_rtt=self.rtt.smoothed_rtt,
            rttvar=self.rtt.rttvar,
            min_rtt=self.rtt.min_rtt,
            congestion_window=self.congestion.congestion_window,
            bytes_in_flight=self.bytes_in_flight,
            spurious_losses=self._undo.spurious_losses,
            undone_events=self._undo.undone_events,
            packet_threshold=self._undo.packet_threshold,
            time_threshold=self._undo.time_threshold,
        )

