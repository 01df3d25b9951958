"""ConnectionDeadlines.earliest: the connection's next timer is the earliest of the collected deadlines."""

from __future__ import annotations

from rudp.quic.timers import earliest_deadline
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.support.sim import make_sim


def test_next_timer_is_the_earliest_collected_deadline_throughout_a_transfer(pki: TestPki) -> None:
    sim = make_sim(pki, link=LinkConfig(delay=0.01, loss=0.05, seed=3))
    deadlines = sim.conn._deadlines  # the client's (the connection's timer asks it after every flush)
    seen: set[bool] = set()
    receiver_armed: set[bool] = set()

    def check() -> bool:
        collected = deadlines.collect()
        assert deadlines.earliest() == earliest_deadline(collected) == sim.conn.next_timer()
        seen.add(earliest_deadline(collected) is None)
        for conn in sim.server.target.connections:  # the receiver's too (mostly ACK-only flushes)
            server_collected = conn._deadlines.collect()
            assert conn._deadlines.earliest() == earliest_deadline(server_collected)
            receiver_armed.add(earliest_deadline(server_collected) is not None)
        return False

    sim.pair.drive(until=check, max_time=0.5)
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, bytes(200_000))
    sim.pair.drive(until=lambda: check() or stream_id in sim.server.finished, max_time=30)
    assert stream_id in sim.server.finished
    assert False in seen  # timers were armed while it was checked
    assert True in receiver_armed
