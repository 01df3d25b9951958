"""Liveness: the idle and keep-alive deadlines (RFC 9000 §10.1), alone and asked together."""

from __future__ import annotations

import pytest

from rudp.quic.liveness import Liveness


@pytest.mark.parametrize("timeout", [None, 30.0])
@pytest.mark.parametrize("interval", [None, 5.0])
def test_deadlines_answer_as_the_two_questions_do(timeout: float | None, interval: float | None) -> None:
    liveness = Liveness(1.0)
    liveness.on_packet_received(2.0)
    liveness.on_datagram_sent(3.0, ack_eliciting=True)  # the first after a receipt restarts the timer
    liveness.on_datagram_sent(4.0, ack_eliciting=True)  # ... later ones do not
    liveness.on_datagram_sent(6.0, ack_eliciting=False)
    assert liveness.deadlines(timeout, interval) == (
        liveness.idle_deadline(timeout),
        liveness.keepalive_deadline(interval),
    )
    assert liveness.deadlines(timeout, interval) == (
        None if timeout is None else 3.0 + timeout,
        None if interval is None else 4.0 + interval,
    )
