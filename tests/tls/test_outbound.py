"""The engine's outgoing handshake bytes (TlsEngine.data_to_send): nothing queued gives an empty list
at once; queued bytes come out per level, in level order, joined, and only once."""

from __future__ import annotations

from rudp.tls import EncryptionLevel, TlsServer
from tests.tls.pki import Pki
from tests.tls.support import SERVER_TP, server_config


def test_outbound_bytes_per_level_in_order_once(pki: Pki) -> None:
    server = TlsServer(server_config(pki), SERVER_TP)
    assert server.data_to_send() == []
    assert server.data_to_send() == []
    server._send(EncryptionLevel.APPLICATION, b"a1", transcript=False)
    server._send(EncryptionLevel.INITIAL, b"i1", transcript=False)
    server._send(EncryptionLevel.HANDSHAKE, b"h1", transcript=False)
    server._send(EncryptionLevel.INITIAL, b"i2", transcript=False)
    assert server.data_to_send() == [
        (EncryptionLevel.INITIAL, b"i1i2"),
        (EncryptionLevel.HANDSHAKE, b"h1"),
        (EncryptionLevel.APPLICATION, b"a1"),
    ]
    assert server.data_to_send() == []
    server._send(EncryptionLevel.HANDSHAKE, b"h2", transcript=False)
    out = server.data_to_send()
    assert out == [(EncryptionLevel.HANDSHAKE, b"h2")] and type(out[0][1]) is bytes
