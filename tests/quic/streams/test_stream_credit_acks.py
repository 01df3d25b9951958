"""Requests limited by the peer's MAX_STREAMS do not wait for delayed ACKs (RFC 9000 §4.6, §13.2.1).

A server grants a new stream for each of the client's streams that closes, and a stream it answered on
closes only once the client's ACK of its last byte arrives (RFC 9000 §3.1 "Data Recvd"). A client
blocked on stream credit sends nothing else, so an ACK it delays by ``max_ack_delay`` delays every
waiting request by as much. On the simulator (virtual clock, deterministic): an echo server with a
small stream limit and a client that keeps as many requests in flight as the limit allows.
"""

from __future__ import annotations

import pytest

from rudp.errors import StreamLimitReached
from rudp.quic.events import StreamsAvailable
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki
from tests.support.sim import Sim, make_sim

ONE_WAY = 0.01  # RTT 20 ms
MAX_ACK_DELAY = 0.025  # rudp's default; what a delayed ACK costs
REQUEST = b"r" * 100


def _run_requests(sim: Sim, count: int) -> float:
    """Keep as many echo requests in flight as credit allows until ``count`` completed; the virtual
    time it took. Each response is checked byte for byte."""
    start = sim.clock.now
    opened: list[int] = []
    while len(sim.client.finished) < count:
        while len(opened) < count:
            try:
                stream_id = sim.conn.open_stream()
            except StreamLimitReached:
                break
            opened.append(stream_id)
            sim.client.send(stream_id, REQUEST, fin=True)
        finished, seen = len(sim.client.finished), len(sim.client.events)
        assert sim.pair.drive(
            until=lambda finished=finished, seen=seen: (
                len(sim.client.finished) > finished
                or any(isinstance(e, StreamsAvailable) for e in sim.client.events[seen:])
            ),
            max_time=5.0,
        ), "no progress: a request or the stream credit never came"
    assert all(bytes(sim.client.streams[sid]) == REQUEST for sid in opened)
    return sim.clock.now - start


@pytest.mark.parametrize("limit", [1, 4, 8])
def test_blocked_opener_acknowledges_at_once(pki: TestPki, limit: int) -> None:
    sim = make_sim(pki, link=LinkConfig(delay=ONE_WAY), server={"max_streams_bidi": limit})
    sim.server.echo = True
    sim.handshake()
    rounds = 10
    elapsed = _run_requests(sim, rounds * limit)
    # Per round: the requests and their answers (one RTT), then the client's ACK and the server's
    # MAX_STREAMS (one more RTT). With the ACK held for max_ack_delay each round took ~2 RTT + 18 ms.
    rtt = 2 * ONE_WAY
    assert elapsed <= rounds * (2 * rtt + 0.005), f"{elapsed * 1000:.0f} ms for {rounds} rounds"
    assert elapsed >= rounds * 2 * rtt * 0.9  # the credit really was the limit (not a vacuous bound)


def test_unblocked_receiver_still_delays_acks(pki: TestPki) -> None:
    """Without a waiting opener the ACK policy is unchanged: one ACK per two ack-eliciting packets
    (RFC 9000 §13.2.2), not one per packet."""
    sim = make_sim(
        pki, link=LinkConfig(delay=ONE_WAY), client={"ack_frequency": False}, server={"ack_frequency": False}
    )
    sim.handshake()
    stream_id = sim.conn.open_stream()
    body = bytes(range(256)) * 400  # ~100 KB from the client: the server is the one that ACKs
    c2s, s2c = sim.pair.c2s.stats, sim.pair.s2c.stats
    sent, acks = c2s.sent, s2c.sent
    sim.client.send(stream_id, body, fin=True)
    assert sim.pair.drive(until=lambda: stream_id in sim.server.finished, max_time=10.0)
    assert bytes(sim.server.streams[stream_id]) == body
    assert (s2c.sent - acks) / (c2s.sent - sent) <= 0.6


def test_sequential_requests_cost_two_datagrams(pki: TestPki) -> None:
    """Request, response, nothing else: the stream credit each closed stream earns the peer is
    announced in batches (once half the limit is used), not by one MAX_STREAMS datagram per request
    that the client then acknowledges."""
    quiet = {"pmtu_discovery": False}  # PMTU probes are datagrams of their own, not the requests'
    sim = make_sim(pki, link=LinkConfig(delay=ONE_WAY), client=quiet, server=quiet)
    sim.server.echo = True
    sim.handshake()
    c2s, s2c = sim.pair.c2s.stats, sim.pair.s2c.stats
    sent_before, answered_before = c2s.sent, s2c.sent
    count = 300  # three times the server's limit of 100 streams: credit must be renewed
    for _ in range(count):
        stream_id = sim.conn.open_stream()
        sim.client.send(stream_id, REQUEST, fin=True)
        assert sim.pair.drive(until=lambda sid=stream_id: sid in sim.client.finished, max_time=1.0)
        assert bytes(sim.client.streams[stream_id]) == REQUEST
    per_request = (c2s.sent - sent_before + s2c.sent - answered_before) / count
    assert per_request <= 2.05, f"{per_request:.2f} datagrams per request"


def test_sequential_requests_cost_two_datagrams_with_max_streams_riding_along(pki: TestPki) -> None:
    """One request at a time (each stream closes when the next request carries the ACK of its
    answer): the server's MAX_STREAMS rides on an answer while the client has more than a quarter of
    its streams left (RFC 9000 §4.6), instead of a datagram of its own, the client's ACK of it and
    the server's ACK of that (3 more datagrams per announcement)."""
    quiet = {"pmtu_discovery": False}  # no probes among the datagrams counted
    sim = make_sim(pki, link=LinkConfig(delay=ONE_WAY), client=quiet, server={"max_streams_bidi": 8, **quiet})
    sim.handshake()
    _run_requests_one_at_a_time(sim, 4)  # settle: the handshake's last packets and ACKs
    c2s, s2c = sim.pair.c2s.stats, sim.pair.s2c.stats
    sent = c2s.sent + s2c.sent
    requests = 40  # 8 announcements of 4 streams each at half the limit
    _run_requests_one_at_a_time(sim, requests)
    assert c2s.sent + s2c.sent - sent <= 2 * requests + 2


def _run_requests_one_at_a_time(sim: Sim, count: int) -> None:
    """As the asyncio endpoint runs a server: it transmits after the request arrives (the ACK is
    delayed: usually nothing), and the answer, written by the handler later, goes in a flush of its own."""
    for _ in range(count):
        stream_id = sim.conn.open_stream()
        sim.client.send(stream_id, REQUEST, fin=True)
        assert sim.pair.drive(until=lambda sid=stream_id: sid in sim.server.finished, max_time=5.0)
        sim.pair.flush()
        sim.server.send(stream_id, bytes(sim.server.streams[stream_id]), fin=True)
        assert sim.pair.drive(until=lambda sid=stream_id: sid in sim.client.finished, max_time=5.0)
        assert bytes(sim.client.streams[stream_id]) == REQUEST
