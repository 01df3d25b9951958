"""The ACK paths' shortcuts against their general code (issue: server CPU per handshake): the ACK
tracker's duplicate test and ACK frame, the ranges it reads, a sent packet's frame bookkeeping, the
ledger's work per ACK when nothing is outstanding below it, and the window-use judgement per ACK.
Each compared with the longer way it replaces, including the cases that must take that way."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from rudp.codec import frames as f
from rudp.codec.frames import Ack, ConnectionClose, Crypto, Frame, Padding
from rudp.quic.acks import AckTracker
from rudp.quic.congestion.cubic import Cubic
from rudp.quic.congestion.newreno import NewReno
from rudp.quic.congestion.window_use import WindowUse
from rudp.quic.rangeset import RangeSet
from rudp.quic.sent import PacketSpace, SentPacket, SentPackets

APP = PacketSpace.APPLICATION


# -- the ACK tracker -------------------------------------------------------------------------------------


def _general_build_ack(tracker: AckTracker, now: float, exponent: int) -> Ack | None:
    """AckTracker.build_ack as it was written before its shortcut (the reference)."""
    received = tracker._received
    if not received:
        return None
    ranges: list[tuple[int, int]] = []
    for index in range(len(received) - 1, -1, -1):
        start, stop = received[index]
        ranges.append((start, stop - 1))
        if len(ranges) >= tracker.max_ack_ranges:
            break
    delay_us = max(0, round((now - tracker._largest_received_at) * 1_000_000))
    ecn = tracker.ecn_counts if tracker.report_ecn else None
    return Ack(ranges=tuple(ranges), ack_delay=delay_us >> exponent, ecn=ecn)


class _Sink:
    """A PacketSink that keeps what is pushed."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.pushed: list[tuple[Frame, object]] = []

    def push_frame(self, frame: Frame, handler: object = None) -> None:
        self.pushed.append((frame, handler))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-3, 4), st.booleans(), st.integers(0, 5)), min_size=0, max_size=80),
    st.integers(1, 5),
    st.booleans(),
    st.sampled_from([-0.002, 0.0, 0.0000005, 0.0000015, 0.003, 1.7]),
)
def test_duplicates_and_ack_frames_match_the_general_code(
    steps: list[tuple[int, bool, int]], max_ranges: int, ecn: bool, delay: float
) -> None:
    """is_duplicate's in-order answer (above the largest received: never a duplicate) against the
    floor and range test, and build_ack / write_frames against the frame built range by range: one
    range, several, more than max_ack_ranges, after ACK-of-ACK pruning and the memory bound, with ECN
    counts, with an ack delay rounding either way and a clock before the largest's arrival (0)."""
    tracker = AckTracker(APP, max_ack_ranges=max_ranges, report_ecn=ecn, ack_delay_exponent=2)
    pn, now = 0, 1.0
    for jump, eliciting, after in steps:
        pn = max(0, pn + jump)
        now += 0.001
        for number in (pn, pn + 1, pn + 40):
            general = number < tracker._floor or number in tracker._received
            assert tracker.is_duplicate(number) == general
        if not tracker.is_duplicate(pn):
            tracker.on_packet_received(pn, ack_eliciting=eliciting, now=now)
        if ecn and after == 1:
            tracker.report_ecn_counts((pn, 0, after))
        at = now + delay
        expected = _general_build_ack(tracker, at, 2)
        assert tracker.build_ack(at, 2) == expected
        if after == 0 and expected is not None:
            sink = _Sink(at)
            tracker.write_frames(sink)  # type: ignore[arg-type]
            ((frame, handler),) = sink.pushed
            assert frame == expected and not tracker.ack_pending
            assert handler.args == (expected.largest,)  # type: ignore[attr-defined]
            if pn % 3 == 0:
                tracker.on_ack_acked(expected.largest - pn % 5)  # ACK-of-ACK pruning (RFC 9000 §13.2.4)


def test_the_first_packet_of_a_space_takes_the_in_order_shortcut() -> None:
    """The first packet recorded (any number) gives what the general bookkeeping gives, in each
    space, with or without an immediate request (which takes the general path)."""

    class General(AckTracker):
        in_order_fast_path = False

    for space in PacketSpace:
        for first in (0, 1, 7):
            for immediate in (False, True):
                fast, general = AckTracker(space), General(space)
                for tracker in (fast, general):
                    tracker.on_data_packets(first, first + 2, 1.0, immediate)
                    tracker.on_data_packet(first + 5, 1.01, False)  # then a gap
                assert vars_of(fast) == vars_of(general)


def vars_of(tracker: AckTracker) -> dict[str, object]:
    values = {k: getattr(tracker, k) for k in AckTracker.__slots__}  # (slotted: no vars())
    return {k: (list(v) if isinstance(v, RangeSet) else v) for k, v in values.items()}


# -- ranges ----------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(1, 6))), st.integers(1, 6))
def test_newest_inclusive_is_the_ranges_highest_first(pairs: list[tuple[int, int]], limit: int) -> None:
    ranges = RangeSet()
    for start, length in pairs:
        ranges.add(start, start + length)
    expected = tuple((start, stop - 1) for start, stop in reversed(list(ranges)))[:limit]
    assert ranges.newest_inclusive(limit) == expected
    ranges.clear()
    assert not ranges and ranges.newest_inclusive(limit) == ()


# -- a sent packet's frames ------------------------------------------------------------------------------


def test_note_frame_matches_the_isinstance_chain() -> None:
    frames: list[Frame] = [
        Ack(((3, 9), (0, 1)), 4),
        Ack(((5, 5),), 0, (1, 0, 0)),
        Crypto(0, b"x"),
        Padding(10),
        ConnectionClose(0, None, ""),
        f.Ping(),
        f.HandshakeDone(),
        f.MaxData(100),
        f.NewToken(b"t"),
    ]
    for frame in frames:
        record = SentPacket(0, APP, 0.0, 0, False, False)
        record.note_frame(frame, None)
        eliciting = not isinstance(frame, (Ack, Padding, ConnectionClose))
        assert record.ack_eliciting == eliciting
        assert record.in_flight == (eliciting or isinstance(frame, Padding))
        assert record.is_crypto == isinstance(frame, Crypto)
        assert record.largest_acked_in_ack == (frame.largest if isinstance(frame, Ack) else None)


# -- the ledger per ACK ----------------------------------------------------------------------------------


def _ledger_state(ledger: SentPackets) -> tuple[object, ...]:
    return (
        list(ledger.packets),
        ledger.holes,
        list(ledger.acked),
        ledger.loss_time,
        ledger.ack_eliciting_in_flight,
        ledger.largest_acked,
    )


def test_ledger_skips_loss_detection_and_trim_only_when_nothing_is_outstanding_below() -> None:
    """What LossRecovery.on_ack_received now does (loss detection and the trim only when the ledger
    has holes, or lost packets) leaves the ledger as remove_acked, remove_lost and trim_acked after
    every ACK did: random flights, ACKs with gaps (also of packet numbers never sent), late ACKs of
    holes, losses by packet and time threshold, and no loss time left behind."""
    rng = random.Random(11)
    losses = emptied = runs_without_holes = 0
    for _ in range(150):
        fast, general = SentPackets(), SentPackets()
        pn, now = 0, 1.0
        outstanding: list[int] = []
        for _ in range(25):
            for _ in range(rng.randrange(0, 8)):
                if rng.random() < 0.1:
                    pn += 1  # a number never sent
                eliciting = rng.random() < 0.9
                for ledger in (fast, general):
                    ledger.add(SentPacket(pn, APP, now, 1200, eliciting, True))
                outstanding.append(pn)
                pn += 1
                now += 0.001
            if not outstanding:
                continue
            now += rng.choice([0.001, 0.02, 0.5])
            chosen = sorted(rng.sample(outstanding, rng.randrange(1, len(outstanding) + 1)))
            ranges: list[tuple[int, int]] = []
            for number in chosen:
                if ranges and ranges[-1][1] == number - 1:
                    ranges[-1] = (ranges[-1][0], number)
                else:
                    ranges.append((number, number))
            frame = tuple(reversed(ranges))
            for ledger in (fast, general):
                if ledger.largest_acked is None or frame[0][1] > ledger.largest_acked:
                    ledger.largest_acked = frame[0][1]
            had_holes = bool(fast.holes)
            got = fast.remove_acked(frame)
            expected = general.remove_acked(frame)
            emptied += had_holes and not fast.holes
            runs_without_holes += not had_holes and not fast.holes and len(frame) > 1
            assert got == expected
            lost = fast.remove_lost(now, 0.01, 3) if fast.holes else []
            if lost or fast.holes:
                fast.trim_acked()
            assert lost == general.remove_lost(now, 0.01, 3)
            general.trim_acked()
            assert _ledger_state(fast) == _ledger_state(general)
            gone = {packet.packet_number for packet in (*got, *lost)}
            outstanding = [number for number in outstanding if number not in gone]
            losses += bool(lost)
    assert losses > 100 and emptied > 100 and runs_without_holes > 20


# -- the window's use per ACK ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 20), st.booleans(), st.floats(-1.0, 3.0)),
        max_size=40,
    ),
    st.booleans(),
)
def test_window_use_on_ack_is_window_limited_then_on_acked(
    steps: list[tuple[int, int, bool, float]], cubic: bool
) -> None:
    """WindowUse.on_ack (the window and slow start read only when they decide): window_limited with
    the controller's window and slow start, then on_acked, in slow start and after it."""
    fast, general = WindowUse(), WindowUse()
    controller = Cubic(1200) if cubic else NewReno(1200)
    at = 0.0
    for kind, packets, shrink, newest in steps:
        at += 0.5
        if shrink:
            controller.ssthresh = controller.cwnd = max(2400, controller.cwnd // 2)  # out of slow start
        for use in (fast, general):
            if kind == 0:
                use.on_sent(packets * 1200, packets * 1200 >= controller.cwnd, at)
            elif kind == 1:
                use.on_window_refused(packets * 1200)
        newest_sent_at = float("-inf") if newest < 0 else at - newest
        limited = general.window_limited(controller.congestion_window, controller.in_slow_start)
        general.on_acked(newest_sent_at)
        assert fast.on_ack(controller, newest_sent_at) == limited
        assert fast.__getstate__() == general.__getstate__()  # type: ignore[attr-defined]
