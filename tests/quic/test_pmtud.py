"""PMTU discovery (RFC 9000 §14.3, RFC 8899): the search itself, and on the simulated link — it finds the
link's MTU, probe losses are not congestion, and a PMTU black hole falls back to the base size."""

from __future__ import annotations

import hashlib
import os
import random

from rudp.quic.pmtud import LADDER, MAX_PROBE_ATTEMPTS, PmtuDiscovery
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.support.sim import make_sim


def test_search_climbs_the_ladder_then_bisects() -> None:
    path_mtu = 6000
    pmtud = PmtuDiscovery(1350, 9000)
    sizes = []
    now = 0.0
    for _ in range(200):
        if not pmtud.searching:
            break
        size = pmtud.probe_size(now)
        now += 0.1
        if size is None:
            continue
        sizes.append(size)
        if size <= path_mtu:
            pmtud.on_probe_acked(size)
        else:
            pmtud.on_probe_lost(size, retry_delay=0.1)
    assert sizes[:2] == [LADDER[0], LADDER[1]]
    assert sizes.count(LADDER[2]) == MAX_PROBE_ATTEMPTS  # 8952 fails three times, then bisection
    assert path_mtu - 64 <= pmtud.current <= path_mtu
    assert not pmtud.searching


def test_one_probe_at_a_time_and_retry_delay() -> None:
    pmtud = PmtuDiscovery(1350, 16384)
    first = pmtud.probe_size(0.0)
    assert first == 1452 and pmtud.probe_size(0.0) is None
    pmtud.on_probe_lost(1452, retry_delay=0.5)
    assert pmtud.probe_size(1.0) is None  # the wait starts at the next chance to send
    assert pmtud.probe_size(1.2) is None
    assert pmtud.probe_size(1.5) == 1452


def test_disabled_or_no_room() -> None:
    assert PmtuDiscovery(1350, 16384, enabled=False).probe_size(0.0) is None
    assert PmtuDiscovery(1350, 1350).probe_size(0.0) is None
    limited = PmtuDiscovery(1350, 16384)
    limited.set_ceiling(1400)  # within the search granularity of the base size: nothing to find
    assert limited.probe_size(0.0) is None
    roomy = PmtuDiscovery(1350, 16384)
    roomy.set_ceiling(1440)
    assert roomy.probe_size(0.0) == 1440


def test_black_hole_falls_back_and_searches_below() -> None:
    pmtud = PmtuDiscovery(1350, 16384)
    pmtud.on_probe_acked(8952)
    pmtud.on_black_hole(1350)
    assert pmtud.current == 1350 and pmtud.searching
    assert all(size < 8952 for size in LADDER[:2])


def _transfer(pki: TestPki, mtu: int, size: int = 3_000_000) -> tuple[int, int]:
    sim = make_sim(pki, link=LinkConfig(delay=0.01, mtu=mtu))
    sim.handshake()
    stream_id = sim.conn.open_stream()
    data = os.urandom(size)
    sim.client.send(stream_id, data)
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=60)
    assert hashlib.sha256(sim.server.streams[stream_id]).digest() == hashlib.sha256(data).digest()
    stats = sim.conn.stats
    assert stats.persistent_congestion_count == 0
    return stats.max_datagram_size, sim.pair.c2s.stats.dropped.get("mtu", 0)


def test_finds_an_ethernet_mtu(pki: TestPki) -> None:
    size, mtu_drops = _transfer(pki, mtu=1472)
    assert size == 1452  # the ladder's Ethernet size fits under 1472; 4096 was refused by the link
    assert mtu_drops >= 1  # the 4096-byte probe never got through


def test_finds_a_jumbo_mtu_and_probe_loss_is_not_congestion(pki: TestPki) -> None:
    size, _ = _transfer(pki, mtu=9000)
    assert 8952 - 64 <= size <= 9000


def test_black_hole_falls_back_to_the_base_size(pki: TestPki) -> None:
    sim = make_sim(pki, link=LinkConfig(delay=0.01, mtu=9000))
    sim.handshake()
    stream_id = sim.conn.open_stream()
    data = os.urandom(8_000_000)
    sim.client.send(stream_id, data)
    assert sim.pair.drive(until=lambda: sim.conn.stats.max_datagram_size > 8000, max_time=30)
    sim.pair.c2s.update(mtu=1400)  # the path changes: large datagrams now vanish
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=120)
    assert bytes(sim.server.streams[stream_id]) == data
    assert sim.conn.stats.max_datagram_size <= 1400


def _search(pmtud: PmtuDiscovery, path_mtu: int) -> list[int]:
    """Run the search against a path carrying ``path_mtu`` bytes; the sizes probed, in order."""
    sizes: list[int] = []
    now = 0.0
    while pmtud.searching and len(sizes) < 200:
        size = pmtud.probe_size(now)
        now += 0.1
        if size is None:
            continue
        sizes.append(size)
        if size <= path_mtu:
            pmtud.on_probe_acked(size)
        else:
            pmtud.on_probe_lost(size, retry_delay=0.1)
    return sizes


def test_an_ethernet_path_costs_a_few_lost_probes_not_a_walk_down() -> None:
    # IPv4 on 1500-byte Ethernet carries 1472-byte UDP payloads. The search bisects 4096 down to 1534;
    # once a step would be under the granularity it stops rather than probe 1533, 1532, ... (each one
    # byte below the last failure, three times each: what the interop tap's 1500-byte link showed).
    pmtud = PmtuDiscovery(1200, 65527)
    sizes = _search(pmtud, path_mtu=1472)
    failed = sorted({size for size in sizes if size > 1472}, reverse=True)
    assert failed == [4096, 2774, 2113, 1782, 1617, 1534]
    assert len(sizes) == 1 + MAX_PROBE_ATTEMPTS * len(failed)
    assert pmtud.current == 1452 and not pmtud.searching


def test_a_declared_ceiling_is_still_probed_at_the_end() -> None:
    pmtud = PmtuDiscovery(1200, 65527)
    pmtud.set_ceiling(1530)  # the peer's max_udp_payload_size, not a failure
    assert _search(pmtud, path_mtu=1530) == [1452, 1530]  # bisecting 1452..1530 is below 64 bytes
    assert pmtud.current == 1530


def _state(pmtud: PmtuDiscovery) -> tuple[object, ...]:
    # (large_handler: the object's own handler, fixed at construction; __weakref__: the weak reference
    # large_handler holds, not state)
    fixed = ("next_probe_at", "large_handler", "__weakref__")
    return tuple(getattr(pmtud, name) for name in PmtuDiscovery.__slots__ if name not in fixed)


def test_next_probe_at_only_skips_calls_that_change_nothing() -> None:
    # The sender asks probe_size() only from next_probe_at on. Random walks (probes sent, acknowledged,
    # lost, also late and of other sizes, cancelled, black holes, lower ceilings, time passing): before
    # next_probe_at, probe_size() answers None and leaves every field as it was; and a search that
    # skips those calls makes the same probes as one asking at every step.
    skipped_calls = 0
    for seed in range(300):
        rng = random.Random(seed)
        asked, skipping = PmtuDiscovery(1200, 9000), PmtuDiscovery(1200, 9000)
        sent: list[int] = []
        now = 0.0
        for _ in range(120):
            now += rng.choice((0.0, 0.01, 0.05, 0.3))
            before = _state(asked)
            due = now >= asked.next_probe_at
            size = asked.probe_size(now)
            if not due:
                skipped_calls += 1
                assert size is None and _state(asked) == before, seed
            assert (skipping.probe_size(now) if now >= skipping.next_probe_at else None) == size, seed
            if size is not None:
                sent.append(size)
            event = rng.random()
            for pmtud in (asked, skipping):
                if sent and event < 0.3:
                    pmtud.on_probe_acked(sent[-1])
                elif sent and event < 0.55:
                    pmtud.on_probe_lost(sent[int(event * 1000) % len(sent)], retry_delay=0.1)
                elif size is not None and event < 0.6:
                    pmtud.cancel_probe(size)
                elif event < 0.62:
                    pmtud.on_black_hole()
                elif event < 0.64:
                    pmtud.set_ceiling(int(2000 + event * 1000))
            assert _state(asked) == _state(skipping), seed
    assert skipped_calls > 1000  # (the skip is taken)
