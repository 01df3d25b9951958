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


def test_the_inline_idle_timeout_is_handshake_idle_timeout() -> None:
    # earliest() computes Handshake.idle_timeout inline (from Handshake.peer_idle_timeout); collect()
    # calls it: with every other deadline unset, the two agree for each case of RFC 9000 §10.1.
    import dataclasses
    from types import SimpleNamespace
    from typing import Any

    import pytest

    from rudp.codec.transport_params import TransportParameters
    from rudp.quic.deadlines import ConnectionDeadlines
    from rudp.quic.handshake import Handshake
    from rudp.quic.state import State

    for local in (0.0, 0.001, 0.5, 5.0, 30.0):
        for peer_ms in (None, 0, 1, 600, 7_000, 10_000, 60_000):
            for pto in (0.01, 0.25, 4.0):
                params = None
                if peer_ms is not None:
                    params = dataclasses.replace(TransportParameters(), max_idle_timeout=peer_ms)
                handshake = SimpleNamespace(
                    peer_params=params, peer_idle_timeout=0.0 if params is None else peer_ms / 1000
                )
                handshake.idle_timeout = lambda local, pto, h=handshake: Handshake.idle_timeout(h, local, pto)
                fakes: dict[str, Any] = {
                    "lifecycle": SimpleNamespace(
                        state=State.ESTABLISHED, closing=SimpleNamespace(until=None)
                    ),
                    "recovery": SimpleNamespace(loss_timer=lambda: (None, None), pto=lambda p=pto: p),
                    "spaces": SimpleNamespace(values=list, phase=SimpleNamespace(previous_read_until=None)),
                    "handshake": handshake,
                    "liveness": SimpleNamespace(
                        deadlines=lambda t, i: (None if t is None else 100.0 + t, None)
                    ),
                    "paths": SimpleNamespace(
                        current=SimpleNamespace(validated=True), next_deadline=lambda: None
                    ),
                    "sender": SimpleNamespace(pacing_blocked=False, next_deadline=lambda: None),
                }
                config: Any = SimpleNamespace(idle_timeout=local, keepalive_interval=None)
                deadlines = ConnectionDeadlines(config, **fakes)
                expected = Handshake.idle_timeout(handshake, local, pto)
                assert deadlines.earliest() == earliest_deadline(deadlines.collect())
                assert deadlines.earliest() == (None if expected is None else pytest.approx(100.0 + expected))


def test_the_peer_idle_timeout_is_the_peers_parameter(pki: TestPki) -> None:
    sim = make_sim(pki)
    sim.pair.drive(until=lambda: sim.conn.handshake_complete, max_time=1.0)
    for conn in (sim.conn, *sim.server.target.connections):
        handshake = conn._handshake
        assert handshake.peer_params is not None
        assert handshake.peer_idle_timeout == handshake.peer_params.max_idle_timeout / 1000
