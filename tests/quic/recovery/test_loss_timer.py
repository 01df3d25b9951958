"""LossRecovery.loss_timer against a plain transcription of RFC 9002 Appendix A.8 (SetLossDetectionTimer,
GetPtoTimeAndSpace) with rudp's handshake PTO cap, over random sequences of sends, ACKs, timeouts,
confirmation and discards: the connection's timer asks loss_timer after every flush, so its shortcuts
(one loop for the loss times, the PTO and whether anything is outstanding) must give the same answer."""

from __future__ import annotations

import random

import pytest

from rudp.quic.recovery import LossRecovery
from rudp.quic.rtt import RttEstimator
from rudp.quic.sent import PacketSpace
from tests.quic.recovery.helpers import RecordingController, ack_of, packet

SPACES = (PacketSpace.INITIAL, PacketSpace.HANDSHAKE, PacketSpace.APPLICATION)


def reference(r: LossRecovery) -> tuple[float | None, PacketSpace, bool]:
    """RFC 9002 Appendix A.8, written out from the recovery's inputs (no shortcuts)."""
    spaces = [(space, r._spaces[space]) for space in SPACES]
    times = [(state.loss_time, space) for space, state in spaces if state.loss_time is not None]
    if times:
        loss_time, space = min(times, key=lambda item: item[0])
        return loss_time, space, True
    confirmed = r.handshake_confirmed
    backoff = 2**r.pto_count
    duration = r.rtt.pto_base() * backoff
    cap = r._handshake_pto_cap
    # rudp's deviation (HANDSHAKE_PROBES): before confirmation the period stops at the cap, or at
    # twice the smallest RTT sample when that is longer.
    limit = None if cap is None or confirmed else max(cap, 2 * r.rtt.min_rtt)
    capped = limit is not None and duration > limit
    if limit is not None and capped:
        duration = limit
    outstanding = any(
        state.ack_eliciting_in_flight > 0 and (space is not PacketSpace.APPLICATION or confirmed)
        for space, state in spaces
    )
    if not outstanding:
        if r.peer_address_validated or r._timer_base_at is None:
            return None, PacketSpace.INITIAL, False
        space = PacketSpace.HANDSHAKE if r._has_handshake_keys else PacketSpace.INITIAL
        return r._timer_base_at + duration, space, False
    best: tuple[float, PacketSpace] | None = None
    for space, state in spaces:
        if state.ack_eliciting_in_flight == 0 or state.last_ack_eliciting_at is None:
            continue
        if space is PacketSpace.APPLICATION:
            if not confirmed:
                break
            duration += r.max_ack_delay * backoff
        deadline = state.last_ack_eliciting_at + duration
        if capped and r.probed_at is not None:
            deadline = max(deadline, r.probed_at + duration)
        if best is None or deadline < best[0]:
            best = (deadline, space)
    return (None, PacketSpace.INITIAL, False) if best is None else (best[0], best[1], False)


@pytest.mark.parametrize("seed", range(12))
def test_loss_timer_matches_appendix_a8(seed: int) -> None:
    rng = random.Random(seed)
    recovery = LossRecovery(
        RecordingController(),
        RttEstimator(),
        is_client=rng.random() < 0.5,
        max_ack_delay=0.025,
        handshake_timeout=rng.choice([None, 2.0]),
    )
    next_pn = dict.fromkeys(SPACES, 0)
    live = {space: True for space in SPACES}
    now = 0.0
    kinds = set()
    for _ in range(400):
        now += rng.choice([0.0, 0.001, 0.01, 0.05, 0.3])
        step = rng.random()
        space = rng.choice(SPACES)
        if step < 0.45 and live[space]:
            eliciting = rng.random() < 0.85
            recovery.on_packet_sent(packet(next_pn[space], now, space=space, ack_eliciting=eliciting))
            next_pn[space] += 1
        elif step < 0.75 and live[space] and next_pn[space]:
            high = rng.randrange(next_pn[space])
            recovery.on_ack_received(space, ack_of(*range(rng.randrange(high + 1), high + 1)), 0.0, now)
        elif step < 0.9:
            deadline = recovery.loss_detection_deadline()
            if deadline is not None:
                now = max(now, deadline)
                recovery.on_loss_detection_timeout(now)
        elif step < 0.94:
            recovery.set_handshake_confirmed()
        elif step < 0.96:
            recovery.set_handshake_keys_available()
        elif step < 0.98 and space is not PacketSpace.APPLICATION and live[space]:
            recovery.discard_space(space, now)
            live[space] = False
        expected = reference(recovery)
        assert recovery.loss_timer() == expected
        kinds.add((expected[0] is None, expected[2]))
    assert (False, False) in kinds  # PTOs were armed along the way
