"""BBRv3's state machine (draft-ietf-ccwg-bbr) on a virtual-time bottleneck (:mod:`.rate_path`).

Startup leaves on a bandwidth plateau or on loss (and on ECN), Drain leaves once the flight is down to
the estimated BDP, ProbeBW cycles DOWN -> CRUISE -> REFILL -> UP every 2-3 s, ProbeRTT starts once no
RTT sample matched the minimum for 5 s and ends after 200 ms and at least a round at the reduced window,
application-limited samples never lower the bandwidth estimate, and a loss rate above 2% while probing
bounds inflight_longterm (inflight_hi). The path is 20 Mbit/s (2.5 MB/s) with a 40 ms RTT.
"""

from __future__ import annotations

import itertools
import math

import pytest

from rudp.config import Config
from rudp.quic.congestion import Bbr, NewReno, resolve_congestion_controller
from rudp.quic.congestion import bbr as B
from rudp.quic.congestion.delivery_rate import RateSample
from rudp.quic.pacing import Pacer
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace, SentPacket
from tests.quic.congestion.rate_path import MDS, RatePath

RATE = 2.5e6
RTT = 0.04
BDP = RATE * RTT  # 100 KB


def _path(**kwargs: object) -> tuple[Bbr, RatePath]:
    cc = Bbr(MDS)
    options: dict[str, object] = {"rate": RATE, "rtt": RTT, "queue_bytes": int(BDP)} | kwargs
    return cc, RatePath(cc, **options)  # type: ignore[arg-type]


def _entries(cc: Bbr, state: str, after: float = 0.0) -> list[float]:
    return [when for when, name in cc.state_changes if name == state and when >= after]


def test_startup_leaves_on_a_bandwidth_plateau_and_drain_leaves_at_the_bdp() -> None:
    cc, path = _path(queue_bytes=int(2 * BDP))  # deep enough that Startup loses nothing
    assert path.run_until(lambda: cc.state != B.STARTUP, max_time=2.0)
    assert not path.dropped and path.rates.lost == 0
    # Three rounds without 25% more bandwidth; the estimate is the link's rate.
    assert cc.full_bw_reached and cc.full_bw_count >= B.FULL_BW_COUNT
    assert cc.inflight_longterm == math.inf  # not a loss exit
    assert cc.max_bw == pytest.approx(RATE, rel=0.03)
    assert cc.state == B.DRAIN and cc.pacing_gain == B.DRAIN_PACING_GAIN
    assert path.run_until(lambda: cc.state != B.DRAIN, max_time=1.0)
    # Drain ended on the ACK where the flight first fit the estimated BDP (quantised), not before.
    bdp = max(cc.max_bw * cc.min_rtt, 3 * 2 * MDS, 4 * MDS)
    drain = [(now, flight) for now, state, _, flight in path.trace if state == B.DRAIN]
    after = next(flight for now, state, _, flight in path.trace if now >= drain[-1][0] and state != B.DRAIN)
    assert all(flight > bdp for _, flight in drain)
    assert after <= bdp
    assert cc.state in B.PROBE_BW_STATES
    assert path.goodput(2.0) >= 0.95 * RATE


def test_startup_leaves_on_loss_before_any_plateau() -> None:
    cc, path = _path(queue_bytes=int(0.2 * BDP))  # a shallow buffer: Startup overflows it
    assert path.run_until(lambda: cc.state != B.STARTUP, max_time=2.0)
    assert path.rates.lost > 0
    assert cc.full_bw_count < B.FULL_BW_COUNT  # the plateau was not what ended it
    # BBRCheckStartupHighLoss: inflight_longterm = max(BDP, the latest round's delivered volume).
    assert cc.inflight_longterm != math.inf
    assert cc.inflight_longterm >= 0.9 * cc.max_bw * cc.min_rtt


def test_startup_leaves_when_most_packets_carry_ce_marks() -> None:
    cc, path = _path(queue_bytes=int(2 * BDP))

    def mark(p: RatePath) -> None:
        if cc.state == B.STARTUP and cc.round_count >= 3:
            cc.on_ecn_ce(1, p.now)  # every acknowledged packet was CE-marked

    path.on_sample = mark
    assert path.run_until(lambda: cc.state != B.STARTUP, max_time=2.0)
    assert path.rates.lost == 0 and cc.full_bw_count < B.FULL_BW_COUNT
    assert cc.inflight_longterm != math.inf
    assert cc.ecn_alpha > 0.5


def test_probe_bw_cycles_down_cruise_refill_up_every_two_to_three_seconds() -> None:
    cc, path = _path()
    gains: dict[str, set[float]] = {}

    def record(p: RatePath) -> None:
        gains.setdefault(cc.state, set()).add(cc.pacing_gain)

    path.on_sample = record
    path.run(14.0)
    probe_rtt = _entries(cc, B.PROBE_RTT)
    names = [name for _, name in cc.state_changes]
    cycle = [B.PROBE_BW_DOWN, B.PROBE_BW_CRUISE, B.PROBE_BW_REFILL, B.PROBE_BW_UP]
    cycles = sum(1 for i in range(len(names) - 4) if names[i : i + 5] == [*cycle, B.PROBE_BW_DOWN])
    assert cycles >= 3
    refills = _entries(cc, B.PROBE_BW_REFILL)
    for start, end in itertools.pairwise(refills):
        if not any(start < t < end for t in probe_rtt):
            # BBRPickProbeWait: 2-3 s after DOWN began (or 63 rounds, Reno coexistence).
            assert 1.9 < end - start < 3.4
    for refill in refills:
        up = min(_entries(cc, B.PROBE_BW_UP, after=refill))
        assert RTT * 0.9 < up - refill < 3 * RTT  # REFILL lasts one round
    assert gains[B.PROBE_BW_UP] == {B.PROBE_UP_PACING_GAIN}
    assert gains[B.PROBE_BW_DOWN] == {B.PROBE_DOWN_PACING_GAIN}
    assert gains[B.PROBE_BW_CRUISE] == gains[B.PROBE_BW_REFILL] == {1.0}
    assert path.goodput(4.0) >= 0.93 * RATE


@pytest.mark.parametrize(("base", "longer"), [(RTT, 0.05), (0.25, 0.3)])
def test_probe_rtt_after_five_seconds_without_a_new_minimum_for_200_ms_and_a_round_at_least(
    base: float, longer: float
) -> None:
    cc, path = _path(rtt=base, queue_bytes=int(RATE * base))
    # Drained and cruising first: no queue, so RTT samples match the minimum until the route changes.
    assert path.run_until(lambda: cc.state == B.PROBE_BW_CRUISE, max_time=6.0)
    path.run(0.5)
    changed = path.now
    path.rtt = longer  # the route got longer: no RTT sample matches the minimum any more
    stamps: list[tuple[float, float, str]] = []

    def record(p: RatePath) -> None:
        stamps.append((p.now, cc.probe_rtt_min_stamp, cc.state))

    path.on_sample = record
    assert path.run_until(lambda: cc.state == B.PROBE_RTT, max_time=6.0)
    entered = _entries(cc, B.PROBE_RTT)[-1]
    # The stamp as it was on the last ACK before ProbeRTT (entering it restamps the expired filter).
    last_minimum = [stamp for _, stamp, state in stamps if state != B.PROBE_RTT][-1]
    assert last_minimum <= changed + base  # no sample matched the minimum after the route changed
    assert B.PROBE_RTT_INTERVAL - 1e-9 < entered - last_minimum < B.PROBE_RTT_INTERVAL + 0.01
    probe_cwnd = max(0.5 * cc.bw * cc.min_rtt, 4 * MDS)
    assert path.run_until(lambda: cc.state != B.PROBE_RTT, max_time=1.0)
    left = _entries(cc, B.PROBE_BW_CRUISE, after=entered)[0]
    during = [(now, cwnd, flight) for now, state, cwnd, flight in path.trace if state == B.PROBE_RTT]
    assert all(cwnd <= probe_cwnd + 1 for _, cwnd, _ in during)
    low_since = next(now for now, _, flight in during if flight <= probe_cwnd)
    # 200 ms at the reduced flight, and at least one round trip of it (here the shorter condition).
    assert left > low_since + max(B.PROBE_RTT_DURATION, path.rtt)
    assert left < low_since + B.PROBE_RTT_DURATION + 2 * path.rtt
    assert cc.state == B.PROBE_BW_CRUISE  # the pipe was known full: back to ProbeBW
    assert cc.probe_rtt_min_stamp == pytest.approx(left, abs=0.002)  # next one due in 5 s
    assert path.goodput(2.0) >= 0.85 * RATE  # the window came back


@pytest.mark.parametrize("mark", [True, False])
def test_app_limited_samples_do_not_lower_the_bandwidth_estimate(mark: bool) -> None:
    cc, path = _path()
    path.run(3.0)
    assert cc.max_bw == pytest.approx(RATE, rel=0.03)
    path.mark_app_limited = mark
    path.app_budget = 0.1 * RATE  # the application now writes 2 Mbit/s
    path.run(8.0)  # several ProbeBW cycles and a ProbeRTT
    if mark:
        assert cc.max_bw == pytest.approx(RATE, rel=0.03)
    else:
        # The control: the same samples taken for the path's rate drag the estimate down.
        assert cc.max_bw < 0.5 * RATE


def test_loss_above_two_percent_while_probing_bounds_inflight_longterm() -> None:
    cc, path = _path(queue_bytes=int(2 * BDP))
    path.run(3.0)
    assert cc.inflight_longterm == math.inf
    path.loss = 0.05
    start = path.now
    assert path.run_until(lambda: cc.inflight_longterm != math.inf, max_time=4.0)
    bounded_at = path.now
    # It happened while probing (REFILL/UP or the first round of DOWN), and UP was cut short.
    ups = _entries(cc, B.PROBE_BW_UP, after=start)
    assert ups and ups[-1] <= bounded_at
    assert cc.state in (B.PROBE_BW_DOWN, B.PROBE_BW_CRUISE)
    assert cc.inflight_longterm < 1.6 * BDP
    # From then on the window never exceeds the bound in DOWN, REFILL and UP ("BBRBoundCwndForModel").
    checked: list[tuple[int, float]] = []

    def check(p: RatePath) -> None:
        if cc.state in (B.PROBE_BW_DOWN, B.PROBE_BW_REFILL, B.PROBE_BW_UP):
            checked.append((cc.cwnd, max(cc.inflight_longterm, cc.min_pipe_cwnd)))

    path.on_sample = check
    path.run(3.0)
    assert checked and all(cwnd <= bound for cwnd, bound in checked)
    # Losses of 5% keep hitting the bound: it stays well under the BDP (it may rise a datagram or two
    # in rounds that happened to lose less than 2%, and each probe that loses more sets it again).
    assert cc.inflight_longterm < 0.8 * BDP


def test_persistent_congestion_and_path_change() -> None:
    cc, path = _path()
    path.run(1.0)
    cc.on_persistent_congestion(path.now)
    assert cc.congestion_window == 2 * MDS
    cc.on_path_change(path.now)
    assert cc.state == B.STARTUP and cc.max_bw == 0 and cc.min_rtt == math.inf
    assert cc.congestion_window == cc.initial_window_bytes


def test_the_pacer_paces_at_bbrs_rate_and_bbr_is_registered() -> None:
    cc, path = _path()
    path.run(1.0)
    rtt = RttEstimator()
    rtt.update(RTT, 0.0, handshake_confirmed=True, max_ack_delay=0.0)
    pacer = Pacer(MDS)
    assert pacer.current_rate(cc, rtt) == cc.pacing_rate(rtt)
    assert cc.pacing_rate(rtt) == pytest.approx(RATE * (1 - B.PACING_MARGIN), rel=0.05)
    reno = NewReno(MDS)
    # A window-based controller: its phase gain (2 in slow start) x cwnd / srtt (RFC 9002 §7.7).
    assert pacer.current_rate(reno, rtt) == pytest.approx(2.0 * reno.congestion_window / RTT)
    # Before any sample BBR paces its initial window at the Startup gain per smoothed RTT.
    assert Bbr(MDS).pacing_rate(rtt) == pytest.approx(B.STARTUP_PACING_GAIN * 10 * MDS / RTT)
    assert isinstance(resolve_congestion_controller("BBR")(MDS), Bbr)
    assert Config(congestion="bbr").congestion == "bbr"
    assert set(cc.metrics()) >= {"cwnd", "pacing_rate", "bw", "min_rtt"}


def test_ce_marks_outside_probing_cut_the_short_term_flight_only() -> None:
    cc, path = _path(queue_bytes=int(2 * BDP))
    assert path.run_until(lambda: cc.state == B.PROBE_BW_CRUISE, max_time=2.0)
    before = cc.cwnd
    acks = 0

    def mark(p: RatePath) -> None:
        nonlocal acks
        acks += 1
        if cc.state == B.PROBE_BW_CRUISE and acks % 10 == 0:
            cc.on_ecn_ce(1, p.now)  # one packet in ten arrives CE-marked

    path.on_sample = mark
    path.run(0.3)
    assert path.rates.lost == 0
    assert cc.inflight_shortterm < before  # cut by ecn_alpha / 3 per marked round
    assert cc.bw_shortterm == math.inf  # ECN leaves the bandwidth bound alone
    assert cc.inflight_longterm == math.inf  # 10% marks is below the 50% "too high" threshold
    assert cc.cwnd <= cc.inflight_shortterm


def test_a_loss_in_cruise_saves_the_window_keeps_it_and_restores_it_after_recovery() -> None:
    """draft-ietf-ccwg-bbr "Modulating cwnd in Loss Recovery": entering recovery only saves the window
    (the draft dropped the older drafts' packet conservation, which cut it to the flight plus what was
    acknowledged and subtracted every lost packet); the loss response is the once-per-round cut of the
    short-term bounds, after a whole round measured from the first loss ("NoteLoss")."""
    cc, path = _path(queue_bytes=int(2 * BDP))
    assert path.run_until(lambda: cc.state == B.PROBE_BW_CRUISE, max_time=2.0)
    path.run(0.2)
    before = cc.cwnd
    now = path.now
    victim = SentPacket(10**6, PacketSpace.APPLICATION, now - RTT, MDS, True, True)
    victim.tx_in_flight = int(BDP)
    victim.lost_at_send = path.rates.lost
    flight = int(0.5 * BDP)
    loss = RateSample(
        newly_acked=MDS,
        newly_lost=MDS,
        lost_packets=[victim],
        lost_total=path.rates.lost + MDS,
        delivered_total=path.rates.delivered,
        prior_delivered=path.rates.delivered - int(BDP),
        bytes_in_flight=flight,
        send_time=now - RTT,
        rtt=RTT,
        tx_in_flight=int(BDP),
        delivery_rate=RATE,
        valid=True,
    )
    cc.on_rate_sample(loss, now)
    assert cc.recovery_start_at == now
    assert cc.prior_cwnd == before
    # The model's window, not the flight (0.5 BDP) plus one datagram as packet conservation had it.
    assert cc.cwnd >= min(before, int(cc.max_inflight)) and cc.cwnd > 1.5 * (flight + MDS)
    # NoteLoss: the loss round restarts at the loss, so this ACK ends no round and cuts nothing yet.
    assert cc.loss_round_delivered == path.rates.delivered
    assert cc.loss_in_round and cc.bw_shortterm == math.inf
    # A packet sent after the loss is acknowledged a round later: recovery is over, the window is
    # restored, and the lossy round has cut the short-term bounds once, to no less than what it measured.
    later = RateSample(
        newly_acked=MDS,
        delivered_total=path.rates.delivered + MDS,
        prior_delivered=path.rates.delivered,
        bytes_in_flight=flight,
        send_time=now + 0.001,
        rtt=RTT,
        tx_in_flight=flight,
        delivery_rate=0.9 * RATE,
        valid=True,
    )
    cc.on_rate_sample(later, now + RTT + 0.001)
    assert cc.recovery_start_at is None and not cc.loss_in_round
    assert cc.bw_shortterm == pytest.approx(max(RATE, B.BETA * cc.max_bw))
    assert cc.cwnd >= min(before, cc.inflight_shortterm, cc._inflight_with_headroom(), cc.max_inflight) - 1


class _OwnRate(NewReno):
    """A window controller that paces at a rate of its own (as BBR does)."""

    def pacing_rate(self, rtt: RttEstimator) -> float | None:
        return RATE


@pytest.mark.parametrize("own", [True, False])
def test_a_late_pacing_wake_up_is_made_up_only_for_a_controllers_own_rate(own: bool) -> None:
    cc = _OwnRate(MDS) if own else NewReno(MDS)
    cc.cwnd = int(2 * BDP)
    rtt = RttEstimator()
    rtt.update(RTT, 0.0, handshake_confirmed=True, max_ack_delay=0.0)
    pacer = Pacer(MDS, granularity=0.001)
    first = 0
    while pacer.allows(0.0, MDS, cc, rtt):
        pacer.on_sent(MDS, 0.0)
        first += MDS
    wake = pacer.next_send_at(MDS)
    late = wake + 0.004  # the loop ran the timer 4 ms late
    sent = 0
    while pacer.allows(late, MDS, cc, rtt):
        pacer.on_sent(MDS, late)
        sent += MDS
    rate = pacer.rate
    capacity = Pacer.burst_allowance(rate, MDS, 0.001, cc.cwnd)
    if own:
        # The bucket also holds what the rate would have sent during the lateness: over the whole
        # time, the controller's rate is what left (one initial bucket and one datagram of rounding).
        assert first + sent >= capacity + rate * late - MDS
    else:
        assert sent <= capacity + MDS  # window-based: the bucket's usual bound
