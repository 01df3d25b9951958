"""Sans-IO rudp <-> rudp over the simulated link: handshake round trips, bulk and many-stream
transfers under loss/reordering/duplication, and no head-of-line blocking between streams."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from rudp.codec.frames import Stream
from rudp.crypto.suites import CipherSuite
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.support.sim import START, Sniffer, make_sim


def _digest(data: bytes | bytearray) -> bytes:
    return hashlib.sha256(data).digest()


def test_handshake_takes_one_round_trip(pki: TestPki) -> None:
    sim = make_sim(pki, link=LinkConfig(delay=0.02))
    assert sim.pair.drive(until=lambda: sim.client.handshake is not None, max_time=5)
    # The client can send application data after exactly one round trip...
    assert sim.client.handshake_done_at == pytest.approx(START + 0.04, abs=1e-9)
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, b"hello", fin=True)
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=5)
    # ...which reaches the server half a round trip later (1.5 RTT after the first Initial).
    assert sim.clock.now == pytest.approx(START + 0.06, abs=1e-9)
    assert bytes(sim.server.streams[stream_id]) == b"hello"
    assert sim.client.handshake is not None and sim.client.handshake.alpn_protocol == "rudp/1"
    assert not sim.client.handshake.session_resumed


IMPAIRED = {
    "clean": {},
    "loss1": {"loss": 0.01},
    "loss5": {"loss": 0.05, "reorder": 0.02, "reorder_delay": 0.005, "duplicate": 0.01},
    "loss20": {"loss": 0.2, "reorder": 0.05, "reorder_delay": 0.005, "duplicate": 0.02},
}


@pytest.mark.parametrize("impairment", list(IMPAIRED))
def test_bulk_transfer_5mb_one_stream(pki: TestPki, impairment: str) -> None:
    link = LinkConfig(delay=0.01, seed=11, **IMPAIRED[impairment])  # type: ignore[arg-type]
    sim = make_sim(pki, link=link)
    sim.handshake()
    data = os.urandom(5_000_000)
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, data)
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=600)
    assert _digest(sim.server.streams[stream_id]) == _digest(data)
    if impairment != "clean":
        assert sim.conn.stats.packets_lost > 0


@pytest.mark.parametrize("impairment", list(IMPAIRED))
def test_fifty_concurrent_streams_both_directions(pki: TestPki, impairment: str) -> None:
    link = LinkConfig(delay=0.01, seed=5, **IMPAIRED[impairment])  # type: ignore[arg-type]
    sim = make_sim(pki, link=link)
    sim.server.echo = True
    sim.handshake()
    payloads = {}
    for _ in range(50):
        stream_id = sim.conn.open_stream()
        payloads[stream_id] = os.urandom(20_000 + stream_id)
        sim.client.send(stream_id, payloads[stream_id])
    assert sim.pair.drive(until=lambda: set(payloads) <= sim.client.finished, max_time=600)
    for stream_id, data in payloads.items():
        assert _digest(sim.server.streams[stream_id]) == _digest(data)
        assert _digest(sim.client.streams[stream_id]) == _digest(data)


def test_loss_on_one_stream_does_not_block_another(pki: TestPki, tmp_path: Path) -> None:
    keylog = tmp_path / "keys.log"
    sim = make_sim(
        pki,
        link=LinkConfig(delay=0.02),
        client={"secrets_log": keylog, "cipher_suites": [CipherSuite.AES_128_GCM_SHA256]},
    )
    sim.handshake()
    sniffer = Sniffer(keylog, "CLIENT_TRAFFIC_SECRET_0", CipherSuite.AES_128_GCM_SHA256)
    blocked_until = sim.clock.now + 0.5
    dropped: list[int] = []

    def drop_stream_zero(datagram: bytes, index: int) -> bool:
        frames = sniffer.frames(datagram) or []
        if sim.clock.now < blocked_until and any(isinstance(f, Stream) and f.stream_id == 0 for f in frames):
            dropped.append(index)
            return True
        return False

    sim.pair.c2s.update(drop_filter=drop_stream_zero)
    slow, fast = sim.conn.open_stream(), sim.conn.open_stream()
    sim.client.send(slow, os.urandom(1_000))
    sim.pair.flush()  # stream 0's packet leaves first; stream 4's goes in a packet of its own
    sim.client.send(fast, b"small request that must not wait")
    assert sim.pair.drive(until=lambda: fast in sim.server.finished, max_time=5)
    fast_done = sim.clock.now
    assert slow not in sim.server.finished and dropped, "stream 0 was being held back by the losses"
    # The fast stream is delivered one round trip after it was sent, while stream 0 is still stuck.
    assert fast_done == pytest.approx(blocked_until - 0.5 + 0.02, abs=0.001)
    assert sim.pair.drive(until=lambda: slow in sim.server.finished, max_time=30)
    assert sim.clock.now > blocked_until


def test_ping_is_acknowledged(pki: TestPki) -> None:
    sim = make_sim(pki)  # 20 ms each way
    sim.handshake()
    sim.pair.run_for(0.5)
    sent_at = sim.clock.now
    uid = sim.conn.ping()
    from rudp.quic.events import PingAcknowledged

    assert sim.pair.drive(
        until=lambda: any(isinstance(e, PingAcknowledged) and e.uid == uid for e in sim.client.events),
        max_time=2,
    )
    # A PING is acknowledged at once (no ack delay): the answer takes exactly one round trip.
    assert sim.clock.now == pytest.approx(sent_at + 0.04, abs=1e-6)
