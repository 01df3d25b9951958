"""Handshakes against aioquic's TLS engine (a dev dependency), in memory, both directions.

Only aioquic's public ``aioquic.tls.Context`` API is used, to check that this engine speaks the same
TLS 1.3 as an independent implementation: same transcript, same secrets.
"""

from __future__ import annotations

from typing import Any

import pytest

from rudp.crypto.suites import CipherSuite
from rudp.tls import Direction, EncryptionLevel, TlsClient, TlsServer
from tests.tls.pki import Pki
from tests.tls.support import CLIENT_TP, SERVER_TP, client_config, server_config

tls = pytest.importorskip("aioquic.tls")
buffer = pytest.importorskip("aioquic.buffer")

QUIC_TP = 0x39


def _context(is_client: bool, **kwargs: Any) -> tuple[Any, dict[tuple[int, str], bytes]]:
    ctx = tls.Context(is_client=is_client, alpn_protocols=["hq-interop"], **kwargs)
    secrets: dict[tuple[int, str], bytes] = {}

    def on_key(direction: Any, epoch: Any, cipher_suite: Any, secret: bytes) -> None:
        name = "read" if direction == tls.Direction.DECRYPT else "write"
        secrets[epoch.value, name] = secret

    ctx.update_traffic_key_cb = on_key
    return ctx, secrets


def _drain(ctx: Any, data: bytes) -> list[tuple[int, bytes]]:
    buffers = {epoch: buffer.Buffer(capacity=65536) for epoch in tls.Epoch}
    ctx.handle_message(data, buffers)
    return [(epoch.value, buf.data) for epoch, buf in buffers.items() if buf.data]


@pytest.mark.parametrize("suite", list(CipherSuite))
def test_rudp_client_aioquic_server(pki: Pki, suite: CipherSuite) -> None:
    server, server_secrets = _context(False)
    server.certificate = pki.ec256.cert
    server.certificate_private_key = pki.ec256.key
    server.handshake_extensions = [(QUIC_TP, SERVER_TP)]
    client = TlsClient(client_config(pki, cipher_suites=[suite], alpn_protocols=["hq-interop"]), CLIENT_TP)
    client.start(0.0)
    pending = client.data_to_send()
    for _ in range(5):
        replies: list[tuple[int, bytes]] = []
        for _level, data in pending:
            replies += _drain(server, data)
        for epoch, data in replies:
            client.receive(EncryptionLevel(epoch), data, 0.0)
        pending = client.data_to_send()
        if not pending:
            break
    assert client.handshake_complete
    assert client.alpn_protocol == "hq-interop"
    assert client.peer_transport_parameters == SERVER_TP
    assert dict(server.received_extensions)[QUIC_TP] == CLIENT_TP
    mine = {(int(k.level), str(k.direction)): k.secret for k in client.key_events()}
    for (epoch, direction), secret in mine.items():
        other = "write" if direction == "read" else "read"
        assert server_secrets[epoch, other] == secret


@pytest.mark.parametrize("suite", list(CipherSuite))
def test_aioquic_client_rudp_server(pki: Pki, suite: CipherSuite) -> None:
    client, client_secrets = _context(
        True, cadata=pki.ca.cert_pem, server_name="localhost", cipher_suites=[tls.CipherSuite(int(suite))]
    )
    client.handshake_extensions = [(QUIC_TP, CLIENT_TP)]
    server = TlsServer(server_config(pki, alpn_protocols=["hq-interop"]), SERVER_TP)
    pending = _drain(client, b"")
    for _ in range(5):
        for epoch, data in pending:
            server.receive(EncryptionLevel(epoch), data, 0.0)
        pending = []
        for _level, data in server.data_to_send():
            pending += _drain(client, data)
        if not pending:
            break
    assert server.handshake_complete
    assert server.peer_transport_parameters == CLIENT_TP
    mine = {(int(k.level), str(k.direction)): k.secret for k in server.key_events()}
    assert len(mine) == 4
    for (epoch, direction), secret in mine.items():
        other = "write" if direction == Direction.READ else "read"
        assert client_secrets[epoch, other] == secret


def _shuttle_aioquic_client(client: Any, server: TlsServer) -> None:
    pending = _drain(client, b"")
    for _ in range(5):
        for epoch, data in pending:
            server.receive(EncryptionLevel(epoch), data, 0.0)
        pending = []
        for _level, data in server.data_to_send():
            pending += _drain(client, data)
        if not pending:
            break


def test_aioquic_client_resumes_with_rudp_server(pki: Pki) -> None:
    """aioquic computes the PSK binder and 0-RTT secret; this server must agree."""
    server_cfg = server_config(pki, alpn_protocols=["hq-interop"], early_data=True)
    tickets: list[Any] = []
    client, _ = _context(True, cadata=pki.ca.cert_pem, server_name="localhost")
    client.handshake_extensions = [(QUIC_TP, CLIENT_TP)]
    client.new_session_ticket_cb = tickets.append
    _shuttle_aioquic_client(client, TlsServer(server_cfg, SERVER_TP))
    assert len(tickets) == 1 and tickets[0].max_early_data_size == 0xFFFFFFFF

    client, client_secrets = _context(True, cadata=pki.ca.cert_pem, server_name="localhost")
    client.handshake_extensions = [(QUIC_TP, CLIENT_TP)]
    client.session_ticket = tickets[0]
    server = TlsServer(server_cfg, SERVER_TP)
    _shuttle_aioquic_client(client, server)
    assert server.handshake_complete and server.session_resumed and server.early_data_accepted
    assert client.session_resumed and client.early_data_accepted
    early = [k for k in server.key_events() if k.level == EncryptionLevel.EARLY_DATA]
    assert early[0].secret == client_secrets[tls.Epoch.ZERO_RTT.value, "write"]


def test_rudp_client_resumes_with_aioquic_server(pki: Pki) -> None:
    from rudp.tls import TicketStore

    stored: dict[bytes, Any] = {}

    def aioquic_server() -> Any:
        server, _ = _context(False, max_early_data=0xFFFFFFFF)
        server.certificate = pki.ec256.cert
        server.certificate_private_key = pki.ec256.key
        server.handshake_extensions = [(QUIC_TP, SERVER_TP)]
        server.new_session_ticket_cb = lambda ticket: stored.__setitem__(ticket.ticket, ticket)
        server.get_session_ticket_cb = stored.get
        return server

    def run(client: TlsClient, server: Any) -> None:
        client.start(0.0)
        pending = client.data_to_send()
        for _ in range(5):
            replies: list[tuple[int, bytes]] = []
            for _level, data in pending:
                replies += _drain(server, data)
            for epoch, data in replies:
                client.receive(EncryptionLevel(epoch), data, 0.0)
            pending = client.data_to_send()
            if not pending:
                break

    store = TicketStore()
    cfg = client_config(pki, alpn_protocols=["hq-interop"], ticket_store=store, early_data=True)
    first = TlsClient(cfg, CLIENT_TP)
    server = aioquic_server()
    run(first, server)
    # aioquic sends its NewSessionTicket with the server's last flight
    assert first.handshake_complete and len(store) == 1
    second = TlsClient(cfg, CLIENT_TP)
    server = aioquic_server()
    run(second, server)
    assert second.handshake_complete and second.session_resumed and second.early_data_accepted
    assert server.session_resumed
