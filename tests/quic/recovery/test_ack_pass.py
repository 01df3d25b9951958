"""The sender's work per ACK frame (issue 13): what recovery's one pass over the newly acknowledged
packets gathers for the ACK's other readers (ECN validation, ACK-of-ACK pruning), and the handlers
an ACK calls once however many packets carry them (:class:`~rudp.quic.delivery.AckedOnce`, the PMTU
search's large-datagram watch). Each against the per-packet outcome: random flights, losses and ACKs
of any packets."""

from __future__ import annotations

import random
from collections import deque
from functools import partial

from rudp.quic.ack_frequency import AckFrequency
from rudp.quic.delivery import AckedOnce, Batched, DeliveryHandler, deliver_acked
from rudp.quic.ecn import EcnFeedback, EcnPath
from rudp.quic.pmtud import PmtuDiscovery
from rudp.quic.recovery import LossRecovery
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace, SentPacket
from rudp.quic.spaces import PacketNumberSpace
from tests.quic.recovery.helpers import RecordingController, ack_of, packet

APP = PacketSpace.APPLICATION


def test_recovery_pass_gathers_the_ecn_count_and_the_carried_largest() -> None:
    """After every ACK, ``acked_ect0`` is the number of acknowledged ECT(0) packets not sent on a path
    left since (RFC 9000 §13.4.2.1, what EcnPath.on_ack counts) and ``acked_carried_largest`` the
    largest acknowledged of their ACK frames, -1 if none carried one (RFC 9000 §13.2.4): as computed
    from the returned packets one by one. Off-path packets, packets not in flight and losses between."""
    rng = random.Random(3)
    checked = 0
    for _ in range(60):
        recovery = LossRecovery(RecordingController(), RttEstimator(), is_client=False)
        recovery.set_handshake_confirmed()
        pn, now = 0, 1.0
        outstanding: list[int] = []
        for _ in range(30):
            for _ in range(rng.randrange(0, 12)):
                eliciting = rng.random() < 0.85
                carried = rng.randrange(0, 1000) if rng.random() < 0.2 else None
                sent = packet(pn, now, ack_eliciting=eliciting, largest_acked_in_ack=carried)
                sent.ect0 = rng.random() < 0.7
                recovery.on_packet_sent(sent)
                outstanding.append(pn)
                pn += 1
                now += 0.001
            if rng.random() < 0.1:
                recovery.on_path_change()  # what is outstanding is now off path
            if not outstanding:
                continue
            now += 0.01
            chosen = rng.sample(outstanding, rng.randrange(1, len(outstanding) + 1))
            acked = recovery.on_ack_received(APP, ack_of(*chosen), 0.0, now)
            outstanding = [n for n in outstanding if n not in chosen]
            if not acked:
                continue
            checked += 1
            marked = sum(1 for sent in acked if sent.ect0 and not sent.off_path)
            carried_values = [s.largest_acked_in_ack for s in acked if s.largest_acked_in_ack is not None]
            assert recovery.acked_ect0 == marked
            assert recovery.acked_carried_largest == max(carried_values, default=-1)
            # EcnPath.on_ack's own count gives the answer its counted variant gives.
            paths = [EcnPath(enabled=True), EcnPath(enabled=True)]
            feedbacks = [EcnFeedback(), EcnFeedback()]
            counts = (rng.randrange(0, 2 * len(acked)), 0, rng.randrange(0, 3))
            own = paths[0].on_ack(APP, counts, acked, feedbacks[0])
            given = paths[1].on_ack_marked(APP, counts, recovery.acked_ect0, feedbacks[1])
            assert own == given and paths[0].state == paths[1].state
            assert feedbacks[0].peer == feedbacks[1].peer
    assert checked > 800


class _Sink:
    """A BatchSink that logs what it is told."""

    def __init__(self, log: list[object]) -> None:
        self.log = log

    def deliver(self, item: tuple[int, ...], acked: bool) -> None:
        self.log.append(("item", item, acked))

    def deliver_acked(self, items: list[tuple[int, ...]]) -> None:
        for item in items:
            self.log.append(("item", item, True))


def _plain(log: list[object], number: int, acked: bool) -> None:
    log.append(("plain", number, acked))


def _state(pmtud: PmtuDiscovery) -> tuple[object, ...]:
    return (pmtud.current, pmtud.base, pmtud._large_losses, pmtud._ceiling, pmtud.searching)


def test_large_datagram_watch_once_per_ack_equals_per_packet() -> None:
    """Packets carry stream items (Batched), a plain handler and, when large, the PMTU search's
    watch. Losses (their handlers called one by one) and ACKs: an ACK's handlers through
    deliver_acked (the watch once) leave the PMTU search as calling every handler per packet does
    (losses in a row, black holes: RFC 8899 §4.3), and the sink and the plain handler see the same
    calls in the same order. Fails if the watch is left out or called before the ACK's losses."""
    rng = random.Random(8)
    black_holes = 0
    for _ in range(300):
        pmtuds = [PmtuDiscovery(1200, 1500), PmtuDiscovery(1200, 1500)]
        for pmtud in pmtuds:
            pmtud.on_probe_acked(1452)
        logs: list[list[object]] = [[], []]
        sinks = [_Sink(logs[0]), _Sink(logs[1])]
        flights: list[list[SentPacket]] = [[], []]
        pn = 0
        for _ in range(40):
            for _ in range(rng.randrange(0, 6)):
                large = rng.random() < 0.7
                plain = rng.random() < 0.2
                for side in (0, 1):
                    item = (4, pn, pn + 1, 0)
                    handlers: list[DeliveryHandler] = [Batched(_Sink.deliver, sinks[side], item)]
                    if plain:
                        handlers.append(partial(_plain, logs[side], pn))
                    if large:
                        handlers.append(pmtuds[side].large_handler)
                    sent = SentPacket(pn, APP, 0.0, 1452 if large else 1200, True, True, handlers)
                    flights[side].append(sent)
                pn += 1
            if not flights[0]:
                continue
            count = len(flights[0])
            chosen = sorted(rng.sample(range(count), rng.randrange(0, count + 1)))
            lost = [i for i in range(count) if i not in chosen and rng.random() < 0.5]
            for side in (0, 1):
                for index in lost:  # losses come first (LossRecovery: before the ACK's deliveries)
                    for handler in flights[side][index].handlers:
                        handler(False)
                acked = [flights[side][index] for index in chosen]
                if side == 0:
                    for sent in acked:
                        for handler in sent.handlers:
                            handler(True)
                else:
                    deliver_acked(acked)
                flights[side] = [p for i, p in enumerate(flights[side]) if i not in chosen and i not in lost]
            assert _state(pmtuds[0]) == _state(pmtuds[1])
            for kind in ("item", "plain"):  # (a sink's items wait for the end of its run, as before)
                assert [e for e in logs[0] if e[0] == kind] == [e for e in logs[1] if e[0] == kind]  # type: ignore[index]
        black_holes += pmtuds[0].current == 1200
    assert black_holes > 10


def test_acked_once_handlers_are_called_once_per_ack_each() -> None:
    calls: list[tuple[str, bool]] = []

    def note(name: str, acked: bool) -> None:
        calls.append((name, acked))

    first, second = AckedOnce(note, "a"), AckedOnce(note, "b")
    both: list[DeliveryHandler] = [first, second]
    packets = [SentPacket(n, APP, 0.0, 1200, True, True, both[: 1 + n % 2]) for n in range(6)]
    deliver_acked(packets)
    assert calls == [("a", True), ("b", True)]
    first(False)  # a loss: called as it is
    assert calls[-1] == ("a", False)


def test_never_sent_in_equals_a_scan_of_every_range() -> None:
    """The skipped-number check (RFC 9000 §21.4), asked per ACK, looks into the ranges only for
    numbers between the lowest and the highest acknowledged: the same answer as every range scanned
    for every skipped number, on random descending ranges."""
    rng = random.Random(4)
    space = PacketNumberSpace(APP, random.Random(0).randbytes, skip_numbers=True)
    for _ in range(3000):
        space.skipped = deque(sorted(rng.sample(range(400), rng.randrange(0, 16))), maxlen=16)
        ranges: list[tuple[int, int]] = []
        high = rng.randrange(0, 420)
        while high >= 0 and len(ranges) < rng.randrange(1, 6):
            low = max(0, high - rng.randrange(0, 40))
            ranges.append((low, high))
            high = low - 2 - rng.randrange(0, 30)
        expected = next((n for n in space.skipped if any(lo <= n <= hi for lo, hi in ranges)), None)
        assert space.never_sent_in(tuple(ranges)) == expected


def test_ack_frequency_resting_means_update_changes_nothing() -> None:
    """AckReceiving skips ``AckFrequency.update`` (and gathering its arguments) while ``resting``:
    over random windows, RTTs and times, whenever it answers True, update sends nothing and changes
    nothing (a request went out less than a smoothed RTT ago)."""
    rng = random.Random(6)
    sent: list[object] = []
    resting_seen = 0
    for _ in range(200):
        policy = AckFrequency(rng.choice([None, 1000]), sent.append)
        now = 0.0
        for _ in range(40):
            now += rng.choice([0.0001, 0.001, 0.01, 0.05])
            smoothed = rng.choice([0.001, 0.01, 0.03])
            resting = policy.resting(now, smoothed)
            before = (policy.requested, len(sent), policy._last_sent_at, policy._next_sequence)
            policy.update(
                congestion_window=rng.choice([12_000, 100_000, 1_000_000, 4_000_000]),
                max_datagram_size=1200,
                smoothed_rtt=smoothed,
                peer_min_ack_delay=rng.choice([1000, 1000, None]),
                peer_max_ack_delay=25,
                now=now,
            )
            if resting:
                resting_seen += 1
                assert (policy.requested, len(sent), policy._last_sent_at, policy._next_sequence) == before
    assert resting_seen > 500 and len(sent) > 100
