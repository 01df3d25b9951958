"""Connection-level flow control with a slow reader, session resumption with 0-RTT, and stateless
resets, over the simulator."""

from __future__ import annotations

import os

import pytest

from rudp.quic.endpoint import QuicEndpoint
from rudp.testing import LinkConfig, Pair
from rudp.testing.certs import TestPki
from rudp.tls.tickets import TicketStore
from tests.support.peers import RudpPeer
from tests.support.sim import SERVER_ADDR, make_sim


def test_slow_reader_bounds_memory_and_blocks_sender(pki: TestPki) -> None:
    window = 64 * 1024
    send_buffer = 128 * 1024
    sim = make_sim(
        pki,
        client={"send_buffer_bytes": send_buffer},
        server={
            "initial_max_stream_data": window,
            "max_stream_window": window,
            "initial_max_data": 4 * window,
            "max_connection_window": 4 * window,
        },
    )
    sim.handshake()
    sim.server.read_limit = 400  # the application reads 400 bytes whenever it runs: slower than the link
    data = os.urandom(1_500_000)
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, data)
    peaks = {"sent": 0, "recv": 0, "backlog": 0}

    def observe() -> bool:
        peaks["sent"] = max(peaks["sent"], sim.conn.stats.send_buffered_bytes)
        if sim.server.connections:
            peaks["recv"] = max(peaks["recv"], sim.server.conn.stats.recv_buffered_bytes)
        pending = sim.client.outgoing.get(stream_id)
        accepted = len(data) - (len(pending[0]) if pending else 0)
        read = len(sim.server.streams.get(stream_id, b""))
        peaks["backlog"] = max(peaks["backlog"], accepted - read)
        return stream_id in sim.server.finished

    assert sim.pair.drive(until=observe, max_time=300)
    assert bytes(sim.server.streams[stream_id]) == data
    # Whatever the reader's pace, rudp holds at most one send buffer plus one receive window.
    assert peaks["sent"] <= send_buffer
    assert 0 < peaks["recv"] <= window
    assert peaks["backlog"] <= send_buffer + window


def test_resumption_and_zero_rtt(pki: TestPki) -> None:
    store = TicketStore()
    client_options = {"session_ticket_store": store, "enable_0rtt": True}
    server_options = {"enable_0rtt": True}
    sim = make_sim(pki, client=client_options, server=server_options)
    sim.handshake()
    assert sim.pair.drive(until=lambda: len(store) > 0, max_time=2), "the server sent a session ticket"
    first_handshake = sim.client.handshake
    assert first_handshake is not None and not first_handshake.session_resumed

    # Second connection to the same server endpoint: resumed, with data sent before the handshake ends.
    endpoint = sim.server.target
    assert isinstance(endpoint, QuicEndpoint)
    second = RudpPeer(endpoint)
    from rudp.quic.connection import QuicConnection

    conn = QuicConnection.client(sim.client_config, server_address=SERVER_ADDR, now=sim.clock.now)
    client = RudpPeer(conn)
    pair = Pair(
        client,
        second,
        client_addr=("10.0.0.3", 6000),
        server_addr=SERVER_ADDR,
        c2s=LinkConfig(delay=0.02),
        s2c=LinkConfig(delay=0.02, seed=3),
        clock=sim.clock,
    )
    stream_id = conn.open_stream()
    client.send(stream_id, b"GET /early\r\n")
    started = sim.clock.now
    assert pair.drive(until=lambda: stream_id in second.finished, max_time=5)
    # 0-RTT: the request reached the server one-way after the first flight, before any round trip.
    assert sim.clock.now - started == pytest.approx(0.02, abs=1e-9)
    assert pair.drive(until=lambda: client.handshake is not None, max_time=2)
    assert client.handshake is not None
    assert client.handshake.session_resumed and client.handshake.early_data_accepted
    assert conn.session_resumed and conn.early_data_accepted


def test_zero_rtt_rejected_data_is_resent(pki: TestPki) -> None:
    store = TicketStore()
    sim = make_sim(
        pki, client={"session_ticket_store": store, "enable_0rtt": True}, server={"enable_0rtt": True}
    )
    sim.handshake()
    assert sim.pair.drive(until=lambda: len(store) > 0, max_time=2)
    # A different server (new ticket key): the ticket cannot be used, 0-RTT is rejected.
    other = make_sim(
        pki, client={"session_ticket_store": store, "enable_0rtt": True}, server={"enable_0rtt": True}
    )
    assert other.conn.early_data_attempted
    stream_id = other.conn.open_stream()
    payload = os.urandom(5_000)
    other.client.send(stream_id, payload)
    assert other.pair.drive(until=lambda: stream_id in other.server.finished, max_time=5)
    assert bytes(other.server.streams[stream_id]) == payload
    assert other.client.handshake is not None and not other.client.handshake.early_data_accepted


def test_stateless_reset_ends_the_connection(pki: TestPki) -> None:
    sim = make_sim(pki, server={"stateless_reset_key": bytes(range(32))})
    sim.handshake()
    sim.pair.run_for(0.2)
    # The server restarts and loses every connection; with the same static reset key its new endpoint
    # answers the client's next packet with a stateless reset that the client recognises.
    restarted = QuicEndpoint(sim.server_config, tls_config=sim.server_config.tls_config(is_client=False))
    sim.server.target = restarted
    stream_id = sim.conn.open_stream()
    sim.client.send(stream_id, b"anyone there?")
    assert sim.pair.drive(until=lambda: sim.client.terminated is not None, max_time=5)
    assert sim.client.terminated is not None and sim.client.terminated.reason == "stateless reset"
    assert restarted.stateless_resets_sent >= 1
