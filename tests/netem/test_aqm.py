"""Unit tests of the bottleneck queue, the ECN markers (step, RED, CoDel), Gilbert-Elliott loss and the
queue-delay statistics, all on a virtual clock (the channel is fed explicit times; nothing sleeps)."""

from __future__ import annotations

import json
import math
import random

import pytest

from rudp.netem import CodelMarker, GilbertElliott, ImpairmentError, Impairments, RedMarker, StepMarker
from rudp.netem.channel import Channel, Verdict
from rudp.netem.packet import (
    ECN_CE,
    ECN_ECT0,
    ECN_ECT1,
    ECN_NOT_ECT,
    checksum,
    ecn,
    fix_ipv4_header_checksum,
    set_ecn,
    transport_checksum_ok,
)
from rudp.netem.scenario import SCENARIOS, parse_spec
from rudp.netem.stats import DirectionStats
from tests.netem.test_units import CLIENT, SERVER, udp_packet

MS = 0.001
RATE = 8e6  # a 1000-byte packet takes exactly 1 ms


def channel(imp: Impairments, seed: int = 1) -> tuple[Channel, DirectionStats]:
    stats = DirectionStats()
    return Channel(imp, stats, random.Random(seed), 0.0), stats


def burst(ch: Channel, n: int, now: float = 0.0, size: int = 1000, ecn_: int = ECN_ECT0) -> list[Verdict]:
    return [ch.process(size, now, ecn_) for _ in range(n)]


# -- the finite bottleneck queue ----------------------------------------------------------------------


def test_queue_limit_counts_bytes_including_the_packet_in_transmission() -> None:
    ch, stats = channel(Impairments(rate_bps=RATE, queue_bytes=10_000))
    verdicts = burst(ch, 30)
    assert [v.cause for v in verdicts] == [None] * 10 + ["queue"] * 20
    # FIFO at the configured rate: departures every 1 ms.
    assert [v.deliver_at[0] for v in verdicts[:10]] == pytest.approx([(i + 1) * MS for i in range(10)])
    assert stats.queue_peak_bytes == 10_000 and stats.dropped == {"queue": 20}
    assert stats.dropped_bytes == 20_000
    # At 2.5 ms two packets have left: exactly two more fit.
    assert [v.cause for v in burst(ch, 3, now=2.5 * MS)] == [None, None, "queue"]
    # Mixed sizes: a byte limit, not a packet limit.
    ch, stats = channel(Impairments(rate_bps=RATE, queue_bytes=5000))
    assert [v.cause for v in burst(ch, 4, size=1500)] == [None, None, None, "queue"]
    assert ch.process(500, 0.0).cause is None  # 4500 + 500 fits exactly
    assert ch.process(1, 0.0).cause == "queue"
    assert stats.queue_peak_bytes == 5000


def test_queue_delay_statistics() -> None:
    ch, stats = channel(Impairments(rate_bps=RATE, queue_bytes=1_000_000))
    burst(ch, 100)  # queue delays 0, 1, ..., 99 ms
    assert stats.queue_delay_samples == 100
    assert stats.queue_delay_max == pytest.approx(99 * MS)
    pct = stats.queue_delay_percentiles()
    assert pct["p50"] == pytest.approx(49 * MS, rel=0.03)
    assert pct["p90"] == pytest.approx(89 * MS, rel=0.03)
    assert pct["p99"] == pytest.approx(98 * MS, rel=0.03)
    again = DirectionStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert again == stats and again.queue_delay_percentiles() == pct
    assert "queue delay ms p50/p90/p99/max" in stats.summary()
    assert DirectionStats().queue_delay_percentile(50) == 0.0


# -- the step (L4S-style) marker ----------------------------------------------------------------------


def test_step_marker_marks_above_the_delay_threshold() -> None:
    imp = Impairments(rate_bps=RATE, aqm=StepMarker(threshold=2.5 * MS))
    ch, stats = channel(imp)
    verdicts = burst(ch, 10)  # queue delays 0..9 ms
    assert [v.ce[0] for v in verdicts] == [False] * 3 + [True] * 7
    assert stats.ce_marked == 7 and stats.dropped == {}
    ch, stats = channel(imp)
    assert sum(v.ce[0] for v in burst(ch, 10, ecn_=ECN_ECT1)) == 7  # ECT(1) too


def test_step_marker_by_backlog_bytes() -> None:
    ch, stats = channel(Impairments(rate_bps=RATE, aqm=StepMarker(threshold_bytes=3000)))
    verdicts = burst(ch, 10)  # backlog found on arrival 0, 1000, ..., 9000 bytes
    assert [v.ce[0] for v in verdicts] == [False] * 4 + [True] * 6
    assert stats.ce_marked == 6


def test_not_ect_is_dropped_where_ect_is_marked() -> None:
    imp = Impairments(rate_bps=RATE, aqm=StepMarker(threshold=2.5 * MS))
    ch, stats = channel(imp)
    verdicts = burst(ch, 10, ecn_=ECN_NOT_ECT)
    # A dropped packet takes no link time: the queue stays at 3 ms and every later packet is dropped.
    assert [v.cause for v in verdicts] == [None] * 3 + ["aqm"] * 7
    assert stats.dropped == {"aqm": 7} and stats.ce_marked == 0
    assert all(v.ce == (False,) for v in verdicts[:3])
    # Already-CE packets pass unchanged and are not counted as marks.
    ch, stats = channel(imp)
    verdicts = burst(ch, 10, ecn_=ECN_CE)
    assert all(v.cause is None and v.ce == (False,) for v in verdicts)
    assert stats.ce_marked == 0 and stats.dropped == {}


def test_aqm_needs_a_rate_and_copies_are_marked_each() -> None:
    ch, _ = channel(Impairments(aqm=StepMarker(threshold=0.0)))
    assert all(v.cause is None and v.ce == (False,) for v in burst(ch, 5, ecn_=ECN_NOT_ECT))
    ch, _ = channel(Impairments(rate_bps=RATE, duplicate=1.0, aqm=StepMarker(threshold=0.5 * MS)))
    v = ch.process(1000, 0.0, ECN_ECT0)
    assert v.ce == (False, True) and len(v.deliver_at) == 2


# -- RED -----------------------------------------------------------------------------------------------


def steady_backlog(ch: Channel, backlog_packets: int, n: int, ecn_: int = ECN_ECT0) -> list[Verdict]:
    """Fill the queue to `backlog_packets`, then offer exactly the link rate: every later arrival finds
    the same backlog. Returns the verdicts of the steady arrivals."""
    burst(ch, backlog_packets, ecn_=ecn_)
    return [ch.process(1000, (k + 0.5) * MS, ecn_) for k in range(n)]


@pytest.mark.parametrize(("backlog", "expected"), [(5, 0.0), (10, 0.0), (20, 0.05), (25, 0.075), (30, 1.0)])
def test_red_marking_probability_follows_the_backlog(backlog: int, expected: float) -> None:
    n = 20_000
    ch, _ = channel(Impairments(rate_bps=RATE, aqm=RedMarker(10_000, 30_000, 0.1)), seed=3)
    marks = sum(v.ce[0] for v in steady_backlog(ch, backlog, n))
    sigma = math.sqrt(n * expected * (1 - expected))
    assert abs(marks - n * expected) <= 4 * sigma + 1e-9


def test_red_average_reacts_slowly_with_a_small_weight() -> None:
    ch, _ = channel(Impairments(rate_bps=RATE, aqm=RedMarker(10_000, 30_000, 0.1, weight=0.01)))
    # A 40-packet burst: instantaneous RED would mark most of it, the averaged backlog stays small.
    assert not any(v.ce[0] for v in burst(ch, 40))
    # A standing 40 kB queue: the average converges above max_bytes and then every packet is marked.
    steady = steady_backlog(ch, 0, 2000)
    assert all(v.ce[0] for v in steady[-100:])


# -- CoDel ---------------------------------------------------------------------------------------------


def test_codel_marks_a_standing_queue_by_the_control_law() -> None:
    ch, stats = channel(Impairments(rate_bps=RATE, aqm=CodelMarker(target=5 * MS, interval=100 * MS)))
    verdicts = steady_backlog(ch, 20, 1000)  # a standing 19.5-20 ms queue for a second
    # Dequeue (transmission start) time of each marked packet = delivery - 1 ms serialisation.
    marked = [v.deliver_at[0] - MS for v in verdicts if v.ce[0]]
    # The queue first stands above target when packet 5 starts (5 ms); it must stay so for an interval,
    # then marks follow at interval/sqrt(count).
    expected = [0.105]
    while expected[-1] + 0.1 / math.sqrt(len(expected)) < marked[-1] + 1e-9:
        expected.append(expected[-1] + 0.1 / math.sqrt(len(expected)))
    assert len(marked) == len(expected) == stats.ce_marked
    for got, want in zip(marked, expected, strict=True):
        assert want - 1e-6 <= got <= want + MS + 1e-6  # the first packet to start at or after it


def test_codel_leaves_a_queue_below_target_alone_and_stops_when_it_drains() -> None:
    ch, stats = channel(Impairments(rate_bps=RATE, aqm=CodelMarker(target=5 * MS, interval=100 * MS)))
    steady_backlog(ch, 4, 2000)  # 3.5-4 ms of queue forever: never marked
    assert stats.ce_marked == 0
    ch, stats = channel(Impairments(rate_bps=RATE, aqm=CodelMarker(target=5 * MS, interval=100 * MS)))
    steady_backlog(ch, 20, 300)
    before = stats.ce_marked
    assert before >= 3
    # The queue drains (arrivals at half the link rate), and marking stops.
    late = [ch.process(1000, 0.4 + k * 2 * MS, ECN_ECT0) for k in range(500)]
    assert not any(v.ce[0] for v in late[20:])
    # Not-ECT packets are dropped instead, and the drop relieves the queue.
    ch, stats = channel(Impairments(rate_bps=RATE, aqm=CodelMarker(target=5 * MS, interval=100 * MS)))
    steady_backlog(ch, 20, 1000, ecn_=ECN_NOT_ECT)
    assert stats.dropped.get("aqm", 0) >= 3 and stats.ce_marked == 0


# -- Gilbert-Elliott -------------------------------------------------------------------------------------


def loss_runs(verdicts: list[Verdict]) -> list[int]:
    runs, length = [], 0
    for v in [*verdicts, None]:
        if v is not None and v.cause == "burst":
            length += 1
        elif length:
            runs.append(length)
            length = 0
    return runs


def test_gilbert_model_rate_and_burst_lengths_match_the_analysis() -> None:
    n, p, r = 200_000, 0.02, 0.25
    ch, stats = channel(Impairments(gilbert_elliott=GilbertElliott(p, r)), seed=11)
    verdicts = [ch.process(100, i * MS) for i in range(n)]
    runs = loss_runs(verdicts)
    assert stats.dropped["burst"] / n == pytest.approx(p / (p + r), rel=0.06)  # 7.4 %
    assert sum(runs) / len(runs) == pytest.approx(1 / r, rel=0.05)  # mean burst 4 packets
    # Burst lengths are geometric: P(1) = r, P(2) = r(1-r).
    assert runs.count(1) / len(runs) == pytest.approx(r, abs=0.03)
    assert runs.count(2) / len(runs) == pytest.approx(r * (1 - r), abs=0.03)
    # The gaps (stays in Good) are geometric with mean 1/p.
    assert (n - sum(runs)) / len(runs) == pytest.approx(1 / p, rel=0.06)


def test_gilbert_elliott_with_state_loss_probabilities() -> None:
    n, p, r, k, h = 200_000, 0.01, 0.1, 0.99, 0.4  # k, h: survival in Good, in Bad
    ch, stats = channel(Impairments(gilbert_elliott=GilbertElliott(p, r, 1 - k, 1 - h)), seed=5)
    for i in range(n):
        ch.process(100, i * MS)
    expected = (r * (1 - k) + p * (1 - h)) / (p + r)  # 6.4 %
    assert stats.dropped["burst"] / n == pytest.approx(expected, rel=0.08)


def test_gilbert_elliott_is_deterministic_per_seed() -> None:
    imp = Impairments(gilbert_elliott=GilbertElliott(0.05, 0.3))

    def pattern(seed: int) -> list[str | None]:
        ch, _ = channel(imp, seed=seed)
        return [ch.process(100, i * MS).cause for i in range(2000)]

    assert pattern(4) == pattern(4)
    assert pattern(4) != pattern(5)


# -- the ECN field ---------------------------------------------------------------------------------------


def test_marking_ipv4_keeps_the_header_checksum_valid() -> None:
    rng = random.Random(9)
    for _ in range(500):
        pkt = udp_packet(CLIENT, SERVER, rng.randrange(65536), 443, bytes(rng.randrange(50)))
        pkt[1] = rng.randrange(256)  # any DSCP and ECN
        pkt[4:6] = rng.randrange(65536).to_bytes(2, "big")  # identification: varied checksums
        fix_ipv4_header_checksum(pkt)
        tos = pkt[1]
        for codepoint in (ECN_CE, ECN_ECT0, ECN_NOT_ECT, ECN_ECT1):
            set_ecn(pkt, codepoint)
            assert ecn(pkt) == codepoint
            assert pkt[1] >> 2 == tos >> 2  # DSCP untouched
            assert checksum(pkt[:20]) == 0  # the header verifies
            reference = bytearray(pkt)
            fix_ipv4_header_checksum(reference)
            assert reference == pkt  # same as recomputing from scratch
            assert transport_checksum_ok(pkt)  # TOS is not in the UDP pseudo-header


def test_marking_ipv6_touches_only_the_ecn_bits() -> None:
    pkt = udp_packet("fd77:0:0:1::1", "fd77:0:0:2::1", 1, 2, b"data", version=6)
    pkt[0:4] = ((6 << 28) | (0xB9 << 20) | 0xABCDE).to_bytes(4, "big")  # TC 0xB9 = DSCP 46, ECT(1)
    assert ecn(pkt) == ECN_ECT1
    set_ecn(pkt, ECN_CE)
    word = int.from_bytes(pkt[0:4], "big")
    assert word >> 28 == 6 and (word >> 20) & 0xFF == 0xBB and word & 0xFFFFF == 0xABCDE
    assert ecn(pkt) == ECN_CE and transport_checksum_ok(pkt)


# -- configuration ----------------------------------------------------------------------------------------


def test_aqm_settings_validate_round_trip_and_parse() -> None:
    for aqm in (
        StepMarker(0.002),
        StepMarker(threshold_bytes=30_000),
        RedMarker(1, 2, 0.5, 0.2),
        CodelMarker(),
    ):
        imp = Impairments(rate_bps=1e6, queue_bytes=64_000, aqm=aqm)
        assert Impairments.from_dict(json.loads(json.dumps(imp.to_dict()))) == imp
    with pytest.raises(ImpairmentError):
        RedMarker(50_000, 10_000, 0.1)
    with pytest.raises(ImpairmentError):
        CodelMarker(interval=0)
    with pytest.raises(ImpairmentError):
        Impairments.from_dict({"aqm": {"kind": "pie"}})
    assert parse_spec("aqm=step/1ms") == {"aqm": StepMarker(threshold=0.001)}
    assert parse_spec("aqm=step/30kb") == {"aqm": StepMarker(threshold_bytes=30_000)}
    assert parse_spec("aqm=step") == {"aqm": StepMarker()}
    assert parse_spec("aqm=red/30kb/90kb/10%") == {"aqm": RedMarker(30_000, 90_000, 0.1)}
    assert parse_spec("aqm=red/30kb/90kb/10%/0.002") == {"aqm": RedMarker(30_000, 90_000, 0.1, 0.002)}
    assert parse_spec("aqm=codel/5ms/100ms") == {"aqm": CodelMarker(0.005, 0.1)}
    assert parse_spec("aqm=codel") == {"aqm": CodelMarker()}
    for bad in ("aqm=pie", "aqm=red/1kb", "aqm=codel/5ms", "aqm=step/1ms/2ms"):
        with pytest.raises(ImpairmentError):
            parse_spec(bad)
    assert SCENARIOS["l4s"].c2s.aqm == StepMarker(threshold=0.001)
    assert isinstance(SCENARIOS["codel"].s2c.aqm, CodelMarker)
