"""Client certificates (mutual TLS), legacy_session_id and GREASE tolerance."""

from __future__ import annotations

from typing import Any

import pytest

from rudp.errors import TLSAlert, TransportError, TransportErrorCode
from rudp.tls import AlertDescription, EncryptionLevel, TlsClient, TlsServer
from rudp.tls.messages import ClientHello
from tests.tls.pki import Issued, Pki
from tests.tls.support import client_config, make_pair, server_config


def mutual(pki: Pki, client_leaf: Issued | None, mode: str) -> tuple[TlsClient, TlsServer]:
    extra: dict[str, Any] = (
        {} if client_leaf is None else {"certfile": client_leaf.cert_pem, "keyfile": client_leaf.key_pem}
    )
    pair = make_pair(
        client_config(pki, **extra), server_config(pki, client_auth=mode, cadata=pki.ca.cert_pem)
    )
    pair.run()
    client, server = pair.client.engine, pair.server.engine
    assert isinstance(client, TlsClient) and isinstance(server, TlsServer)
    return client, server


def test_client_certificate_required_and_sent(pki: Pki) -> None:
    client, server = mutual(pki, pki.client, "required")
    assert client.handshake_complete and server.handshake_complete
    assert server.peer_certificate is not None
    assert server.peer_certificate.public_key() == pki.client.cert.public_key()


def test_client_certificate_required_but_missing(pki: Pki) -> None:
    with pytest.raises(TLSAlert) as exc:
        mutual(pki, None, "required")
    assert exc.value.alert == AlertDescription.certificate_required


def test_client_certificate_optional(pki: Pki) -> None:
    _client, server = mutual(pki, None, "optional")
    assert server.handshake_complete and server.peer_certificate is None


def test_client_certificate_untrusted(pki: Pki) -> None:
    with pytest.raises(TLSAlert) as exc:
        mutual(pki, pki.untrusted_client, "optional")
    assert exc.value.alert == AlertDescription.unknown_ca


def test_resumption_skips_client_certificate(pki: Pki) -> None:
    from rudp.tls import TicketStore

    store = TicketStore()
    server_cfg = server_config(pki, client_auth="required", cadata=pki.ca.cert_pem)
    leaf: dict[str, Any] = {"certfile": pki.client.cert_pem, "keyfile": pki.client.key_pem}
    make_pair(client_config(pki, ticket_store=store, **leaf), server_cfg).run()
    pair = make_pair(client_config(pki, ticket_store=store, **leaf), server_cfg, seed=9)
    pair.run()
    assert pair.server.engine.session_resumed and pair.server.engine.handshake_complete


def test_non_empty_legacy_session_id(pki: Pki) -> None:
    client = TlsClient(client_config(pki), b"tp")
    client.start(0.0)
    hello = ClientHello.decode(client.data_to_send()[0][1][4:])
    hello.legacy_session_id = bytes(32)
    with pytest.raises(TransportError) as exc:
        TlsServer(server_config(pki), b"tp").receive(EncryptionLevel.INITIAL, hello.encode(), 0.0)
    assert exc.value.code == TransportErrorCode.PROTOCOL_VIOLATION


def test_grease_values_are_ignored(pki: Pki) -> None:
    client = TlsClient(client_config(pki), b"tp")
    client.start(0.0)
    hello = ClientHello.decode(client.data_to_send()[0][1][4:])
    hello.cipher_suites.insert(0, 0x0A0A)
    assert hello.supported_groups is not None and hello.key_shares is not None
    hello.supported_groups.insert(0, 0x1A1A)
    hello.key_shares.insert(0, (0x1A1A, b"\x00"))
    hello.other_extensions.append((0x2A2A, b""))
    server = TlsServer(server_config(pki), b"tp")
    server.receive(EncryptionLevel.INITIAL, hello.encode(), 0.0)
    assert server.cipher_suite is not None
