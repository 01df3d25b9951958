from __future__ import annotations

import pytest

from rudp.errors import TransportError, TransportErrorCode
from rudp.quic.flow import LimitAnnouncer, RecvWindow, SendCredit


def test_window_violation_raises_flow_control_error() -> None:
    window = RecvWindow(1000, 4000)
    window.check(1000, 0x08)
    with pytest.raises(TransportError) as caught:
        window.check(1001, 0x08)
    assert caught.value.code == TransportErrorCode.FLOW_CONTROL_ERROR
    assert caught.value.frame_type == 0x08


def test_update_only_after_half_consumed() -> None:
    window = RecvWindow(1000, 1000)
    window.received = 1000  # everything received, nothing consumed: no credit back
    assert not window.update_due
    window.consumed = 500
    assert not window.update_due  # exactly half: not yet
    window.consumed = 501
    assert window.update_due
    assert window.take_update(now=0.0, smoothed_rtt=0.1) == 1501
    assert not window.update_due


def test_autotune_doubles_when_updates_are_frequent_and_stops_at_max() -> None:
    window = RecvWindow(1000, 4000)
    now = 0.0
    sizes = []
    for _ in range(6):
        window.consumed = window.limit  # the application drains everything immediately
        assert window.update_due
        window.take_update(now, smoothed_rtt=0.1)
        sizes.append(window.window)
        now += 0.05  # one update every half RTT: far more often than every 2 RTT
    assert sizes == [1000, 2000, 4000, 4000, 4000, 4000]
    assert window.limit == window.consumed + 4000


def test_autotune_keeps_window_when_updates_are_rare() -> None:
    window = RecvWindow(1000, 4000)
    for step in range(4):
        window.consumed = window.limit
        window.take_update(now=step * 1.0, smoothed_rtt=0.1)  # one per 10 RTT
    assert window.window == 1000


def test_lost_update_resent_only_if_current() -> None:
    window = RecvWindow(1000, 1000)
    window.consumed = 600
    first = window.take_update(0.0, 0.1)
    window.consumed = 1200
    second = window.take_update(10.0, 0.1)
    window.on_update_lost(first)
    assert not window.update_due  # a newer limit was announced
    window.on_update_lost(second)
    assert window.update_due
    assert window.take_update(20.0, 0.1) == second


def test_send_credit_blocked_once_per_limit() -> None:
    credit = SendCredit(100)
    credit.note_blocked()
    assert not credit.blocked_pending  # credit left: not blocked
    credit.used = 100
    credit.note_blocked()
    assert credit.blocked_pending
    assert credit.take_blocked() == 100
    credit.note_blocked()
    assert not credit.blocked_pending  # already sent for this limit
    credit.on_blocked_lost(100)
    assert credit.blocked_pending  # lost and still current: again
    credit.take_blocked()
    assert not credit.raise_limit(50)  # smaller limits are ignored (RFC 9000 §4.1)
    assert credit.raise_limit(200)
    credit.on_blocked_lost(100)
    assert not credit.blocked_pending  # stale
    credit.used = 200
    credit.note_blocked()
    assert credit.take_blocked() == 200


def test_limit_announcer() -> None:
    announcer = LimitAnnouncer(10)
    assert not announcer.pending
    announcer.note_used(5)
    announcer.increase()
    announcer.increase()
    assert announcer.pending  # the peer has 5 of 10 left: half or less
    assert announcer.take() == 12
    announcer.on_lost(12)
    assert announcer.pending
    announcer.take()
    announcer.increase()
    announcer.on_lost(12)
    assert announcer.take() == 13
    announcer.on_lost(12)
    assert not announcer.pending


def test_limit_announcer_waits_until_half_the_credit_is_used() -> None:
    """One MAX_STREAMS per closed stream would cost a datagram per request: the limit is announced
    once the peer's credit left from the last announcement is half the initial limit or less."""
    announcer = LimitAnnouncer(10)
    announcer.note_used(4)
    announcer.increase(3)
    assert not announcer.pending  # 6 of 10 left
    announcer.note_used(5)
    assert announcer.pending  # 5 of 10 left
    assert announcer.take() == 13
    assert announcer.announced == 13
    announcer.note_used(7)
    announcer.increase()
    assert not announcer.pending  # 6 of 13 left
    announcer.note_used(8)
    assert announcer.pending  # 5 left
    assert announcer.take() == 14
    announcer.note_used(9)
    assert not announcer.pending  # nothing closed since: nothing to announce


def test_limit_announcer_answers_a_blocked_peer() -> None:
    announcer = LimitAnnouncer(10)
    announcer.note_used(2)
    announcer.increase()
    assert not announcer.pending
    announcer.on_peer_blocked(9)  # an old limit: stale
    assert not announcer.pending
    announcer.on_peer_blocked(10)
    assert announcer.pending
    assert announcer.take() == 11
    announcer.on_peer_blocked(11)  # nothing new to give
    assert not announcer.pending


def test_limit_announcer_pending_follows_every_change() -> None:
    """``pending`` is kept as a plain attribute by every change (the sender reads it per packet): after
    each step of a random walk it equals the rule (a lost or blocked-for announcement, or a raised
    limit with half the peer's credit or less left)."""
    import random

    rng = random.Random(4)
    announcer = LimitAnnouncer(8)
    resend = False
    seen = set()
    for _ in range(2000):
        step = rng.randrange(5)
        if step == 0:
            announcer.increase(rng.randrange(3))
        elif step == 1:
            announcer.note_used(announcer.used + rng.randrange(3))
        elif step == 2:
            limit = announcer.announced + rng.randrange(-1, 2)
            if limit >= announcer.announced and announcer.value > announcer.announced:
                resend = True
            announcer.on_peer_blocked(limit)
        elif step == 3 and rng.random() < 0.5:
            announcer.take()
            resend = False
        else:
            value = announcer.announced - rng.randrange(2)
            resend = resend or value == announcer.announced
            announcer.on_lost(value)
        left = announcer.announced - announcer.used
        rule = resend or (announcer.value > announcer.announced and left * 2 <= announcer.window)
        assert announcer.pending == rule
        seen.add(rule)
    assert seen == {True, False}
