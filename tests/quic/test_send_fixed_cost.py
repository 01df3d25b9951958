"""The fixed cost of a flush on the send side (issue 13, small requests): what a batch asks once and
what it may leave unasked must not change what it decides."""

from __future__ import annotations

import pytest

from rudp.quic.recovery import LossRecovery
from rudp.quic.trains import TrainSender
from rudp.testing.certs import TestPki
from tests.support.sim import Sim, make_sim


def _quiet_client(pki: TestPki) -> Sim:
    sim = make_sim(pki, client={"pmtu_discovery": False}, server={"pmtu_discovery": False})
    sim.handshake()
    sim.pair.drive(max_time=1.0)  # the handshake's tail (CIDs, tokens, ACKs) settles
    return sim


@pytest.mark.parametrize(("size", "app_limited"), [(100, True), (400_000, False)])
def test_a_train_reports_app_limited_only_when_the_streams_are_drained(
    pki: TestPki, monkeypatch: pytest.MonkeyPatch, size: int, app_limited: bool
) -> None:
    # RFC 9002 §7.8 / delivery-rate samples: a batch whose train sent every queued byte says the
    # application limits the rate; one the congestion window or the pacer stopped with data left
    # does not (Sender._datagrams skips the question when TrainSender.drained says the answer).
    sim = _quiet_client(pki)
    conn = sim.conn
    calls: list[int] = []
    original = LossRecovery.on_app_limited
    monkeypatch.setattr(LossRecovery, "on_app_limited", lambda self: calls.append(1) or original(self))
    trains: list[int] = []
    build = TrainSender.build

    def counted(self: TrainSender, now: float, path: object, out: list[object], ecn: bool) -> bool:
        before = len(out)
        alive = build(self, now, path, out, ecn)  # type: ignore[arg-type]
        trains.append(len(out) - before)
        return alive

    monkeypatch.setattr(TrainSender, "build", counted)
    stream_id = conn.open_stream()
    conn.send_stream(stream_id, bytes(size), fin=True)
    now = sim.clock.now
    datagrams = conn.datagrams_to_send(now)
    assert trains and sum(trains) == len(datagrams) > 0  # the batch was one train
    assert calls == ([1] if app_limited else [])
