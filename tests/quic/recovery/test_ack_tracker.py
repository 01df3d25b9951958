"""AckTracker: received ranges, ACK timing (RFC 9000 §13.2) and ACK-of-ACK pruning."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.quic.acks import AckTracker
from rudp.quic.sent import PacketSpace


def receive(tracker: AckTracker, *pns: int, now: float = 0.0, ack_eliciting: bool = True) -> None:
    for pn in pns:
        tracker.on_packet_received(pn, ack_eliciting=ack_eliciting, now=now)


def test_nothing_received_builds_no_ack() -> None:
    tracker = AckTracker(PacketSpace.APPLICATION)
    assert tracker.build_ack(0.0, 3) is None
    assert tracker.largest_received is None
    assert not tracker.ack_needed(10.0)
    assert tracker.ack_deadline() is None


def test_ranges_descending_inclusive() -> None:
    tracker = AckTracker(PacketSpace.APPLICATION)
    receive(tracker, 0, 1, 2, 5, 6, 9)
    ack = tracker.build_ack(0.0, 3)
    assert ack is not None
    assert ack.ranges == ((9, 9), (5, 6), (0, 2))
    assert ack.largest == 9
    assert tracker.largest_received == 9


def test_duplicates_detected_and_ignored() -> None:
    tracker = AckTracker(PacketSpace.APPLICATION)
    receive(tracker, 3)
    assert tracker.is_duplicate(3)
    assert not tracker.is_duplicate(4)
    tracker.on_ack_sent(0.0)
    receive(tracker, 3)  # ignored: no new ACK obligation
    assert not tracker.ack_pending
    assert tracker.ack_deadline() is None


def test_delayed_ack_deadline_is_receipt_plus_max_ack_delay() -> None:
    tracker = AckTracker(PacketSpace.APPLICATION, max_ack_delay=0.025)
    receive(tracker, 0, now=1.0)
    assert tracker.ack_deadline() == pytest.approx(1.025)
    assert not tracker.ack_needed(1.0)
    assert not tracker.ack_needed(1.0249)
    assert tracker.ack_needed(1.025)


def test_every_second_ack_eliciting_packet_acks_immediately() -> None:
    tracker = AckTracker(PacketSpace.APPLICATION, max_ack_delay=0.025)
    receive(tracker, 0, now=1.0)
    assert not tracker.ack_needed(1.001)
    receive(tracker, 1, now=1.002)
    assert tracker.ack_needed(1.002)
    deadline = tracker.ack_deadline()
    assert deadline is not None and deadline <= 1.002
    tracker.on_ack_sent(1.002)
    assert not tracker.ack_needed(5.0)
    receive(tracker, 2, now=1.003)
    assert not tracker.ack_needed(1.003)


def test_out_of_order_packet_acks_immediately() -> None:
    tracker = AckTracker(PacketSpace.APPLICATION, max_ack_delay=0.025)
    receive(tracker, 5, now=1.0)
    tracker.on_ack_sent(1.0)
    receive(tracker, 3, now=1.01)  # below the largest ack-eliciting packet
    assert tracker.ack_needed(1.01)


def test_gap_above_largest_acks_immediately() -> None:
    tracker = AckTracker(PacketSpace.APPLICATION, max_ack_delay=0.025)
    receive(tracker, 0, now=1.0)
    tracker.on_ack_sent(1.0)
    receive(tracker, 2, now=1.01)  # 1 is missing
    assert tracker.ack_needed(1.01)


def test_gap_filled_by_non_eliciting_packet_is_in_order() -> None:
    tracker = AckTracker(PacketSpace.APPLICATION, max_ack_delay=0.025)
    receive(tracker, 0, now=1.0)
    receive(tracker, 1, now=1.0, ack_eliciting=False)
    tracker.on_ack_sent(1.0)
    receive(tracker, 2, now=1.01)
    assert not tracker.ack_needed(1.01)


def test_gap_filled_below_the_pruned_floor_is_in_order() -> None:
    """Request/response: the client's request (0), its ACK-only packet (1), then its next request (2)
    whose ACK frame tells us the peer saw our ACK up to 1, so 0..1 are pruned first. Packet 2 follows
    packet 1 without a gap: no immediate ACK (RFC 9000 §13.2.1 asks one only for a real gap)."""
    tracker = AckTracker(PacketSpace.APPLICATION, max_ack_delay=0.025)
    receive(tracker, 0, now=1.0)
    receive(tracker, 1, now=1.0, ack_eliciting=False)
    tracker.on_ack_sent(1.0)
    tracker.on_ack_acked(1)  # the frames of packet 2 are handled before packet 2 is recorded
    receive(tracker, 2, now=1.01)
    assert not tracker.ack_needed(1.01)
    receive(tracker, 4, now=1.02)  # 3 is missing: a real gap above the floor still counts
    assert tracker.ack_needed(1.02)


def test_non_eliciting_packets_alone_never_need_an_ack() -> None:
    tracker = AckTracker(PacketSpace.APPLICATION, max_ack_delay=0.025)
    receive(tracker, 0, 1, 2, 5, now=1.0, ack_eliciting=False)
    assert not tracker.ack_needed(100.0)
    assert tracker.ack_deadline() is None
    assert tracker.ack_pending  # but they may be piggybacked
    ack = tracker.build_ack(1.0, 3)
    assert ack is not None and ack.ranges == ((5, 5), (0, 2))


@pytest.mark.parametrize("space", [PacketSpace.INITIAL, PacketSpace.HANDSHAKE])
def test_initial_and_handshake_ack_immediately(space: PacketSpace) -> None:
    tracker = AckTracker(space, max_ack_delay=0.025)
    receive(tracker, 0, now=2.0)
    assert tracker.ack_needed(2.0)
    assert tracker.ack_deadline() == pytest.approx(2.0)


def test_ack_delay_encoding_with_exponent() -> None:
    tracker = AckTracker(PacketSpace.APPLICATION)
    receive(tracker, 0, now=1.0)
    receive(tracker, 7, now=1.5)
    receive(tracker, 3, now=1.6)  # older packet: delay counts from the largest's receipt
    ack = tracker.build_ack(1.5 + 0.0123, 3)
    assert ack is not None
    assert ack.ack_delay == 12300 >> 3
    ack = tracker.build_ack(1.5 + 0.0123, 0)
    assert ack is not None and ack.ack_delay == 12300


def test_ack_holds_at_most_max_ranges_newest_first() -> None:
    tracker = AckTracker(PacketSpace.APPLICATION, max_ack_ranges=32)
    receive(tracker, *range(0, 200, 2))  # 100 separate ranges
    ack = tracker.build_ack(0.0, 3)
    assert ack is not None
    assert len(ack.ranges) == 32
    assert ack.ranges[0] == (198, 198)
    assert ack.ranges[-1] == (136, 136)


def test_ack_of_ack_prunes_ranges_and_keeps_largest() -> None:
    tracker = AckTracker(PacketSpace.APPLICATION)
    receive(tracker, 0, 1, 2, 4, 5, 8, 9)
    tracker.on_ack_acked(5)
    ack = tracker.build_ack(0.0, 3)
    assert ack is not None and ack.ranges == ((8, 9),)
    # Pruned packet numbers are now treated as duplicates (never accepted again).
    assert tracker.is_duplicate(3)
    assert not tracker.is_duplicate(6)
    tracker.on_ack_acked(9)
    assert tracker.build_ack(0.0, 3) is None
    assert tracker.largest_received == 9
    tracker.on_ack_acked(2)  # an older ACK acked later changes nothing
    assert tracker.is_duplicate(7)


def test_memory_bounded_under_many_gaps() -> None:
    tracker = AckTracker(PacketSpace.APPLICATION)
    receive(tracker, *range(0, 10_000, 2))
    ack = tracker.build_ack(0.0, 3)
    assert ack is not None and ack.largest == 9998
    # The oldest ranges were forgotten: never-received old numbers now count as duplicates.
    assert tracker.is_duplicate(1)
    assert not tracker.is_duplicate(9997)


def test_ecn_counts_carried_when_enabled() -> None:
    tracker = AckTracker(PacketSpace.APPLICATION, report_ecn=True)
    receive(tracker, 0)
    ack = tracker.build_ack(0.0, 3)
    assert ack is not None and ack.ecn == (0, 0, 0)
    plain = AckTracker(PacketSpace.APPLICATION)
    receive(plain, 0)
    ack = plain.build_ack(0.0, 3)
    assert ack is not None and ack.ecn is None


class _General(AckTracker):
    """The tracker without its in-order shortcut: every packet through the general bookkeeping."""

    in_order_fast_path = False


def _observe(tracker: AckTracker, now: float) -> tuple[object, ...]:
    ack = tracker.build_ack(now, 3)
    return (
        tracker.largest_received,
        tracker.ack_pending,
        tracker.ack_needed(now),
        tracker.ack_deadline(),
        tracker.eliciting_unacknowledged,
        tracker.answers_flow,
        None if ack is None else (ack.ranges, ack.ack_delay),
    )


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),  # how far the packet number moves (0: a repeat, 1: the next one)
            st.booleans(),  # ack-eliciting
            st.sampled_from([None, True, False]),  # flow
            st.integers(0, 9),  # then: 0-1 an ACK is sent (1: only if needed), 2 ACK_FREQUENCY, 3 back
        ),
        max_size=60,
    ),
    st.sampled_from([PacketSpace.APPLICATION, PacketSpace.HANDSHAKE]),
)
def test_in_order_shortcut_matches_the_general_path(
    steps: list[tuple[int, bool, bool | None, int]], space: PacketSpace
) -> None:
    fast, general = AckTracker(space), _General(space)
    pn, now = 0, 0.0
    for jump, eliciting, flow, after in steps:
        pn = max(0, pn - jump if after == 3 else pn + jump)  # mostly in order, some going back
        now += 0.001
        for tracker in (fast, general):
            if tracker.is_duplicate(pn):
                pass
            elif eliciting and flow:  # a data packet, as the receive fast path records it
                tracker.on_data_packet(pn, now, after == 9)  # (sometimes one the peer waits on)
            else:
                tracker.on_packet_received(pn, ack_eliciting=eliciting, now=now, flow=flow)
            if (after == 0 and tracker.ack_pending) or (after == 1 and tracker.ack_needed(now)):
                tracker.on_ack_sent(now)
            elif after == 2:
                tracker.configure(threshold=jump + 1, max_ack_delay=0.01, reordering_threshold=jump)
        assert _observe(fast, now) == _observe(general, now)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-2, 3), st.integers(1, 12), st.integers(0, 4)), max_size=25),
    st.booleans(),
)
def test_a_run_of_data_packets_equals_them_one_by_one(
    runs: list[tuple[int, int, int]], general_path: bool
) -> None:
    """AckTracker.on_data_packets(first, last): what on_data_packet for first..last in turn does, in
    order or after a gap, with or without an immediate request, with ACKs sent in between."""
    kind = _General if general_path else AckTracker
    batched, single = kind(PacketSpace.APPLICATION), kind(PacketSpace.APPLICATION)
    pn, now = 0, 0.0
    for jump, count, after in runs:
        first = max(0, pn + jump)
        largest = batched.largest_received
        if largest is not None and first <= largest:
            first = largest + 1  # a run starts above what was received (as the receiver's do)
        last = first + count - 1
        now += 0.002
        immediate = after == 4
        batched.on_data_packets(first, last, now, immediate)
        for number in range(first, last + 1):
            single.on_data_packet(number, now, immediate)
        assert _observe(batched, now) == _observe(single, now)
        if after == 0:
            for tracker in (batched, single):
                tracker.on_ack_sent(now)
        elif after == 1:
            for tracker in (batched, single):
                tracker.configure(threshold=count, max_ack_delay=0.01, reordering_threshold=1)
        pn = last + 1
