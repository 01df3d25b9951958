"""A server connection that ends before its handshake completes gives its ``max_handshakes`` slot back
at once, not when its closing or draining period is over.

Clients that close right after their handshake (health checks, short-lived tools) close before their
Finished leaves: the server then sees a CONNECTION_CLOSE instead, and the connection drains for three
PTOs, about 3 s without an RTT sample. It used to hold a handshake slot that long, so a server took
only ``max_handshakes`` such clients per ~4 s (~120 per second with the default 512) and refused the
rest as busy.
"""

from __future__ import annotations

from rudp.config import Config
from rudp.quic.endpoint import QuicEndpoint
from rudp.quic.state import State
from rudp.testing.certs import TestPki

SERVER = ("10.0.0.2", 4433)


def _client_closing_after_handshake(
    server: QuicEndpoint, client_config: Config, port: int, now: float
) -> tuple[QuicEndpoint, bool]:
    """One client: handshake from ``10.0.0.1:port``, then close before anything else is sent; whether
    the server refused it."""
    addr = ("10.0.0.1", port)
    client = QuicEndpoint(client_config)
    conn = client.connect(SERVER, now, server_name="localhost")
    for _ in range(10):
        for data, _ in client.datagrams_to_send(now):
            server.receive_datagram(data, addr, now)
        for data, _ in server.datagrams_to_send(now):
            client.receive_datagram(data, SERVER, now)
        if conn.handshake_complete or conn.close_cause is not None:
            break
    refused = conn.close_cause is not None  # CONNECTION_REFUSED (server busy)
    conn.close(now=now)  # before the client's Finished went out
    for data, _ in client.datagrams_to_send(now):
        server.receive_datagram(data, addr, now)
    server.datagrams_to_send(now)
    return client, refused


def test_a_connection_closed_during_its_handshake_frees_its_slot_at_once(pki: TestPki) -> None:
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file, max_handshakes=8)
    server = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    client_config = Config(cafile=pki.ca_file, server_name="localhost")
    now = 1000.0
    for port in range(5000, 5040):  # five times max_handshakes, within 40 ms
        _, refused = _client_closing_after_handshake(server, client_config, port, now)
        assert not refused, port
        now += 0.001
    sizes = server.state_sizes()
    assert sizes["handshakes"] == 0 and sizes["handshake_deadlines"] == 0
    assert sizes["connections"] == 40  # still draining (RFC 9000 §10.2.2)
    assert all(conn.state is State.DRAINING and not conn.handshake_complete for conn in server.connections)
    server.handle_timer(now + 10.0)  # the draining periods end: everything goes
    server.datagrams_to_send(now + 10.0)
    assert server.state_sizes()["connections"] == 0 and server.state_sizes()["routes"] == 0
