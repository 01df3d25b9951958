"""Spurious losses and undo, PRR, app-limited growth and persistent congestion, on a virtual-clock path
(:class:`~tests.quic.recovery.sim_path.SimPath`) with real NewReno and CUBIC controllers."""

from __future__ import annotations

import pytest

from rudp.quic import recovery as recovery_module
from rudp.quic.congestion.base import BaseCongestionController
from rudp.quic.congestion.cubic import Cubic
from rudp.quic.congestion.newreno import NewReno
from rudp.quic.congestion.prr import ProportionalRateReduction
from rudp.quic.congestion.undo import (
    K_PACKET_THRESHOLD,
    K_TIME_THRESHOLD,
    LOST_RING_SIZE,
    SpuriousLossDetector,
)
from rudp.quic.sent import PacketSpace, SentPacket
from tests.quic.recovery.sim_path import MDS, SimPath

RTT = 0.04


class SnappingNewReno(NewReno):
    """NewReno that keeps its state from just before each congestion event."""

    def on_packets_lost(self, packets: list[SentPacket], now: float) -> None:
        self.before_loss = self.undo_snapshot()
        super().on_packets_lost(packets, now)


class SnappingCubic(Cubic):
    def on_packets_lost(self, packets: list[SentPacket], now: float) -> None:
        self.before_loss = self.undo_snapshot()
        super().on_packets_lost(packets, now)


def _drop_once(*numbers: int):  # type: ignore[no-untyped-def]
    return lambda pn, at: pn in numbers


@pytest.mark.parametrize("cls", [SnappingNewReno, SnappingCubic])
def test_reordering_spurious_loss_is_undone_and_the_threshold_widens(cls: type[NewReno | Cubic]) -> None:
    cc = cls(MDS)
    # A real loss first, so the reordering meets the controller in congestion avoidance.
    sim = SimPath(cc, rtt=RTT, drop=_drop_once(40))
    sim.run(0.6)
    assert cc.congestion_events == 1 and cc.ssthresh is not None
    # Packet R arrives just after R+5: declared lost (R+3 acknowledged), then acknowledged.
    reordered = sim.next_pn + 20
    sim.hold_until_after[reordered] = 5
    state_before: list[object] = []

    def watch() -> None:
        if cc.congestion_events == 2 and not state_before:
            state_before.append(cc.before_loss)  # type: ignore[attr-defined]

    sim.run(1.2, each_event=watch)
    stats = sim.recovery.stats()
    assert stats.spurious_losses == 1
    assert cc.congestion_events == 2 and cc.undone_events == 1 and stats.undone_events == 1
    before = state_before[0]
    assert isinstance(before, tuple)
    if isinstance(cc, Cubic):
        # RFC 9438 §4.9: W_max, K, the epoch and ssthresh as before the event; the window no smaller.
        window, ssthresh, _, w_max, k, epoch, *_ = before
        assert cc.w_max == w_max and cc.k == k and cc.epoch_start_at == epoch
        assert cc.ssthresh == ssthresh and cc.cwnd >= int(window)  # type: ignore[call-overload]
    else:
        cwnd, ssthresh, *_ = before
        assert cc.ssthresh == ssthresh and cc.cwnd >= cwnd  # type: ignore[operator]
    # RFC 8985 §6.2: both thresholds now cover a 5-packet reordering.
    assert stats.packet_threshold == 6
    assert K_TIME_THRESHOLD <= stats.time_threshold <= 2.0
    # The same reordering depth again: no loss declared, no congestion event.
    sim.hold_until_after[sim.next_pn + 20] = 5
    sim.run(1.8)
    stats = sim.recovery.stats()
    assert stats.spurious_losses == 1 and stats.packets_lost == 2  # packet 40 and the first reordered
    assert cc.congestion_events == 2


def test_a_real_loss_in_the_event_keeps_the_reduction() -> None:
    cc = NewReno(MDS)
    dropped = {40}
    sim = SimPath(cc, rtt=RTT, drop=lambda pn, at: pn in dropped)
    sim.run(0.6)
    # R is really lost and R+2 only reordered: both belong to one event, which must stay.
    reordered = sim.next_pn + 20
    dropped.add(reordered - 2)
    sim.hold_until_after[reordered] = 5
    sim.run(1.5)
    stats = sim.recovery.stats()
    assert stats.spurious_losses == 1
    assert cc.congestion_events == 2 and cc.undone_events == 0


def test_lost_records_are_bounded_and_an_evicted_loss_keeps_its_event() -> None:
    cc = NewReno(MDS)
    cc.cwnd = 200 * MDS
    detector = SpuriousLossDetector(cc)
    lost = [SentPacket(pn, PacketSpace.APPLICATION, 0.0, MDS, True, True) for pn in range(100)]
    before = detector.snapshot()
    cc.on_packets_lost(lost, 0.5)
    detector.on_packets_lost(lost, before)
    assert len(detector.lost) == LOST_RING_SIZE  # not 100: the ring is bounded
    assert [record.packet_number for record in detector.lost] == list(range(100 - LOST_RING_SIZE, 100))
    # Every remembered loss proves spurious, but 36 were forgotten unproven: no undo.
    undone = detector.on_ack(PacketSpace.APPLICATION, ((0, 200),), 150, RTT, 0.6)
    assert not undone and cc.undone_events == 0 and cc.cwnd == 100 * MDS
    assert detector.spurious_losses == LOST_RING_SIZE and not detector.lost


def test_thresholds_start_at_rfc_9002_values_and_reset_after_16_events_without_spurious_loss() -> None:
    cc = NewReno(MDS)
    detector = SpuriousLossDetector(cc)
    assert (detector.packet_threshold, detector.time_threshold) == (K_PACKET_THRESHOLD, K_TIME_THRESHOLD)
    packet = SentPacket(10, PacketSpace.APPLICATION, 0.0, MDS, True, True)
    cc.on_packets_lost([packet], 0.0)
    detector.on_packets_lost([packet], None)
    detector.on_ack(PacketSpace.APPLICATION, ((10, 30),), 29, RTT, 0.06)
    assert detector.packet_threshold == 20 and detector.time_threshold == pytest.approx(0.06 / RTT + 1 / 8)
    for event in range(16):
        loss = SentPacket(100 + event, PacketSpace.APPLICATION, 1.0 + event, MDS, True, True)
        cc.on_packets_lost([loss], 1.0 + event)
        detector.on_packets_lost([loss], None)
    assert (detector.packet_threshold, detector.time_threshold) == (K_PACKET_THRESHOLD, K_TIME_THRESHOLD)


class NoPrrNewReno(NewReno):
    uses_prr = False


def _recovery_window(sim: SimPath, cc: NewReno, event: int) -> tuple[float, float]:
    """Run until event ``event`` and its recovery period are over; returns (start, end)."""
    start: list[float] = []

    def watch() -> None:
        if cc.congestion_events == event and not start:
            assert cc.recovery_start_at is not None
            start.append(cc.recovery_start_at)

    sim.run(2.0, each_event=watch)
    began = start[0]
    sent_after = {pn for at, pn in sim.sent_log if at > began}
    # RFC 9002 §7.3.2: the period ends when a packet sent after it began is acknowledged.
    acked_at = [at for at, _ in sim.ack_log if at > began]
    end = next(at for at in acked_at if at >= began + RTT and sent_after)
    return began, end


@pytest.mark.parametrize("cls", [NewReno, NoPrrNewReno])
def test_prr_keeps_the_ack_clock_running_during_recovery(cls: type[NewReno]) -> None:
    cc = cls(MDS)
    sim = SimPath(cc, rtt=RTT, drop=_drop_once(40, 500))
    began, end = _recovery_window(sim, cc, 2)
    first_half = [pn for at, pn in sim.sent_log if began <= at < began + RTT / 2]
    sent = [pn for at, pn in sim.sent_log if began <= at < end]
    delivered = sum(size for at, size in sim.ack_log if began <= at < end)
    if cls is NoPrrNewReno:
        # RFC 9002 alone: the flight must first drain below the halved window; the clock stops.
        assert first_half == []
        return
    # RFC 6937: about ssthresh/RecoverFS = 1/2 of what is delivered is sent, from the first ACKs on.
    assert len(first_half) > 0
    ratio = len(sent) * MDS / delivered
    assert 0.4 <= ratio <= 0.6, ratio
    assert sim.recovery.bytes_in_flight <= cc.cwnd + MDS


@pytest.mark.parametrize("cls", [NewReno, Cubic])
def test_app_limited_sender_does_not_grow_the_window(cls: type[BaseCongestionController]) -> None:
    cc = cls(MDS)
    sim = SimPath(cc, rtt=RTT, app_packets_per_rtt=4)
    sim.run(0.5)
    # Each round's 4 packets leave while up to 3 of the last round's are still unacknowledged: a
    # flight of 7, more than half the initial window of 10, so slow start grows the window (Linux's
    # rule, congestion/window_use.py) until it is twice that flight, and no further.
    flight = 7 * MDS
    assert cc.cwnd == 2 * flight
    sim.run(2.0)
    assert sim.recovery.app_limited
    assert cc.cwnd == 2 * flight  # 37 more RTTs of ACKs and no growth (RFC 9002 §7.8)
    # Once the application has more than the window, the window is the limit again and grows.
    sim.app_packets_per_rtt = None
    sim.run(2.3)
    assert not sim.recovery.app_limited
    assert cc.cwnd > 4 * cc.initial_window_bytes


def test_persistent_congestion_still_collapses_the_window() -> None:
    cc = NewReno(MDS)
    sim = SimPath(cc, rtt=RTT, drop=lambda pn, at: pn == 40 or 0.5 <= at < 1.0)
    sim.run(0.5)
    assert cc.cwnd > 8 * MDS
    collapsed: list[int] = []

    def watch() -> None:
        if sim.recovery.persistent_congestion_count and not collapsed:
            collapsed.append(cc.cwnd)

    sim.run(1.4, each_event=watch)
    assert sim.recovery.persistent_congestion_count == 1
    # RFC 9002 §7.6.2: down to the minimum window (plus the probe that the same ACK acknowledged, which
    # slow start counts), and the losses were real: nothing to undo.
    assert collapsed == [cc.minimum_window_bytes + MDS]
    assert cc.undone_events == 0


def _eager_prr(sim: SimPath) -> None:
    """The general path: the recovery's own PRR from the start (not the shared idle one)."""
    sim.recovery._prr = ProportionalRateReduction(MDS)


@pytest.mark.parametrize("cls", [NewReno, Cubic])
def test_prr_made_at_the_first_recovery_period_behaves_as_one_made_upfront(cls: type[NewReno]) -> None:
    # Recoveries share an idle PRR until their first recovery period (loss, then an ECN CE): every
    # packet sent and acknowledged is the same as with a PRR of their own from the start.
    logs = []
    for eager in (False, True):
        cc = cls(MDS)
        sim = SimPath(cc, rtt=RTT, drop=_drop_once(40, 500, 501, 900))
        other = SimPath(cls(MDS), rtt=RTT)  # (another connection, its PRR idle all along)
        if eager:
            _eager_prr(sim)
        else:
            assert sim.recovery._prr is other.recovery._prr is recovery_module._IDLE_PRR
        sim.run(0.8)
        sim.recovery.on_ecn_ce(1, sim.now)
        sim.run(2.0)
        assert cc.congestion_events >= 3
        idle = recovery_module._IDLE_PRR  # never started: still as made
        assert other.recovery._prr is idle and sim.recovery._prr is not idle
        assert (idle.active, idle.recover_fs, idle.prr_out, idle.prr_delivered) == (False, 0, 0, 0)
        logs.append((sim.sent_log, sim.ack_log, cc.cwnd, cc.ssthresh))
    assert logs[0] == logs[1]
