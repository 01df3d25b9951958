"""The pacer against a virtual clock driven like an event loop with a coarse timer (issue 13).

A sender that always has data sends whenever the pacer allows, and otherwise sleeps until
:meth:`Pacer.next_send_at` (a timer that fires exactly then, or rounded up to the loop's tick): no
burst exceeds the bucket, the rate holds over 100 ms windows, no wake-up is closer than one
granularity, and no timer firing finds the pacer still saying no (no spin).
"""

from __future__ import annotations

import math

import pytest

from rudp.quic.congestion.base import SLOW_START_PACING_GAIN
from rudp.quic.congestion.bbr import Bbr
from rudp.quic.congestion.newreno import NewReno
from rudp.quic.pacing import Pacer
from rudp.quic.rtt import RttEstimator

MDS = 1452


def _run(granularity: float, srtt: float, cwnd: int, *, tick: float, duration: float = 1.0):  # type: ignore[no-untyped-def]
    congestion = NewReno(MDS)
    congestion.cwnd = cwnd
    rtt = RttEstimator()
    rtt.update(srtt, 0.0, handshake_confirmed=True, max_ack_delay=0.0)
    pacer = Pacer(MDS, granularity=granularity)
    now, sends, firings, empty, waits = 0.0, [], 0, 0, []
    while now < duration:
        sent = 0
        while pacer.allows(now, MDS, congestion, rtt):
            pacer.on_sent(MDS, now)
            sends.append(now)
            sent += 1
        deadline = pacer.next_send_at(MDS)
        waits.append(deadline - now)
        # The loop's timer: never early, rounded up to its tick (uvloop: 1 ms).
        fire = math.ceil(deadline / tick - 1e-9) * tick if tick else deadline
        now = max(fire, deadline)
        firings += 1
        if not pacer.allows(now, MDS, congestion, rtt):
            empty += 1
    return pacer, sends, firings, empty, waits


@pytest.mark.parametrize(
    ("granularity", "srtt", "cwnd", "tick"),
    [
        (0.001, 0.040, 200_000, 0.0),
        (0.001, 0.040, 200_000, 0.001),
        (0.001, 0.005, 100_000, 0.001),
        (0.002, 0.020, 400_000, 0.001),
        (0.0001, 0.040, 60_000, 0.0),
    ],
)
def test_bursts_rate_and_no_spin(granularity: float, srtt: float, cwnd: int, tick: float) -> None:
    _pacer, sends, firings, empty, waits = _run(granularity, srtt, cwnd, tick=tick)
    rate = SLOW_START_PACING_GAIN * cwnd / srtt  # NewReno without a loss is in slow start
    capacity = Pacer.burst_allowance(rate, MDS, granularity, cwnd)
    # Never a burst beyond the bucket: bytes sent at one instant.
    per_instant: dict[float, int] = {}
    for at in sends:
        per_instant[at] = per_instant.get(at, 0) + MDS
    assert max(per_instant.values()) <= capacity + MDS
    # The average rate over 100 ms windows is the pacing rate within 10%.
    for start in (0.1, 0.3, 0.5, 0.8):
        sent = sum(MDS for at in sends if start <= at < start + 0.1)
        assert abs(sent / 0.1 - rate) <= 0.1 * rate, (start, sent / 0.1, rate)
    # No wake-up closer than one granularity, none in the past.
    assert min(waits) >= granularity - 1e-12 and min(waits) > 0
    # Every timer firing lets something out.
    assert firings > 0 and empty == 0


def test_next_send_at_is_at_least_one_granularity_away() -> None:
    congestion = NewReno(MDS)
    congestion.cwnd = 1_000_000
    rtt = RttEstimator()
    rtt.update(0.001, 0.0, handshake_confirmed=True, max_ack_delay=0.0)
    pacer = Pacer(MDS, granularity=0.002)
    now = 5.0
    while pacer.allows(now, MDS, congestion, rtt):
        pacer.on_sent(MDS, now)
    assert pacer.next_send_at(MDS) >= now + 0.002


def test_burst_allowance_bounds() -> None:
    # Slow: at least two datagrams; moderate: 2 ms of the rate up to 10 datagrams.
    assert Pacer.burst_allowance(1000.0, MDS, 0.001, 50_000) == 2 * MDS
    assert Pacer.burst_allowance(5 * MDS / 0.002, MDS, 0.001, 50_000) == pytest.approx(5 * MDS)
    assert Pacer.burst_allowance(100 * MDS / 0.002, MDS, 0.0001, 10**6) == 10 * MDS
    # Fast with a 1 ms timer: two ticks of the rate, but never more than half the window.
    assert Pacer.burst_allowance(20 * MDS / 0.001, MDS, 0.001, 10**7) == pytest.approx(40 * MDS)
    assert Pacer.burst_allowance(20 * MDS / 0.001, MDS, 0.001, 40 * MDS) == pytest.approx(20 * MDS)


@pytest.mark.parametrize("controller", ["newreno", "bbr", "no sample"])
def test_allows_again_answers_as_allows(controller: str) -> None:
    """A train asks :meth:`Pacer.allows_again` for every packet after its first: the same answers,
    tokens, rate and wake-up as :meth:`Pacer.allows`, whether the window stays (a train), moves
    between two packets (never in a train, but the fast answer must notice), or the rate is the
    controller's own (BBR: never answered from the bucket alone)."""

    def make():  # type: ignore[no-untyped-def]
        congestion = Bbr(MDS) if controller == "bbr" else NewReno(MDS)
        if isinstance(congestion, NewReno):
            congestion.cwnd = 40 * MDS
        rtt = RttEstimator()
        if controller != "no sample":
            rtt.update(0.020, 0.0, handshake_confirmed=True, max_ack_delay=0.0)
        return congestion, rtt, Pacer(MDS, granularity=0.001)

    plain, trained = make(), make()
    answers: list[tuple[bool, bool]] = []
    now, moved = 1.0, False
    for step in range(200):
        if step % 37 == 36:
            now += 0.0007  # a later call: the bucket refills
        if step >= 90 and not moved and answers[-1][0] and plain[2].allows(now, MDS, plain[0], plain[1]):
            # Right after a packet went at this instant, with room for another: a train would ask
            # the bucket alone next (one look at the plain pacer, which changes nothing at one instant).
            moved = True
            for congestion, _, _ in (plain, trained):
                if isinstance(congestion, NewReno):
                    congestion.cwnd = 20 * MDS  # the window moves: the rate with it
                else:
                    # BBR's own rate may move as a packet leaves (its restart from idle): as if so.
                    congestion._pacing_rate = 30 * MDS / 0.020
        results = []
        for (congestion, rtt, pacer), ask in ((plain, plain[2].allows), (trained, trained[2].allows_again)):
            allowed = ask(now, MDS, congestion, rtt)
            if allowed:
                pacer.on_sent(MDS, now)
            results.append(allowed)
        answers.append((results[0], results[1]))
        a, b = plain[2], trained[2]
        assert (a.rate, a.burst_bytes, a.next_send_at(MDS)) == (b.rate, b.burst_bytes, b.next_send_at(MDS))
        if not results[0]:
            now = a.next_send_at(MDS)  # the pacing timer fires
    assert all(x == y for x, y in answers)
    assert moved
    if controller == "no sample":
        assert all(x for x, _ in answers)  # no RTT sample: nothing is paced
    else:
        assert any(x for x, _ in answers) and not all(x for x, _ in answers)  # both answers occur


@pytest.mark.parametrize("controller", ["newreno", "bbr", "no sample"])
def test_train_room_gives_the_per_packet_answers(controller: str) -> None:
    """A train asks :meth:`Pacer.train_room` once, counts its packets down from the room, charges them
    in one :meth:`Pacer.on_sent` and asks again only when the next packet does not fit: the same
    packets go and the same ones are refused as when every packet asks allows/allows_again and is
    charged at once, with the same tokens, rate and wake-up after each train (sizes vary: a packet
    may be smaller than the datagram size when the data runs out)."""

    def make():  # type: ignore[no-untyped-def]
        congestion = Bbr(MDS) if controller == "bbr" else NewReno(MDS)
        if isinstance(congestion, NewReno):
            congestion.cwnd = 40 * MDS
        rtt = RttEstimator()
        if controller != "no sample":
            rtt.update(0.020, 0.0, handshake_confirmed=True, max_ack_delay=0.0)
        return congestion, rtt, Pacer(MDS, granularity=0.001)

    plain, batched = make(), make()
    sizes = [MDS, MDS, 700, MDS, 1200, MDS, MDS, 90]
    now, trains, refused, packets = 1.0, 0, 0, 0
    for train in range(60):
        wanted = 5 + train % 13  # packets the train would send if the pacer let it
        sent_plain: list[int] = []
        for index in range(wanted):
            size = sizes[(train + index) % len(sizes)]
            ask = plain[2].allows_again if index else plain[2].allows
            if not ask(now, size, plain[0], plain[1]):
                break
            plain[2].on_sent(size, now)
            sent_plain.append(size)
        sent_batched: list[int] = []
        room, spent = 0.0, 0
        congestion, rtt, pacer = batched
        for index in range(wanted):
            size = sizes[(train + index) % len(sizes)]
            if size > room:
                if spent:
                    pacer.on_sent(spent, now)
                    spent = 0
                room = pacer.train_room(now, size, congestion, rtt, again=bool(index))
                if not room:
                    break
            room -= size
            spent += size
            sent_batched.append(size)
        if spent:
            pacer.on_sent(spent, now)
        assert sent_batched == sent_plain, train
        a, b = plain[2], batched[2]
        assert (a.rate, a.burst_bytes, a.next_send_at(MDS)) == (b.rate, b.burst_bytes, b.next_send_at(MDS))
        trains += 1
        packets += len(sent_plain)
        refused += len(sent_plain) < wanted
        # The next train: at the pacing deadline when this one was stopped, else a little later.
        now = a.next_send_at(MDS) if len(sent_plain) < wanted else now + 0.0003
    assert trains == 60
    if controller == "no sample":
        assert refused == 0  # nothing is paced without an RTT sample
    elif controller == "newreno":
        assert 0 < refused < 60  # trains both stopped by the pacer and let through whole
    else:
        assert refused > 0 and packets > trains  # BBR's own rate: answered packet by packet
