"""RttEstimator against the formulas of RFC 9002 §5."""

from __future__ import annotations

import pytest

from rudp.quic.rtt import K_GRANULARITY, RttEstimator


def test_initial_values_before_any_sample() -> None:
    rtt = RttEstimator()
    assert not rtt.has_sample
    assert rtt.smoothed_rtt == pytest.approx(0.333)
    assert rtt.rttvar == pytest.approx(0.333 / 2)
    # RFC 9002 §6.2.2: PTO before a sample = 333 ms + 4 * 166.5 ms.
    assert rtt.pto_base() == pytest.approx(0.333 + 4 * 0.1665)


def test_first_sample_sets_everything_and_ignores_ack_delay() -> None:
    rtt = RttEstimator(initial_rtt=0.5)
    rtt.update(0.100, 0.050, handshake_confirmed=True, max_ack_delay=0.025)
    assert rtt.has_sample
    assert rtt.latest_rtt == pytest.approx(0.100)
    assert rtt.min_rtt == pytest.approx(0.100)
    assert rtt.smoothed_rtt == pytest.approx(0.100)
    assert rtt.rttvar == pytest.approx(0.050)


def test_subsequent_sample_ewma() -> None:
    rtt = RttEstimator()
    rtt.update(0.100, 0.0, handshake_confirmed=True, max_ack_delay=0.025)
    rtt.update(0.200, 0.0, handshake_confirmed=True, max_ack_delay=0.025)
    # rttvar = 3/4 * 0.05 + 1/4 * |0.1 - 0.2|; smoothed = 7/8 * 0.1 + 1/8 * 0.2
    assert rtt.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * 0.1)
    assert rtt.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.2)
    assert rtt.min_rtt == pytest.approx(0.100)
    assert rtt.latest_rtt == pytest.approx(0.200)


def test_ack_delay_subtracted_when_plausible() -> None:
    rtt = RttEstimator()
    rtt.update(0.100, 0.0, handshake_confirmed=True, max_ack_delay=0.025)
    rtt.update(0.130, 0.020, handshake_confirmed=True, max_ack_delay=0.025)
    adjusted = 0.110
    assert rtt.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * adjusted)
    assert rtt.rttvar == pytest.approx(0.75 * 0.05 + 0.25 * abs(0.1 - adjusted))


def test_ack_delay_capped_by_max_ack_delay_after_confirmation() -> None:
    rtt = RttEstimator()
    rtt.update(0.100, 0.0, handshake_confirmed=True, max_ack_delay=0.025)
    rtt.update(0.200, 0.080, handshake_confirmed=True, max_ack_delay=0.025)
    assert rtt.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * (0.200 - 0.025))


def test_ack_delay_not_capped_before_confirmation() -> None:
    rtt = RttEstimator()
    rtt.update(0.100, 0.0, handshake_confirmed=False, max_ack_delay=0.025)
    rtt.update(0.200, 0.080, handshake_confirmed=False, max_ack_delay=0.025)
    assert rtt.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * (0.200 - 0.080))


def test_ack_delay_never_takes_sample_below_min_rtt() -> None:
    rtt = RttEstimator()
    rtt.update(0.100, 0.0, handshake_confirmed=True, max_ack_delay=0.025)
    # 0.110 - 0.020 = 0.090 < min_rtt 0.100: the delay is not subtracted at all.
    rtt.update(0.110, 0.020, handshake_confirmed=True, max_ack_delay=0.025)
    assert rtt.smoothed_rtt == pytest.approx(0.875 * 0.1 + 0.125 * 0.110)


def test_min_rtt_ignores_ack_delay_and_tracks_minimum() -> None:
    rtt = RttEstimator()
    rtt.update(0.100, 0.0, handshake_confirmed=True, max_ack_delay=0.025)
    rtt.update(0.080, 0.010, handshake_confirmed=True, max_ack_delay=0.025)
    assert rtt.min_rtt == pytest.approx(0.080)
    rtt.update(0.300, 0.0, handshake_confirmed=True, max_ack_delay=0.025)
    assert rtt.min_rtt == pytest.approx(0.080)


def test_pto_base_uses_granularity_floor() -> None:
    rtt = RttEstimator()
    for _ in range(200):
        rtt.update(0.010, 0.0, handshake_confirmed=True, max_ack_delay=0.0)
    # rttvar decays towards 0, so 4*rttvar falls below kGranularity.
    assert 4 * rtt.rttvar < K_GRANULARITY
    assert rtt.pto_base() == pytest.approx(rtt.smoothed_rtt + K_GRANULARITY)


def test_base_pto_is_derived_again_on_every_change_of_its_inputs() -> None:
    # base_pto is cached by the estimator (read after every flush): it must equal RFC 9002 §6.2.1's
    # smoothed_rtt + max(4 * rttvar, kGranularity) after construction, every sample and a reset.
    import random

    def expected(rtt: RttEstimator) -> float:
        return rtt.smoothed_rtt + max(4 * rtt.rttvar, K_GRANULARITY)

    rng = random.Random(13)
    rtt = RttEstimator(initial_rtt=0.2)
    assert rtt.base_pto == expected(rtt) == rtt.pto_base()
    seen = set()
    for step in range(2000):
        if step % 500 == 499:
            rtt.reset()
        else:
            rtt.update(
                rng.choice([0.0, 0.0005, rng.uniform(0.0, 0.5)]),
                rng.uniform(-0.01, 0.05),
                handshake_confirmed=rng.random() < 0.5,
                max_ack_delay=0.025,
            )
        assert rtt.base_pto == pytest.approx(expected(rtt), rel=1e-12, abs=0.0)
        assert rtt.pto_base() == rtt.base_pto
        seen.add(4 * rtt.rttvar > K_GRANULARITY)
    assert seen == {True, False}  # both sides of the granularity floor were exercised
