"""The endpoint's index of peer stateless reset tokens (RFC 9000 §10.3.1) follows each connection's
tokens exactly, across NEW_CONNECTION_ID, a CID rotation with RETIRE_CONNECTION_ID and the connection's
removal, and re-reads a connection's tokens only when they changed (not on every flush)."""

from __future__ import annotations

import os

from rudp.config import Config
from rudp.quic.connection import QuicConnection
from rudp.quic.endpoint import QuicEndpoint
from rudp.testing.certs import TestPki

SERVER = ("10.0.0.2", 4433)
NOW = 100.0


class _Pair:
    """A client endpoint and a server endpoint joined by a zero-delay link."""

    def __init__(self, pki: TestPki) -> None:
        server_config = Config(certfile=pki.cert_file, keyfile=pki.key_file)
        self.server = QuicEndpoint(server_config, tls_config=server_config.tls_config(is_client=False))
        self.client = QuicEndpoint(Config(cafile=pki.ca_file, server_name="localhost"))
        self.client_addr = ("10.0.1.1", 5000)
        self.now = NOW
        self.conn = self.client.connect(SERVER, self.now)

    def exchange(self) -> None:
        for _ in range(100):
            moved = False
            for data, _ in self.client.datagrams_to_send(self.now):
                self.server.receive_datagram(data, self.client_addr, self.now)
                moved = True
            for data, _ in self.server.datagrams_to_send(self.now):
                self.client.receive_datagram(data, SERVER, self.now)
                moved = True
            if not moved:
                return
        raise AssertionError("traffic never settled")

    def run(self, seconds: float) -> None:
        """Advance time by ``seconds`` in 10 ms steps, running both endpoints' timers."""
        end = self.now + seconds
        while self.now < end:
            self.now = round(self.now + 0.01, 6)
            for endpoint in (self.client, self.server):
                deadline = endpoint.next_timer()
                if deadline is not None and deadline <= self.now:
                    endpoint.handle_timer(self.now)
            self.exchange()


def _index_is_exact(endpoint: QuicEndpoint) -> bool:
    expected = {token: conn for conn in endpoint.connections for token in conn.peer_reset_tokens()}
    return endpoint._by_reset_token == expected


def _forged_reset(token: bytes) -> bytes:
    """A datagram no CID routes that ends with ``token``: a stateless reset if the token is in force."""
    return bytes([0x40 | os.urandom(1)[0] & 0x3F]) + os.urandom(30) + token


def _count_reads(conn: QuicConnection) -> list[int]:
    reads = [0]
    original = conn.peer_reset_tokens

    def counted() -> tuple[bytes, ...]:
        reads[0] += 1
        return original()

    conn.peer_reset_tokens = counted  # type: ignore[method-assign]
    return reads


def test_the_reset_token_index_is_exact_and_read_only_on_change(pki: TestPki) -> None:
    pair = _Pair(pki)
    pair.exchange()
    pair.run(0.2)  # the handshake is confirmed, NEW_CONNECTION_ID frames go both ways
    conn = pair.conn
    assert conn.handshake_complete
    (server_conn,) = pair.server.connections
    first_token = conn.peer_reset_tokens()  # the server's, from its transport parameters (§18.2)
    assert len(first_token) == 1
    assert pair.client.state_sizes()["reset_tokens"] == 1 and _index_is_exact(pair.client)
    assert server_conn.peer_reset_tokens() == ()  # RFC 9000 §18.2: clients send no such parameter
    assert pair.server.state_sizes()["reset_tokens"] == 0 and _index_is_exact(pair.server)

    reads = _count_reads(conn)
    for _ in range(50):  # 50 flushes with traffic: the tokens did not change, so they are not read
        conn.ping()
        pair.exchange()
    assert reads[0] == 0

    # The client moves: a fresh server CID (RETIRE_CONNECTION_ID for the old one), a new token.
    conn.migrate(pair.now)
    pair.client_addr = ("10.0.1.2", 6000)
    pair.run(0.5)
    assert reads[0] == 1  # read once, when the token changed
    (new_token,) = conn.peer_reset_tokens()
    assert new_token != first_token[0]
    assert pair.client.state_sizes()["reset_tokens"] == 1 and _index_is_exact(pair.client)
    assert _index_is_exact(pair.server)

    # The retired CID's token no longer ends the connection; the one in force does (§10.3.1).
    pair.client.receive_datagram(_forged_reset(first_token[0]), SERVER, pair.now)
    assert not conn.is_closed and conn.close_cause is None
    pair.client.receive_datagram(_forged_reset(new_token), SERVER, pair.now)
    assert conn.close_cause is not None and conn.close_cause.reason == "stateless reset"

    # Removal: once the client's draining period and the server's idle timeout end, nothing is left.
    pair.run(40.0)
    for endpoint in (pair.client, pair.server):
        assert endpoint.connections == []
        sizes = endpoint.state_sizes()
        assert sizes == dict.fromkeys(sizes, 0), sizes
