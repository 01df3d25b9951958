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
