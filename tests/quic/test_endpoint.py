"""QuicEndpoint: many connections behind one socket; only connections that changed are flushed, and
timers come from a heap (one datagram costs O(log n), not O(n))."""

from __future__ import annotations

from rudp.config import Config
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.testing.certs import TestPki

SERVER = ("10.0.0.2", 4433)


def _deliver_all(server: QuicEndpoint, clients: dict[tuple[str, int], QuicConnection], now: float) -> None:
    """Shuttle datagrams with zero delay until nobody has anything to send."""
    for _ in range(200):
        moved = False
        for addr, client in clients.items():
            for data, _ in client.datagrams_to_send(now):
                server.receive_datagram(data, addr, now)
                moved = True
        for data, addr in server.datagrams_to_send(now):
            clients[addr].receive_datagram(data, SERVER, now)
            moved = True
        if not moved:
            return
    raise AssertionError("traffic never settled")


def test_only_changed_connections_are_flushed(pki: TestPki) -> None:
    server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file)
    server = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
    client_config = Config(cafile=pki.ca_file, server_name="localhost")
    now = 100.0
    clients = {
        (f"10.0.1.{i}", 5000): QuicConnection.client(client_config, server_address=SERVER, now=now)
        for i in range(20)
    }
    _deliver_all(server, clients, now)
    assert len(server.connections) == 20
    assert all(client.handshake_complete for client in clients.values())
    server.datagrams_to_send(now)
    assert server.flushed == []  # nothing changed: nothing is visited

    addr, client = next(iter(clients.items()))
    stream_id = client.open_stream()
    client.send_stream(stream_id, b"ping", fin=True)
    for data, _ in client.datagrams_to_send(now):
        server.receive_datagram(data, addr, now)
    server.datagrams_to_send(now)
    assert len(server.flushed) == 1 and server.flushed[0].peer_address == addr

    # A command on one server connection flushes that connection only; a read that returns no
    # flow-control credit worth a datagram is no such command (issue 13).
    target = server.flushed[0]
    assert target.read_stream(stream_id) == b"ping"
    assert not server.output_pending
    target.send_stream(stream_id, b"pong", fin=True)
    assert server.output_pending
    server.datagrams_to_send(now)
    assert server.flushed == [target]

    # Timers: the earliest deadline of all connections, and only due connections are run.
    deadline = server.next_timer()
    assert deadline is not None
    assert deadline == min(d for d in (c.next_timer() for c in server.connections) if d is not None)
    server.handle_timer(deadline)
    server.datagrams_to_send(deadline)
    assert 1 <= len(server.flushed) < 20
