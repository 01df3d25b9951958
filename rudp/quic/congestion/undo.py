"""Spurious-loss detection, congestion-window undo and the adaptive reordering thresholds.

Owns the loss-detection thresholds that :mod:`rudp.quic.recovery` applies (packet and time threshold,
RFC 9002 §6.1), a bounded ring of recently lost packet numbers tagged with the congestion event they
belong to, and the controller state saved before that event. It does not own the controller's window
arithmetic (a controller that can be undone provides :class:`Undoable`) nor the sent-packet ledger.

Why a loss can prove spurious in QUIC: a packet number is never reused (RFC 9000 §12.3), so an ACK
range covering a number that recovery already declared lost says, without ambiguity, that the
original packet arrived; it was reordered or delayed, not lost. That is what TCP needs timestamps for
(RFC 4015 Eifel response) or DSACK for (RFC 8985 §6.2). The retransmitted frames are already in new
packets and cannot be taken back; what is taken back is the congestion response:

- **Undo** (RFC 4015 §2, in the spirit of Linux's ``tcp_try_undo_recovery`` and RFC 9438 §4.9): once
  every packet that a congestion event declared lost has been acknowledged, the controller gets back
  the state it had just before the event (window, ssthresh, CUBIC's W_max, K and epoch, the recovery
  period). Only the newest event can be undone: restoring an older one would also erase the newer.
  A lost record evicted from the ring before being acknowledged makes its event permanent (the ring
  is bounded, so a burst of real losses cannot grow memory).
- **Reordering window** (RFC 8985 §6.2, RFC 9002 §6.1.1 and §6.1.2 "implementations MAY adapt"): a
  spurious loss widens both thresholds to just past the reordering it observed, so the same
  reordering depth does not cause a second spurious event:

  * the packet threshold to ``depth + 1``, where ``depth`` is how many packet numbers above the late
    packet had already been acknowledged (Linux's ``tp->reordering`` does the same in segments),
    capped at :data:`MAX_PACKET_THRESHOLD`;
  * the time threshold (a multiple of ``max(smoothed_rtt, latest_rtt)``) to the late packet's age at
    its acknowledgment plus RFC 9002's 1/8 RTT of slack, capped at :data:`MAX_TIME_THRESHOLD` (RACK
    caps its reordering window at one smoothed RTT, RFC 8985 §6.2, i.e. a threshold of 2 RTT here).

  After :data:`RESET_AFTER_EVENTS` congestion events without a spurious loss, both return to the
  RFC 9002 defaults (RFC 8985 §6.2: ``reo_wnd_persist`` = 16 recoveries).

Threshold choices (RFC 9002 §6.1 against RFC 8985):
- kPacketThreshold = 3 (RFC 9002 §6.1.1, RFC 5681's three duplicate ACKs). RACK-TLP drops the
  packet count once it has seen reordering (RFC 8985 §6.2); we keep it but raise it to the observed
  depth, which has the same effect for the depths seen while still catching losses in bulk quickly.
- kTimeThreshold = 9/8 of ``max(smoothed_rtt, latest_rtt)`` (RFC 9002 §6.1.2), at least kGranularity
  = 1 ms (RFC 9002 §6.1.2). RACK's default reordering window is min_rtt/4 (RFC 8985 §6.2), i.e. a
  threshold of about 5/4 RTT; RFC 9002 chose 9/8 with the max of smoothed and latest RTT, which
  already absorbs RTT increases. We start at 9/8 and let spurious losses widen it, as RACK does.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from rudp.codec.frames import AckRange
    from rudp.quic.sent import PacketSpace, SentPacket

K_PACKET_THRESHOLD: Final = 3
"""Reordering threshold in packets before a packet is deemed lost (RFC 9002 §6.1.1)."""
K_TIME_THRESHOLD: Final = 9 / 8
"""Reordering threshold as a multiple of the RTT (RFC 9002 §6.1.2)."""
MAX_PACKET_THRESHOLD: Final = 64
"""The packet threshold never grows past this; the time threshold still bounds detection delay."""
MAX_TIME_THRESHOLD: Final = 2.0
"""RFC 8985 §6.2: the reordering window is at most one smoothed RTT (threshold 1 + 1 RTT)."""
TIME_THRESHOLD_SLACK: Final = K_TIME_THRESHOLD - 1
"""Kept above the observed reordering delay, as RFC 9002 §6.1.2 keeps 1/8 RTT above one RTT."""
RESET_AFTER_EVENTS: Final = 16
"""Congestion events without a spurious loss before the thresholds return to the defaults
(RFC 8985 §6.2, ``RACK.reo_wnd_persist``)."""
LOST_RING_SIZE: Final = 64
"""How many recently lost packet numbers are remembered for spurious-loss detection."""


@runtime_checkable
class Undoable(Protocol):
    """A controller whose congestion events can be undone (NewReno, CUBIC).

    ``congestion_events`` counts reductions; :meth:`undo_snapshot` is called before each batch of
    losses is reported, and :meth:`undo` with that snapshot when every loss of the event it started
    proved spurious.
    """

    congestion_events: int

    def undo_snapshot(self) -> object:
        """The state a congestion event would change (opaque to loss recovery)."""
        ...

    def undo(self, snapshot: object) -> None:
        """Return to ``snapshot`` (the window never shrinks by undoing)."""
        ...


_UNDOABLE_TYPES: dict[type, bool] = {}
"""Whether a controller class has Undoable's members (``isinstance`` against a runtime-checkable
Protocol inspects every member each time; controllers have them as class attributes or set in
``__init__``, so the answer of one instance holds for its class). A handful of classes at most."""


class LostRecord(NamedTuple):
    """A packet declared lost, remembered until acknowledged or evicted."""

    space: PacketSpace
    packet_number: int
    sent_at: float
    event: int
    """The congestion event it belongs to (the controller's ``congestion_events`` then), or -1."""


_NO_LOSSES: Final[deque[LostRecord]] = deque(maxlen=0)
"""The ring of a detector that saw no loss yet: shared, as it can hold nothing (maxlen 0)."""


class SpuriousLossDetector:
    """Detects spurious losses, undoes their congestion events and adapts the thresholds."""

    def __init__(self, controller: object, ring_size: int = LOST_RING_SIZE) -> None:
        # The controller if it can undo (a class's answer, looked up once per class: see
        # _UNDOABLE_TYPES), else None.
        kind = type(controller)
        found = _UNDOABLE_TYPES.get(kind)
        if found is None:
            found = isinstance(controller, Undoable)
            if len(_UNDOABLE_TYPES) < 64:
                _UNDOABLE_TYPES[kind] = found
        self._controller: Undoable | None = controller if found else None  # type: ignore[assignment]
        self.packet_threshold = K_PACKET_THRESHOLD
        self.time_threshold = K_TIME_THRESHOLD
        self._ring_size = ring_size
        self.lost: deque[LostRecord] = _NO_LOSSES
        """The ring of recently lost packets (bounded by ``ring_size``): the shared empty one until the
        first loss (most connections never lose a packet)."""
        self.spurious_losses = 0
        self.undone_events = 0
        self._event = -1
        self._snapshot: object | None = None  # the controller before the event, None when not undoable
        self._outstanding = 0  # the event's losses not yet acknowledged
        self._events_since_spurious = 0

    def snapshot(self) -> object | None:
        """Called just before losses are reported to the controller."""
        controller = self._controller
        return controller.undo_snapshot() if controller is not None else None

    def on_packets_lost(self, lost: list[SentPacket], before: object | None) -> None:
        """``lost`` were reported to the controller, whose state before was ``before``."""
        controller = self._controller
        event = controller.congestion_events if controller is not None else -1
        if event != self._event:
            # A new congestion event: only this one can be undone from now on.
            self._event = event
            self._snapshot = before
            self._outstanding = 0
            self._events_since_spurious += 1
            if self._events_since_spurious >= RESET_AFTER_EVENTS:
                self.packet_threshold = K_PACKET_THRESHOLD
                self.time_threshold = K_TIME_THRESHOLD
                self._events_since_spurious = 0
        ring = self.lost
        if ring is _NO_LOSSES:  # the first loss: the detector's own ring
            ring = self.lost = deque(maxlen=self._ring_size)
        for packet in lost:
            if len(ring) == ring.maxlen and ring[0].event == self._event:
                self._snapshot = None  # an unproven loss of this event is forgotten: keep the event
            ring.append(LostRecord(packet.space, packet.packet_number, packet.sent_at, self._event))
            self._outstanding += 1

    def on_ack(
        self,
        space: PacketSpace,
        ranges: tuple[AckRange, ...],
        prior_largest: int | None,
        age_unit: float,
        now: float,
    ) -> bool:
        """An ACK frame arrived; ``prior_largest`` is the largest acknowledged before it and
        ``age_unit`` the RTT the time threshold multiplies. Returns True if an event was undone."""
        ring = self.lost
        if not ring:
            return False
        smallest, largest = ranges[-1][0], ranges[0][1]
        proven = [
            record
            for record in ring
            if record.space == space
            and smallest <= record.packet_number <= largest
            and any(low <= record.packet_number <= high for low, high in ranges)
        ]
        if not proven:
            return False
        undone = False
        for record in proven:
            ring.remove(record)
            self.spurious_losses += 1
            self._events_since_spurious = 0
            self._widen(record, prior_largest, age_unit, now)
            if record.event == self._event:
                self._outstanding -= 1
        controller = self._controller
        if (
            self._outstanding == 0
            and self._snapshot is not None
            and controller is not None
            and controller.congestion_events == self._event  # no newer event (e.g. ECN) since
        ):
            controller.undo(self._snapshot)
            self._snapshot = None
            self.undone_events += 1
            undone = True
        return undone

    def _widen(self, record: LostRecord, prior_largest: int | None, age_unit: float, now: float) -> None:
        # RFC 8985 §6.2 / RFC 9002 §6.1.1: just past the reordering observed.
        if prior_largest is not None and prior_largest > record.packet_number:
            depth = prior_largest - record.packet_number
            self.packet_threshold = min(max(self.packet_threshold, depth + 1), MAX_PACKET_THRESHOLD)
        if age_unit > 0:
            needed = (now - record.sent_at) / age_unit + TIME_THRESHOLD_SLACK
            self.time_threshold = min(max(self.time_threshold, needed), MAX_TIME_THRESHOLD)

    def forget_event(self) -> None:
        """The window was reset for reasons a spurious loss cannot undo (path change)."""
        self._snapshot = None
        self.lost.clear()
