"""The connection's timer table (rudp.quic.timers): built from one deadline per timer."""

from __future__ import annotations

import pytest

from rudp.quic.timers import TIMER_COUNT, Timer, TimerTable


def test_table_from_deadlines_answers_by_timer() -> None:
    deadlines: list[float | None] = [None] * TIMER_COUNT
    deadlines[Timer.PACING] = 3.0
    deadlines[Timer.IDLE] = 2.5
    deadlines[Timer.KEY_DISCARD] = 9.0
    table = TimerTable(deadlines)
    assert table.get(Timer.PACING) == 3.0 and table.get(Timer.LOSS_DETECTION) is None
    assert table.next_deadline() == 2.5
    assert table.expired(3.0) == [Timer.IDLE, Timer.PACING]  # in enum order, then disarmed
    assert table.next_deadline() == 9.0
    assert TimerTable().next_deadline() is None


def test_table_refuses_a_wrong_number_of_deadlines() -> None:
    with pytest.raises(ValueError, match="deadlines for"):
        TimerTable([1.0] * (TIMER_COUNT - 1))
