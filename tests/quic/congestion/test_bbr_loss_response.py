"""BBRv3's response to random (non-congestive) loss and the draft details around it, on the
virtual-time bottleneck of :mod:`.rate_path` (20 Mbit/s, 40 ms, a one-BDP drop-tail queue).

draft-ietf-ccwg-bbr: in loss recovery the window is only saved and restored ("Modulating cwnd in Loss
Recovery"; the older drafts' packet conservation is gone), the short-term bounds are cut once per round
with a loss, the round measured from its first loss ("NoteLoss"), Drain ends after at most three rounds
("CheckDrainDone"), and Startup's ACK-aggregation filter remembers 1-2 rounds ("BBR.extra_acked").
"""

from __future__ import annotations

import itertools
import statistics

import pytest

from rudp.quic.congestion import Bbr
from rudp.quic.congestion import bbr as B
from rudp.quic.congestion.bbr_filters import WindowedMax
from tests.quic.congestion.rate_path import MDS, RatePath

RATE = 2.5e6
RTT = 0.04
BDP = RATE * RTT


def test_one_percent_random_loss_keeps_most_of_the_link() -> None:
    """With packet conservation, every loss cut the window to the flight and the first cut of
    inflight_shortterm started from that cut window: 54-70% of the link over these seeds. Without it
    (and with NoteLoss) the window stays the model's and the bounds fall only by what each lossy
    round's delivery rate says: 80-91%."""
    shares = []
    for seed in (1, 2, 3):
        cc = Bbr(MDS)
        path = RatePath(cc, rate=RATE, rtt=RTT, queue_bytes=int(BDP), loss=0.01, seed=seed)
        path.run(2.0)
        shares.append(path.goodput(8.0) / RATE)
        assert path.rates.lost > 0
        assert cc.state_changes and cc.full_bw_reached
    assert min(shares) >= 0.72
    assert statistics.mean(shares) >= 0.8


def test_drain_ends_after_three_rounds_when_the_flight_never_fits_the_estimate() -> None:
    cc = Bbr(MDS)
    path = RatePath(cc, rate=RATE, rtt=RTT, queue_bytes=int(4 * BDP))
    assert path.run_until(lambda: cc.state == B.DRAIN, max_time=2.0)
    # The bottleneck slows to a tenth as Drain starts: paced at half the old estimate, the flight only
    # grows, so it never fits the estimated BDP (the max_bw filter does not move outside ProbeBW).
    path.rate = RATE / 10
    start_round = cc.round_count
    assert path.run_until(lambda: cc.state != B.DRAIN, max_time=4.0)  # rounds now last ~0.5 s
    assert cc.state in B.PROBE_BW_STATES
    assert cc.round_count == start_round + B.DRAIN_MAX_ROUNDS + 1
    drained_to = cc._inflight(cc.max_bw, 1.0)
    assert path.bytes_in_flight > drained_to  # left on the round cap, not on the flight


def test_ack_aggregation_is_remembered_two_rounds_in_startup_and_ten_after() -> None:
    f = WindowedMax(B.EXTRA_ACKED_FILTER_LEN)
    assert f.update(50_000.0, 1, window=B.STARTUP_EXTRA_ACKED_ROUNDS) == 50_000.0
    assert f.update(1_000.0, 2, window=B.STARTUP_EXTRA_ACKED_ROUNDS) == 50_000.0
    assert f.update(1_000.0, 3, window=B.STARTUP_EXTRA_ACKED_ROUNDS) == 1_000.0  # Startup: 2 rounds
    g = WindowedMax(B.EXTRA_ACKED_FILTER_LEN)
    g.update(50_000.0, 1)
    assert g.update(1_000.0, 10) == 50_000.0
    assert g.update(1_000.0, 11) == 1_000.0
    # The controller uses the one-round window until the pipe is full.
    cc = Bbr(MDS)
    path = RatePath(cc, rate=RATE, rtt=RTT, queue_bytes=int(2 * BDP))
    seen: list[tuple[int, float]] = []

    def record(p: RatePath) -> None:
        if cc.state == B.STARTUP:
            seen.append((cc.round_count, cc.extra_acked))

    path.on_sample = record
    assert path.run_until(lambda: cc.state != B.STARTUP, max_time=2.0)
    # Startup's ACKs arrive at the (doubling) sending rate: each round's excess is its own, and a
    # 10-round filter would never let the estimate fall within Startup.
    rounds = sorted({r for r, _ in seen})
    peaks = [max(v for r2, v in seen if r2 == r) for r in rounds]
    assert any(later < earlier for earlier, later in itertools.pairwise(peaks))


@pytest.mark.parametrize("loss", [0.0, 0.02])
def test_recovery_never_cuts_the_window_below_the_model(loss: float) -> None:
    """In ProbeBW the window is min(max_inflight, the bounds) on every ACK, in recovery or not."""
    cc = Bbr(MDS)
    path = RatePath(cc, rate=RATE, rtt=RTT, queue_bytes=int(BDP), loss=loss, seed=4)
    path.run(2.0)
    checked = 0

    def record(p: RatePath) -> None:
        nonlocal checked
        if cc.state != B.PROBE_BW_CRUISE or cc.recovery_start_at is None:
            return
        cap = min(cc._inflight_with_headroom(), cc.inflight_shortterm)
        assert cc.cwnd >= min(int(cc.max_inflight), int(max(cap, cc.min_pipe_cwnd))) - MDS
        checked += 1

    path.on_sample = record
    path.run(4.0)
    assert (checked > 0) == (loss > 0)


@pytest.mark.parametrize("queue_bdps", [2, 4])  # deep enough that three rounds at 1.25x lose nothing
def test_probe_bw_up_ends_on_the_bandwidth_plateau_not_after_one_min_rtt(queue_bdps: int) -> None:
    """draft-ietf-ccwg-bbr "IsTimeToGoDown": without loss, UP lasts until three rounds brought no 25%
    more bandwidth. The older exit (a min_rtt elapsed and more than 1.25 BDP in flight), which the
    draft dropped in 2024, ended each probe after two rounds with the plateau rule unfinished."""
    cc = Bbr(MDS)
    path = RatePath(cc, rate=RATE, rtt=RTT, queue_bytes=int(queue_bdps * BDP))
    exits: list[tuple[int, bool]] = []
    up_since: list[int] = []

    def record(p: RatePath) -> None:
        if cc.state == B.PROBE_BW_UP and not up_since:
            up_since.append(cc.round_count)
        elif cc.state != B.PROBE_BW_UP and up_since:
            exits.append((cc.round_count - up_since.pop(), cc.full_bw_now))

    path.on_sample = record
    path.run(12.0)
    assert path.rates.lost == 0
    assert len(exits) >= 3
    for rounds, plateau in exits:
        assert plateau
        assert rounds >= B.FULL_BW_COUNT
