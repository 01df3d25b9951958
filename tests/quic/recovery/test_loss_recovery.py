"""LossRecovery against RFC 9002 §5-§7 and Appendix A, on a virtual clock (plain floats)."""

from __future__ import annotations

import random

import pytest

from rudp.codec.frames import Ack
from rudp.errors import TransportError, TransportErrorCode
from rudp.quic.congestion.base import CongestionController
from rudp.quic.congestion.newreno import NewReno
from rudp.quic.rangeset import RangeSet
from rudp.quic.recovery import LossRecovery, ProbeRequest
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace, SentPacket, SentPackets
from rudp.quic.stats import RecoveryStats
from tests.quic.recovery.helpers import HandlerLog, RecordingController, ack_of, ack_range, packet

APP = PacketSpace.APPLICATION
INITIAL = PacketSpace.INITIAL
HANDSHAKE = PacketSpace.HANDSHAKE
MAX_ACK_DELAY = 0.025


def make(
    *, is_client: bool = False, confirmed: bool = True, cc: CongestionController | None = None
) -> LossRecovery:
    controller = cc if cc is not None else RecordingController()
    recovery = LossRecovery(controller, RttEstimator(), max_ack_delay=MAX_ACK_DELAY, is_client=is_client)
    if confirmed:
        recovery.set_handshake_confirmed()
    return recovery


def due(recovery: LossRecovery) -> float:
    """The loss detection deadline, which must be armed."""
    deadline = recovery.loss_detection_deadline()
    assert deadline is not None
    return deadline


def with_rtt_sample(recovery: LossRecovery, rtt: float = 0.1, space: PacketSpace = APP) -> None:
    """Send pn 0 at t=0 and have it acknowledged at t=rtt: srtt=rtt, rttvar=rtt/2."""
    recovery.on_packet_sent(packet(0, 0.0, space=space))
    recovery.on_ack_received(space, ack_of(0), 0.0, rtt)


# -- acknowledgments and RTT samples ---------------------------------------------------------------------


def test_ack_calls_handlers_and_updates_bytes_in_flight() -> None:
    log = HandlerLog()
    recovery = make()
    for pn in range(3):
        recovery.on_packet_sent(packet(pn, 0.01 * pn, log=log))
    assert recovery.bytes_in_flight == 3600
    acked = recovery.on_ack_received(APP, ack_of(0, 1, 2), 0.0, 0.2)
    assert [p.packet_number for p in acked] == [0, 1, 2]
    assert log.calls == [(0, True), (1, True), (2, True)]
    assert recovery.bytes_in_flight == 0
    # The same ACK again acknowledges nothing new and calls nothing.
    assert recovery.on_ack_received(APP, ack_of(0, 1, 2), 0.0, 0.3) == []
    assert len(log.calls) == 3


def test_rtt_sample_is_exact_delta_for_largest_newly_acked() -> None:
    recovery = make()
    for pn, at in enumerate([0.0, 0.010, 0.020, 0.030]):
        recovery.on_packet_sent(packet(pn, at))
    # An ACK whose largest is an older packet (2) measures from pn 2's send time exactly.
    recovery.on_ack_received(APP, ack_of(0, 2), 0.0, 0.137)
    assert recovery.rtt.latest_rtt == pytest.approx(0.137 - 0.020)
    recovery.on_ack_received(APP, ack_of(0, 1, 2, 3), 0.0, 0.250)
    assert recovery.rtt.latest_rtt == pytest.approx(0.250 - 0.030)


def test_no_rtt_sample_when_largest_not_newly_acked() -> None:
    recovery = make()
    recovery.on_packet_sent(packet(0, 0.04))
    recovery.on_packet_sent(packet(1, 0.05))
    recovery.on_ack_received(APP, ack_of(1), 0.0, 0.15)
    assert recovery.rtt.latest_rtt == pytest.approx(0.10)
    assert recovery.bytes_in_flight == 1200  # pn 0 is neither acked nor lost yet
    # pn 0 is newly acked, but the largest (1) was acked before: no new sample.
    recovery.on_ack_received(APP, ack_of(0, 1), 0.0, 0.90)
    assert recovery.rtt.latest_rtt == pytest.approx(0.10)
    assert recovery.rtt.smoothed_rtt == pytest.approx(0.10)


def test_no_rtt_sample_from_only_non_eliciting_packets() -> None:
    recovery = make()
    recovery.on_packet_sent(packet(0, 0.0, ack_eliciting=False))
    recovery.on_ack_received(APP, ack_of(0), 0.0, 0.5)
    assert not recovery.rtt.has_sample


def test_ack_delay_applied_in_application_but_not_initial() -> None:
    app = make()
    app.on_packet_sent(packet(0, 0.0))
    app.on_packet_sent(packet(1, 1.0))
    app.on_ack_received(APP, ack_of(0), 0.0, 0.1)
    app.on_ack_received(APP, ack_of(0, 1), 0.02, 1.12)
    assert app.rtt.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.1)
    initial = make(confirmed=False)
    initial.on_packet_sent(packet(0, 0.0, space=INITIAL))
    initial.on_packet_sent(packet(1, 1.0, space=INITIAL))
    initial.on_ack_received(INITIAL, ack_of(0), 0.0, 0.1)
    initial.on_ack_received(INITIAL, ack_of(0, 1), 0.02, 1.12)
    assert initial.rtt.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.12)


def test_ack_of_unsent_packet_is_protocol_violation() -> None:
    recovery = make()
    with pytest.raises(TransportError) as info:
        recovery.on_ack_received(APP, ack_of(0), 0.0, 0.1)
    assert info.value.code == TransportErrorCode.PROTOCOL_VIOLATION
    recovery.on_packet_sent(packet(0, 0.0))
    recovery.on_packet_sent(packet(1, 0.0))
    with pytest.raises(TransportError) as info:
        recovery.on_ack_received(APP, ack_range(0, 2), 0.0, 0.1)
    assert info.value.code == TransportErrorCode.PROTOCOL_VIOLATION
    assert info.value.frame_type == 0x02


def test_large_and_small_acks_find_exactly_the_acknowledged_packets() -> None:
    rng = random.Random(7)
    for _ in range(30):
        recovery = make()
        total = rng.randrange(5, 400)
        for pn in range(total):
            recovery.on_packet_sent(packet(pn, 0.0, ack_eliciting=rng.random() < 0.8))
        outstanding = set(range(total))
        for _ in range(4):
            chosen = {pn for pn in range(total) if rng.random() < 0.5} or {0}
            acked = recovery.on_ack_received(APP, ack_of(*chosen), 0.0, 0.0)
            numbers = [p.packet_number for p in acked]
            assert numbers == sorted(numbers)
            # Losses may remove some below the largest, so compare with what was outstanding.
            assert set(numbers) == chosen & outstanding
            outstanding -= set(numbers)
            # The packet threshold starts at 3 and widens when a packet declared lost is acknowledged.
            threshold = recovery.stats().packet_threshold
            outstanding -= {pn for pn in outstanding if pn + threshold <= max(chosen)}


# -- loss detection --------------------------------------------------------------------------------------


def test_packet_threshold_then_time_threshold() -> None:
    log = HandlerLog()
    cc = RecordingController()
    recovery = make(cc=cc)
    for pn in range(5):
        recovery.on_packet_sent(packet(pn, 0.001 * pn, log=log))
    recovery.on_ack_received(APP, ack_of(3), 0.0, 0.100)
    # kPacketThreshold = 3: only pn 0 (3 >= 0 + 3) is lost by count; 1 and 2 wait for the timer.
    assert log.lost() == [0]
    assert cc.lost == [[0]]
    assert recovery.bytes_in_flight == 3 * 1200
    loss_delay = 9 / 8 * (0.100 - 0.003)  # RFC 9002 §6.1.2 kTimeThreshold
    deadline = due(recovery)
    assert deadline == pytest.approx(0.001 + loss_delay)
    assert recovery.loss_timer() == (deadline, APP, True)  # a time-threshold loss, not a PTO
    assert recovery.on_loss_detection_timeout(deadline - 0.0001) is None
    assert log.lost() == [0]
    assert recovery.on_loss_detection_timeout(deadline) is None
    assert log.lost() == [0, 1]
    deadline2 = due(recovery)
    assert deadline2 == pytest.approx(0.002 + loss_delay)
    recovery.on_loss_detection_timeout(deadline2)
    assert log.lost() == [0, 1, 2]
    assert cc.lost == [[0], [1], [2]]
    # pn 4 was never acknowledged but is above the largest acked: still outstanding.
    assert recovery.bytes_in_flight == 1200
    stats = recovery.stats()
    assert stats.packets_lost == 3 and stats.bytes_lost == 3600


def test_time_threshold_on_ack() -> None:
    log = HandlerLog()
    recovery = make()
    with_rtt_sample(recovery, 0.1)
    recovery.on_packet_sent(packet(1, 1.0, log=log))
    recovery.on_packet_sent(packet(2, 1.2, log=log))
    # latest_rtt = 0.1 (pn 2 acked at 1.3); 9/8 * 0.1 = 0.1125: pn 1 (sent 0.3 s ago) is lost.
    recovery.on_ack_received(APP, ack_of(2), 0.0, 1.3)
    assert log.calls == [(1, False), (2, True)]


def test_time_threshold_timer_at_exact_deadline_declares_loss() -> None:
    # With sent_at=0.254 and 9/8 * 0.275, "sent_at <= now - delay" fails by float rounding at
    # now = sent_at + delay; the timer must still declare the loss (no re-arm at the same time).
    log = HandlerLog()
    recovery = make()
    recovery.on_packet_sent(packet(0, 0.254, log=log))
    recovery.on_packet_sent(packet(1, 0.255))
    recovery.on_ack_received(APP, ack_of(1), 0.0, 0.530)  # latest_rtt = 0.275
    deadline = due(recovery)
    assert recovery.on_loss_detection_timeout(deadline) is None
    assert log.lost() == [0]
    assert recovery.loss_detection_deadline() != deadline


def test_handlers_called_exactly_once_even_if_lost_packet_is_acked_later() -> None:
    log = HandlerLog()
    recovery = make()
    for pn in range(6):
        recovery.on_packet_sent(packet(pn, 0.0, log=log))
    recovery.on_ack_received(APP, ack_of(4, 5), 0.0, 0.05)
    recovery.on_ack_received(APP, ack_range(0, 5), 0.0, 0.06)  # a spurious loss is not "unlost"
    deadline = recovery.loss_detection_deadline()
    if deadline is not None:
        recovery.on_loss_detection_timeout(deadline + 10)
    seen = [pn for pn, _ in log.calls]
    assert sorted(seen) == list(range(6))
    assert len(seen) == 6


# -- probe timeout ---------------------------------------------------------------------------------------


def test_pto_deadline_and_exponential_backoff() -> None:
    recovery = make()
    with_rtt_sample(recovery, 0.1)  # srtt 0.1, rttvar 0.05
    recovery.on_packet_sent(packet(1, 1.0))
    period = 0.1 + 4 * 0.05 + MAX_ACK_DELAY
    deadlines = []
    for expected_count in (1, 2, 3):
        deadline = recovery.loss_detection_deadline()
        assert deadline is not None
        assert recovery.loss_timer() == (deadline, APP, False)  # a PTO
        deadlines.append(deadline)
        probe = recovery.on_loss_detection_timeout(deadline)
        assert probe == ProbeRequest(APP, 2)
        assert recovery.pto_count == expected_count
    assert [d - 1.0 for d in deadlines] == pytest.approx([period, 2 * period, 4 * period])
    assert recovery.stats().total_ptos == 3
    # An acknowledgment resets the backoff.
    recovery.on_ack_received(APP, ack_of(1), 0.0, 5.0)
    assert recovery.pto_count == 0


def test_pto_not_due_yet_does_nothing() -> None:
    recovery = make()
    recovery.on_packet_sent(packet(0, 0.0))
    deadline = recovery.loss_detection_deadline()
    assert deadline is not None
    assert recovery.on_loss_detection_timeout(deadline - 0.01) is None
    assert recovery.pto_count == 0


def test_handshake_space_pto_excludes_max_ack_delay() -> None:
    recovery = make(confirmed=False)
    recovery.on_packet_sent(packet(0, 0.0, space=INITIAL))
    # Before any sample: 333 ms + 4 * 166.5 ms.
    assert recovery.loss_detection_deadline() == pytest.approx(0.333 + 4 * 0.1665)
    probe = recovery.on_loss_detection_timeout(10.0)
    assert probe == ProbeRequest(INITIAL, 2)


def test_earliest_of_initial_and_handshake_pto() -> None:
    recovery = make(confirmed=False)
    recovery.on_packet_sent(packet(0, 0.5, space=INITIAL))
    recovery.on_packet_sent(packet(0, 0.2, space=HANDSHAKE))
    deadline = due(recovery)
    assert deadline == pytest.approx(0.2 + 0.333 + 4 * 0.1665)
    assert recovery.on_loss_detection_timeout(deadline) == ProbeRequest(HANDSHAKE, 2)


def test_no_application_pto_before_handshake_confirmed() -> None:
    recovery = make(confirmed=False)  # a server: its peer's address needs no validation here
    recovery.on_packet_sent(packet(0, 0.0))
    assert recovery.loss_detection_deadline() is None
    assert recovery.on_loss_detection_timeout(100.0) is None
    recovery.set_handshake_confirmed()
    assert recovery.loss_detection_deadline() == pytest.approx(0.333 + 4 * 0.1665 + MAX_ACK_DELAY)


def test_application_space_skipped_before_confirmation_even_with_handshake_in_flight() -> None:
    recovery = make(confirmed=False)
    recovery.on_packet_sent(packet(0, 0.0))  # 0.5-RTT data, sent first
    recovery.on_packet_sent(packet(0, 0.3, space=HANDSHAKE))
    assert due(recovery) == pytest.approx(0.3 + 0.333 + 4 * 0.1665)
    assert recovery.on_loss_detection_timeout(5.0) == ProbeRequest(HANDSHAKE, 2)


def test_client_anti_deadlock_probe() -> None:
    recovery = make(is_client=True, confirmed=False)
    assert recovery.loss_detection_deadline() is None  # nothing sent yet
    with_rtt_sample(recovery, 0.1, space=INITIAL)  # Initial sent at 0, acked at 0.1
    recovery.on_packet_sent(packet(0, 0.1))  # 0-RTT in flight: no Application PTO yet
    # Nothing in flight, but the server may be blocked by its amplification limit.
    deadline = due(recovery)
    assert deadline == pytest.approx(0.1 + 0.1 + 4 * 0.05)
    assert recovery.on_loss_detection_timeout(deadline) == ProbeRequest(INITIAL, 1)
    recovery.set_handshake_keys_available()
    second = due(recovery)
    assert second == pytest.approx(deadline + 2 * (0.1 + 4 * 0.05))  # backoff from the last probe
    assert recovery.on_loss_detection_timeout(second) == ProbeRequest(HANDSHAKE, 1)
    assert recovery.pto_count == 2
    recovery.set_peer_address_validated()
    assert recovery.loss_detection_deadline() is None


def test_client_keeps_backoff_on_ack_until_address_validated() -> None:
    recovery = make(is_client=True, confirmed=False)
    recovery.on_packet_sent(packet(0, 0.0, space=INITIAL))
    recovery.on_loss_detection_timeout(10.0)
    assert recovery.pto_count == 1
    recovery.on_packet_sent(packet(1, 10.0, space=INITIAL))
    recovery.on_ack_received(INITIAL, ack_of(1), 0.0, 10.1)
    assert recovery.pto_count == 1  # RFC 9002 §6.2.1: the client is not sure yet
    recovery.on_packet_sent(packet(0, 10.2, space=HANDSHAKE))
    recovery.on_ack_received(HANDSHAKE, ack_of(0), 0.0, 10.3)
    assert recovery.peer_address_validated
    assert recovery.pto_count == 0


# -- persistent congestion -------------------------------------------------------------------------------


def _persistent_scenario(ack: Ack) -> tuple[LossRecovery, NewReno]:
    cc = NewReno(1200)
    recovery = make(cc=cc)
    with_rtt_sample(recovery, 0.1)
    # duration = (0.1 + 4 * 0.05 + 0.025) * 3 = 0.975 s; pn 1 .. pn 3 span 1.1 s.
    for pn, at in [(1, 1.0), (2, 1.5), (3, 2.1)]:
        recovery.on_packet_sent(packet(pn, at))
    # pn 4 only carries an ACK (not in flight), so its acknowledgment cannot grow the window.
    recovery.on_packet_sent(packet(4, 2.2, ack_eliciting=False))
    recovery.on_ack_received(APP, ack, 0.0, 2.3)
    return recovery, cc


def test_persistent_congestion_collapses_window() -> None:
    assert make().persistent_congestion_duration() == pytest.approx((0.333 + 4 * 0.1665 + 0.025) * 3)
    recovery, cc = _persistent_scenario(ack_of(4))
    assert recovery.stats().packets_lost == 3
    assert recovery.stats().persistent_congestion_count == 1
    assert cc.congestion_window == 2 * 1200


def test_no_persistent_congestion_when_losses_span_less_than_the_duration() -> None:
    cc = NewReno(1200)
    recovery = make(cc=cc)
    with_rtt_sample(recovery, 0.1)
    for pn, at in [(1, 1.0), (2, 1.4), (3, 1.9)]:  # 0.9 s < 0.975 s
        recovery.on_packet_sent(packet(pn, at))
    recovery.on_packet_sent(packet(4, 2.0, ack_eliciting=False))
    recovery.on_ack_received(APP, ack_of(4), 0.0, 2.3)
    assert recovery.stats().packets_lost == 3
    assert recovery.stats().persistent_congestion_count == 0
    # One halving; pn 0 (one packet in flight against a 10-packet window) was application-limited, so
    # its acknowledgment did not grow the window (RFC 9002 §7.8).
    assert cc.congestion_window == cc.initial_window_bytes // 2


def test_no_persistent_congestion_when_a_packet_between_was_acked() -> None:
    recovery, cc = _persistent_scenario(ack_of(2, 4))
    assert recovery.stats().packets_lost == 2
    assert recovery.stats().persistent_congestion_count == 0
    # One halving of the initial window (no growth from the application-limited pn 0), not a collapse.
    assert cc.congestion_window == cc.initial_window_bytes // 2


def test_acknowledgment_from_an_earlier_ack_also_breaks_the_run() -> None:
    recovery = make(cc=NewReno(1200))
    with_rtt_sample(recovery, 0.1)
    recovery.on_packet_sent(packet(1, 1.0))
    recovery.on_packet_sent(packet(2, 1.01))
    recovery.on_ack_received(APP, ack_of(2), 0.0, 1.05)  # reordered: pn 1 not lost yet
    recovery.on_packet_sent(packet(3, 2.5))
    recovery.on_packet_sent(packet(4, 2.6, ack_eliciting=False))
    recovery.on_ack_received(APP, ack_of(2, 4), 0.0, 2.7)
    assert recovery.stats().packets_lost == 2  # pn 1 and pn 3, 1.5 s apart, but pn 2 between was acked
    assert recovery.stats().persistent_congestion_count == 0


def test_no_persistent_congestion_before_first_rtt_sample() -> None:
    cc = NewReno(1200)
    recovery = make(cc=cc)
    for pn, at in [(0, 0.0), (1, 2.0), (2, 4.0), (3, 6.0)]:
        recovery.on_packet_sent(packet(pn, at))
    recovery.on_ack_received(APP, ack_of(3), 0.0, 6.1)  # first sample arrives with this ACK
    assert recovery.stats().packets_lost == 3
    assert recovery.stats().persistent_congestion_count == 0
    assert cc.congestion_window > 2 * 1200


# -- discarding, 0-RTT rejection, ECN, statistics --------------------------------------------------------


def test_discard_space_removes_bytes_silently() -> None:
    log = HandlerLog()
    cc = RecordingController()
    recovery = make(cc=cc, confirmed=False)
    recovery.on_packet_sent(packet(0, 0.0, space=INITIAL, log=log))
    recovery.on_packet_sent(packet(1, 0.0, space=INITIAL, size=300, ack_eliciting=False, log=log))
    recovery.on_packet_sent(packet(0, 0.0, space=HANDSHAKE, size=500, log=log))
    assert recovery.bytes_in_flight == 1700
    recovery.discard_space(INITIAL)
    assert recovery.bytes_in_flight == 500
    assert log.calls == []
    assert cc.lost == [] and cc.acked == []
    assert recovery.ack_eliciting_in_flight(INITIAL) == 0
    # The Handshake PTO is what remains; late Initial ACKs are ignored.
    assert recovery.loss_detection_deadline() == pytest.approx(0.333 + 4 * 0.1665)
    assert recovery.on_ack_received(INITIAL, ack_of(0), 0.0, 0.1) == []
    recovery.discard_space(HANDSHAKE)
    assert recovery.bytes_in_flight == 0
    assert recovery.loss_detection_deadline() is None
    with pytest.raises(ValueError):
        recovery.on_packet_sent(packet(5, 1.0, space=INITIAL))


def test_requeue_application_packets_reports_false_without_loss() -> None:
    log = HandlerLog()
    cc = RecordingController()
    recovery = make(cc=cc, confirmed=False)
    recovery.on_packet_sent(packet(0, 0.0, log=log))
    recovery.on_packet_sent(packet(1, 0.0, log=log))
    dropped = recovery.requeue_application_packets()
    assert [p.packet_number for p in dropped] == [0, 1]
    assert log.calls == [(0, False), (1, False)]
    assert recovery.bytes_in_flight == 0
    assert cc.lost == [] and recovery.stats().packets_lost == 0
    recovery.on_packet_sent(packet(2, 0.1, log=log))  # numbering continues
    recovery.on_ack_received(APP, ack_of(2), 0.0, 0.2)
    assert log.acked() == [2]


def test_retry_restarts_initial_and_zero_rtt_without_loss() -> None:
    log = HandlerLog()
    cc = RecordingController()
    recovery = make(is_client=True, confirmed=False, cc=cc)
    recovery.on_packet_sent(packet(0, 0.0, space=INITIAL, log=log))
    recovery.on_packet_sent(packet(0, 0.0, log=log))
    recovery.on_loss_detection_timeout(due(recovery))
    assert recovery.pto_count == 1
    dropped = recovery.on_retry_received()
    assert [(p.space, p.packet_number) for p in dropped] == [(INITIAL, 0), (APP, 0)]
    assert sorted(log.calls) == [(0, False), (0, False)]
    assert recovery.bytes_in_flight == 0 and recovery.pto_count == 0
    assert cc.lost == [] and recovery.stats().packets_lost == 0
    # The Initial space stays usable: new packets and their ACKs are processed normally.
    recovery.on_packet_sent(packet(1, 0.5, space=INITIAL, log=log))
    assert recovery.on_ack_received(INITIAL, ack_of(1), 0.0, 0.6)
    assert log.acked() == [1]


def test_packet_numbers_must_increase() -> None:
    recovery = make()
    recovery.on_packet_sent(packet(3, 0.0))
    with pytest.raises(ValueError):
        recovery.on_packet_sent(packet(3, 0.1))


def test_ecn_ce_increase_reported_once() -> None:
    cc = RecordingController()
    recovery = make(cc=cc)
    for pn in range(3):
        recovery.on_packet_sent(packet(pn, 0.0))
    # The counts are validated per path (rudp.quic.ecn.EcnPath.on_ack, tests/quic/test_ecn.py);
    # loss recovery only forwards a validated CE increase to the controller (RFC 9002 §7.1).
    recovery.on_ack_received(APP, ack_of(0, ecn=(1, 0, 1)), 0.0, 0.1)
    recovery.on_ecn_ce(1, 0.1)
    recovery.on_ecn_ce(0, 0.2)
    recovery.on_ecn_ce(2, 0.3)
    assert cc.ecn == [1, 2]
    assert recovery.ce_count == 3


def test_stats_snapshot_and_can_send() -> None:
    cc = RecordingController()
    recovery = make(cc=cc)
    window = cc.congestion_window
    pn = 0
    while recovery.can_send(1200):
        recovery.on_packet_sent(packet(pn, 0.0))
        pn += 1
    assert recovery.bytes_in_flight <= window < recovery.bytes_in_flight + 1200
    recovery.on_ack_received(APP, ack_of(0), 0.0, 0.05)
    stats = recovery.stats()
    assert stats.packets_sent == pn and stats.bytes_sent == pn * 1200
    assert stats.packets_acked == 1
    assert stats.bytes_in_flight == recovery.bytes_in_flight
    assert stats.congestion_window == window
    assert stats.smoothed_rtt == pytest.approx(0.05) and stats.min_rtt == pytest.approx(0.05)
    assert cc.sent == list(range(pn))


def test_acknowledged_numbers_recorded_as_runs() -> None:
    # SentPackets.remove_acked records what it pops as runs of consecutive numbers: the same set (and
    # the same ack-eliciting count) as one number at a time, with never-sent gaps left out.
    ledger = SentPackets()
    for number in [*range(0, 5), *range(7, 12), 14, 15]:
        ledger.add(SentPacket(number, PacketSpace.APPLICATION, 0.0, 100, number != 8, True))
    assert ledger.ack_eliciting_in_flight == 11
    popped = ledger.remove_acked(((14, 20), (3, 9), (0, 1)))
    assert [packet.packet_number for packet in popped] == [0, 1, 3, 4, 7, 8, 9, 14, 15]
    assert ledger.acked == RangeSet([(0, 2), (3, 5), (7, 10), (14, 16)])
    assert ledger.ack_eliciting_in_flight == 11 - 8
    assert ledger.acked_between(4, 7) is False and ledger.acked_between(2, 4) is True


# -- packet trains: the window asked once, the packets recorded at once -------------------------------------


def _window_use(recovery: LossRecovery) -> tuple[object, ...]:
    use = recovery._window_use  # what the next ACK's window-growth judgement reads
    return (use.window_full, use.max_flight, use._round_start_at, use._round_over, use._last_sent_at)


@pytest.mark.parametrize("name", ["newreno", "cubic"])
def test_a_train_recorded_at_once_matches_packets_recorded_one_by_one(name: str) -> None:
    """A train sends while its packets fit :meth:`LossRecovery.train_window`, records them with
    :meth:`on_packets_sent` and reports the packet that did not fit to :meth:`can_send`: the same
    packets go, and the flight, the counters, the PTO deadline, the window's use (RFC 9002 §7.8: the
    window grows only when it limited the sender) and so the window itself stay those of asking
    :meth:`can_send` and calling :meth:`on_packet_sent` per packet. Trains alternate between stopping
    at the window and at a few packets (application-limited), some packets are not in flight (ACK
    only), some smaller; a loss starts a PRR period (CUBIC), where each packet asks can_send."""
    from rudp.quic.congestion.cubic import Cubic

    def run(batched: bool) -> tuple[list[tuple[object, ...]], list[RecoveryStats], int]:
        cc: CongestionController = NewReno(1200) if name == "newreno" else Cubic(1200)
        recovery = make(cc=cc)
        with_rtt_sample(recovery)
        now, pn, oldest = 1.0, 1, 1
        states: list[tuple[object, ...]] = []
        after_acks: list[RecoveryStats] = []
        per_packet_trains = 0
        for train in range(40):
            window = recovery.train_window() if batched else None
            per_packet_trains += batched and window is None
            packets: list[SentPacket] = []
            refused = False
            size = 0
            limit = 3 if train % 3 == 2 else 200
            for _ in range(limit):
                size = 1000 if pn % 5 == 0 else 1200
                if window is None:
                    if not recovery.can_send(size):
                        break
                elif size > window:
                    refused = True
                    break
                sent = packet(pn, now, size=size, ack_eliciting=pn % 7 != 0)
                pn += 1
                if window is None:
                    recovery.on_packet_sent(sent)
                else:
                    packets.append(sent)
                    window -= size if sent.in_flight else 0
            if batched:
                recovery.on_packets_sent(packets)
                if refused:
                    assert not recovery.can_send(size)
            states.append(
                (
                    pn,
                    recovery.stats(),
                    recovery.app_limited,
                    recovery.ack_eliciting_in_flight(APP),
                    recovery.loss_detection_deadline(),
                    _window_use(recovery),
                )
            )
            now += 0.1
            # Everything but the oldest outstanding packet of train 20 (lost, by packet threshold).
            skip = {oldest} if train == 20 else set()
            numbers = [number for number in range(oldest, pn) if number not in skip]
            if numbers:
                recovery.on_ack_received(APP, ack_of(*numbers), 0.0, now)
            oldest = pn
            states.append((recovery.app_limited,))
            after_acks.append(recovery.stats())
        return states, after_acks, per_packet_trains

    plain, plain_acks, _ = run(batched=False)
    trained, trained_acks, per_packet = run(batched=True)
    assert trained == plain and trained_acks == plain_acks
    windows = [stats.congestion_window for stats in plain_acks]
    assert windows[-1] > windows[0]  # window-limited trains: the window grew
    assert plain_acks[-1].packets_lost > 0
    if name == "cubic":
        assert per_packet > 0  # PRR after the loss: each packet asked can_send


def test_train_window_only_when_sending_cannot_move_the_window() -> None:
    """No train window (each packet asks) for a controller whose send hook may move its window (one
    that does not say otherwise, BBR) or outside the base rule of can_send."""
    from rudp.quic.congestion.bbr import Bbr
    from rudp.quic.congestion.cubic import Cubic

    assert make(cc=NewReno(1200)).train_window() == NewReno(1200).congestion_window
    assert make(cc=Cubic(1200)).train_window() == Cubic(1200).congestion_window
    assert make(cc=Bbr(1200)).train_window() is None
    assert make(cc=RecordingController()).train_window() is None  # a send hook of its own

    class Strict(NewReno):
        def can_send(self, bytes_in_flight: int) -> bool:
            return bytes_in_flight <= self.congestion_window // 2

    assert make(cc=Strict(1200)).train_window() is None
