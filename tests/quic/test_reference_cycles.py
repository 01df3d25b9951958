"""A connection is freed by reference counting, not by the garbage collector.

An object graph with a reference cycle is only freed when the cyclic collector runs: until then a
finished connection (its streams, buffers, keys, sent packets) stays in memory, and on a busy server
the collections that find it scan every live connection. Each scenario below runs with the collector
off, drops every reference, and then looks at what only the collector could free: no rudp object may
be part of a cycle (objects of the test harness may be; a rudp object merely reachable from one of
their cycles is not counted).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rudp.config import Config
from rudp.quic.endpoint import QuicEndpoint
from rudp.quic.events import HandshakeCompleted
from rudp.testing import LinkConfig
from rudp.testing.certs import TestPki, make_test_pki
from rudp.tls.tickets import TicketStore
from tests.support.cycles import check_no_rudp_cycles, collector_off, cyclic
from tests.support.sim import CLIENT_ADDR, SERVER_ADDR, make_sim


def test_the_cycle_finder_sees_a_cycle_and_ignores_a_tree() -> None:
    class Node:
        def __init__(self) -> None:
            self.other: object = None

    def scenario() -> None:
        a, b, leaf = Node(), Node(), Node()
        a.other, b.other = b, a  # a cycle
        tree = [leaf]  # no cycle, dropped by reference counting
        del a, b, tree

    with collector_off() as garbage:
        scenario()
    nodes = [o for o in garbage if type(o) is Node]
    assert len(nodes) == 2 and len(cyclic(garbage)) >= 2


def test_a_transfer_with_migration_key_update_and_datagrams_leaves_no_cycle(pki: TestPki) -> None:
    def scenario() -> None:
        sim = make_sim(
            pki, link=LinkConfig(delay=0.005), client={"datagrams": True}, server={"datagrams": True}
        )
        sim.handshake()
        sim.server.echo = True
        data = os.urandom(300_000)
        first = sim.conn.open_stream()
        sim.client.send(first, data)
        sim.conn.send_datagram(b"d" * 200)
        sim.pair.run_for(0.05)
        assert sim.conn.request_key_update()
        sim.conn.migrate(sim.clock.now)
        sim.pair.rebind_client(("10.0.0.7", 6000))
        assert sim.pair.drive(until=lambda: first in sim.client.finished, max_time=30)
        assert bytes(sim.client.streams[first]) == data
        sim.conn.close(now=sim.clock.now)
        endpoint = sim.server.target
        assert isinstance(endpoint, QuicEndpoint)
        assert sim.pair.drive(until=lambda: not endpoint.connections and sim.conn.is_closed, max_time=30)

    assert check_no_rudp_cycles(scenario) == []


def test_handshakes_full_and_resumed_on_one_server_endpoint_leave_no_cycle(pki: TestPki) -> None:
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file)
    server = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    tickets = TicketStore()
    client_config = Config(cafile=pki.ca_file, server_name="localhost", session_ticket_store=tickets)

    def one(now: float) -> bool:
        client = QuicEndpoint(client_config)
        conn = client.connect(SERVER_ADDR, now, server_name="localhost")
        done = False
        for _ in range(20):
            for data, _ in client.datagrams_to_send(now):
                server.receive_datagram(data, CLIENT_ADDR, now)
            for data, _ in server.datagrams_to_send(now):
                client.receive_datagram(data, SERVER_ADDR, now)
            while (event := conn.next_event()) is not None:
                done = done or isinstance(event, HandshakeCompleted)
            now += 0.001
        resumed = conn.session_resumed
        assert done
        conn.close(now=now)  # the client endpoint is dropped while its connection drains
        for data, _ in client.datagrams_to_send(now):
            server.receive_datagram(data, CLIENT_ADDR, now)
        server.datagrams_to_send(now)
        server.handle_timer(now + 5.0)
        server.datagrams_to_send(now + 5.0)
        return resumed

    def scenario() -> None:
        assert not one(1000.0) and one(1010.0)  # the second one resumes with the first one's ticket
        assert server.state_sizes()["connections"] == 0

    assert check_no_rudp_cycles(scenario) == []


@pytest.mark.parametrize("side", ["client", "server"])
def test_an_abandoned_handshake_leaves_no_cycle(pki: TestPki, side: str) -> None:
    """A handshake cut off half-way (the peer vanished; the endpoint is dropped with it)."""

    def scenario() -> None:
        sim = make_sim(pki, link=LinkConfig(delay=0.005))
        if side == "server":
            sim.pair.s2c.update(drop_filter=lambda data, index: True)  # the client never hears back
        sim.pair.run_for(0.02)

    assert check_no_rudp_cycles(scenario) == []


@pytest.mark.parametrize("when", [0.002, 0.03, 0.2])
def test_a_connection_dropped_with_packets_in_flight_leaves_no_cycle(pki: TestPki, when: float) -> None:
    """Dropped mid-transfer, neither closed nor drained: sent packets still hold their delivery
    handlers (stream data, ACKs, control frames, PMTU probes), which must not refer back to what owns
    the record of sent packets."""

    def scenario() -> None:
        sim = make_sim(
            pki, link=LinkConfig(delay=0.01), client={"datagrams": True}, server={"datagrams": True}
        )
        sim.handshake()
        sim.server.echo = True
        stream = sim.conn.open_stream()
        sim.client.send(stream, os.urandom(400_000))
        sim.conn.send_datagram(b"d" * 100)
        sim.conn.ping()
        sim.pair.run_for(when)
        assert sim.conn.stats.packets_sent > 0

    assert check_no_rudp_cycles(scenario) == []


def test_a_failed_handshake_leaves_no_cycle(pki: TestPki, tmp_path: Path) -> None:
    """A handshake that fails in TLS (the client does not trust the server's certificate): the error
    that ended it is kept, and must not carry frames that refer back to what keeps it."""
    other = make_test_pki(tmp_path / "other")

    def scenario() -> None:
        sim = make_sim(pki, link=LinkConfig(delay=0.005), client={"cafile": other.ca_file})
        sim.pair.run_for(1.0)
        assert sim.conn.is_closed and sim.conn.close_cause is not None
        assert sim.conn.close_cause.code == 0x100 + 48  # CRYPTO_ERROR, TLS alert unknown_ca

    assert check_no_rudp_cycles(scenario) == []
