"""RFC 9221 datagrams next to bulk stream data on one connection: queued datagrams go ahead of stream
data within ``Config.datagram_share`` of the bytes sent (RFC 9221 §5: datagrams may be prioritised
against streams; both stay under congestion control), old ones expire unsent, and a datagram flood
still lets the stream finish. Virtual time on a bandwidth-limited simulated link; payloads and the bulk
data hash-compared."""

from __future__ import annotations

import hashlib
import os
import statistics

import pytest

from rudp.errors import ConfigError
from rudp.quic import events as ev
from rudp.quic.control import DatagramQueue
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.support.sim import Sim, make_sim

RTT = 0.04
BANDWIDTH = 20e6
QUEUE_BYTES = 64_000
QUEUEING = QUEUE_BYTES * 8 / BANDWIDTH
"""The longest a packet can wait in the bottleneck queue (25.6 ms)."""
BULK = 4 << 20
INTERVAL = 0.01


def _sim(pki: TestPki, **client: object) -> Sim:
    link = LinkConfig(delay=RTT / 2, bandwidth=BANDWIDTH, queue_bytes=QUEUE_BYTES)
    sim = make_sim(pki, link=link, client={"datagrams": True, **client}, server={"datagrams": True})
    sim.handshake()
    return sim


def _digest(items: list[bytes]) -> str:
    return hashlib.sha256(b"".join(hashlib.sha256(item).digest() for item in sorted(items))).hexdigest()


Run = tuple[bytes, int, dict[int, float], dict[int, float], list[bytes]]


def _run(sim: Sim, *, per_tick: int, size: int, max_time: float = 30.0) -> Run:
    """A 4 MiB client-to-server stream, and ``per_tick`` datagrams of ``size`` bytes every 10 ms of
    virtual time while it runs. Returns (bulk data, stream id, send times, arrival times, payloads)."""
    data = os.urandom(BULK)
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, data)
    sent_at: dict[int, float] = {}
    arrived_at: dict[int, float] = {}
    payloads: list[bytes] = []
    seen = 0

    def record() -> bool:
        nonlocal seen
        events = sim.server.events
        for event in events[seen:]:
            if isinstance(event, ev.DatagramReceived):
                arrived_at.setdefault(int.from_bytes(event.data[:4], "big"), sim.clock.now)
        seen = len(events)
        return False

    start = sim.clock.now
    while stream_id not in sim.server.finished:
        assert sim.clock.now - start < max_time, "the bulk transfer did not finish"
        for _ in range(per_tick):
            index = len(payloads)
            payload = index.to_bytes(4, "big") + os.urandom(size - 4)
            payloads.append(payload)
            sim.conn.send_datagram(payload)
            sent_at[index] = sim.clock.now
        tick_end = sim.clock.now + INTERVAL
        sim.pair.drive(until=record, max_time=INTERVAL)
        sim.clock.advance_to(max(tick_end, sim.clock.now))
    sim.pair.drive(until=record, max_time=1.0)  # the last datagrams
    record()
    return data, stream_id, sent_at, arrived_at, payloads


def test_datagrams_are_not_starved_by_a_bulk_transfer(pki: TestPki) -> None:
    sim = _sim(pki)
    data, stream_id, sent_at, arrived_at, payloads = _run(sim, per_tick=1, size=200)
    assert hashlib.sha256(bytes(sim.server.streams[stream_id])).digest() == hashlib.sha256(data).digest()
    received = [e.data for e in sim.server.events if isinstance(e, ev.DatagramReceived)]
    assert len(payloads) > 100 and len(received) == len(payloads)  # nothing lost on this queue size
    assert _digest(received) == _digest(payloads)
    delays = sorted(arrived_at[i] - sent_at[i] for i in sent_at)
    p50, p99, worst = statistics.median(delays), delays[int(len(delays) * 0.99)], delays[-1]
    print(
        f"\ndatagram one-way delay during a 4 MiB transfer ({len(delays)} datagrams,"
        f" RTT {RTT * 1000:.0f} ms, {BANDWIDTH / 1e6:.0f} Mbit/s, queue {QUEUEING * 1000:.1f} ms):"
        f" p50 {p50 * 1000:.1f} ms,"
        f" p99 {p99 * 1000:.1f} ms, max {worst * 1000:.1f} ms"
    )
    # One way is RTT/2 plus the bottleneck queue; what waits for the congestion window waits about an
    # ACK's round trip more. Before the priority rule: p50 ~1.5 s, max ~2.9 s (until the stream ended).
    assert worst < 2 * RTT + QUEUEING
    assert sim.conn.stats.datagrams_expired == 0


def test_a_datagram_flood_still_lets_the_stream_finish(pki: TestPki) -> None:
    # 40 x 1000 bytes every 10 ms is 32 Mbit/s offered on a 20 Mbit/s link: with the default share
    # (half the bytes sent while both wait) the stream still gets about half the link.
    sim = _sim(pki)
    start = sim.clock.now
    data, stream_id, _, arrived_at, payloads = _run(sim, per_tick=40, size=1000, max_time=10.0)
    took = sim.clock.now - start
    assert hashlib.sha256(bytes(sim.server.streams[stream_id])).digest() == hashlib.sha256(data).digest()
    received = [e.data for e in sim.server.events if isinstance(e, ev.DatagramReceived)]
    assert set(received) <= set(payloads) and len(received) == len(arrived_at)
    stats = sim.conn.stats
    print(
        f"\nflood: stream {BULK * 8 / took / 1e6:.1f} Mbit/s, datagrams"
        f" {len(received) * 8000 / took / 1e6:.1f} Mbit/s ({len(received)} of {len(payloads)} arrived,"
        f" {stats.datagrams_expired} expired unsent)"
    )
    assert BULK * 8 / took > 0.3 * BANDWIDTH  # the stream keeps most of its half
    assert len(received) * 8000 / took > 0.2 * BANDWIDTH  # and the datagrams theirs
    assert stats.datagrams_expired > 0  # what the link cannot carry expires instead of piling up
    lost_in_transit = len(payloads) - len(received) - stats.datagrams_expired - sim.conn.queued_datagrams
    assert 0 <= lost_in_transit <= 2 * stats.packets_lost  # the rest went with lost packets


def test_share_zero_keeps_datagrams_behind_streams(pki: TestPki) -> None:
    sim = _sim(pki, datagram_share=0.0)
    _, _, sent_at, arrived_at, _ = _run(sim, per_tick=1, size=200)
    worst = max(arrived_at[i] - sent_at[i] for i in arrived_at)
    assert worst > 10 * RTT  # the old order: only the room stream data leaves


def test_queue_drops_the_oldest_and_expires_old_datagrams() -> None:
    queue = DatagramQueue(max_age=0.5, share=0.5, limit=4)
    for i in range(5):
        queue.append(bytes([i]))
    assert len(queue) == 4 and queue.dropped == 1  # the oldest went first
    queue.tick(10.0)  # the four are stamped now
    queue.append(b"new")
    assert len(queue) == 4 and queue.dropped == 2
    queue.tick(10.4)
    assert len(queue) == 4 and queue.dropped == 2
    queue.tick(10.6)
    assert len(queue) == 1 and queue.dropped == 5  # the three stamped at 10.0 are too old
    assert queue.has_data() and queue.ahead().has_data()


@pytest.mark.parametrize(
    ("field", "value"), [("datagram_share", 1.0), ("datagram_share", -0.1), ("datagram_max_age", 0.0)]
)
def test_config_checks_the_datagram_knobs(pki: TestPki, field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        _sim(pki, **{field: value})
