"""Full handshakes between the client and server engines, in memory."""

from __future__ import annotations

import pytest

from rudp.crypto.suites import CipherSuite
from rudp.tls import Direction, EncryptionLevel, KeyEvent, NamedGroup, SignatureScheme
from tests.tls.pki import Pki
from tests.tls.support import CLIENT_TP, SERVER_TP, Pair, client_config, make_pair, server_config


def assert_keys_match(pair: Pair) -> None:
    client = {(k.level, k.direction): k for k in pair.client.keys}
    server = {(k.level, k.direction): k for k in pair.server.keys}
    for level in (EncryptionLevel.HANDSHAKE, EncryptionLevel.APPLICATION):
        c_write, s_read = client[level, Direction.WRITE], server[level, Direction.READ]
        s_write, c_read = server[level, Direction.WRITE], client[level, Direction.READ]
        assert c_write.secret == s_read.secret
        assert s_write.secret == c_read.secret
        assert c_write.secret != s_write.secret
        assert {c_write.cipher_suite, s_read.cipher_suite, s_write.cipher_suite} == {c_read.cipher_suite}


@pytest.mark.parametrize("suite", list(CipherSuite))
def test_each_cipher_suite(pki: Pki, suite: CipherSuite) -> None:
    pair = make_pair(client_config(pki, cipher_suites=[suite]), server_config(pki))
    pair.run()
    client, server = pair.client.engine, pair.server.engine
    assert client.handshake_complete and server.handshake_complete
    assert client.cipher_suite == server.cipher_suite == suite
    assert_keys_match(pair)
    assert {k.cipher_suite for k in pair.client.keys} == {suite}


@pytest.mark.parametrize("group", list(NamedGroup))
def test_each_group(pki: Pki, group: NamedGroup) -> None:
    pair = make_pair(client_config(pki, groups=[group]), server_config(pki, groups=[group]))
    pair.run()
    assert pair.client.engine.handshake_complete and pair.server.engine.handshake_complete
    assert_keys_match(pair)


def test_alpn_and_transport_parameters(pki: Pki) -> None:
    pair = make_pair(client_config(pki), server_config(pki))
    pair.run()
    client, server = pair.client.engine, pair.server.engine
    # server preference order wins: the server lists h3 first
    assert client.alpn_protocol == server.alpn_protocol == "h3"
    assert client.peer_transport_parameters == SERVER_TP
    assert server.peer_transport_parameters == CLIENT_TP
    assert server.server_name == "localhost"
    assert client.peer_certificate is not None
    assert client.peer_certificate.public_key() == pki.ec256.cert.public_key()
    assert not client.session_resumed and not server.early_data_accepted


def test_key_event_order(pki: Pki) -> None:
    pair = make_pair(client_config(pki), server_config(pki))
    pair.run()
    order = [(k.level, k.direction) for k in pair.server.keys]
    assert order == [
        (EncryptionLevel.HANDSHAKE, Direction.WRITE),
        (EncryptionLevel.HANDSHAKE, Direction.READ),
        (EncryptionLevel.APPLICATION, Direction.WRITE),
        (EncryptionLevel.APPLICATION, Direction.READ),
    ]
    # the server's events are built in C (tuple.__new__): the same values as KeyEvent's own constructor
    for k in pair.server.keys:
        general = KeyEvent(k[0], k[1], k[2], k[3])
        assert type(k) is KeyEvent and k == general and k._asdict() == general._asdict()
        assert (k.cipher_suite, k.secret) == (CipherSuite.AES_128_GCM_SHA256, general.secret)
    order = [(k.level, k.direction) for k in pair.client.keys]
    assert order == [
        (EncryptionLevel.HANDSHAKE, Direction.READ),
        (EncryptionLevel.HANDSHAKE, Direction.WRITE),
        (EncryptionLevel.APPLICATION, Direction.READ),
        (EncryptionLevel.APPLICATION, Direction.WRITE),
    ]
    # what each side sent, per level: no ChangeCipherSpec, no EndOfEarlyData
    assert [level for level, _ in pair.client.sent] == [EncryptionLevel.INITIAL, EncryptionLevel.HANDSHAKE]
    assert [level for level, _ in pair.server.sent] == [
        EncryptionLevel.INITIAL,
        EncryptionLevel.HANDSHAKE,
        EncryptionLevel.APPLICATION,  # the NewSessionTicket
    ]


@pytest.mark.parametrize(
    ("leaf_name", "scheme"),
    [
        ("ec256", SignatureScheme.ecdsa_secp256r1_sha256),
        ("ec384", SignatureScheme.ecdsa_secp384r1_sha384),
        ("rsa", SignatureScheme.rsa_pss_rsae_sha256),
        ("ed25519", SignatureScheme.ed25519),
    ],
)
def test_each_certificate_type(pki: Pki, leaf_name: str, scheme: SignatureScheme) -> None:
    leaf = getattr(pki, leaf_name)
    pair = make_pair(client_config(pki), server_config(pki, leaf=leaf))
    pair.run()
    assert pair.client.engine.handshake_complete
    assert_keys_match(pair)
    handshake = b"".join(data for level, data in pair.server.sent if level == EncryptionLevel.HANDSHAKE)
    assert int(scheme).to_bytes(2, "big") in handshake


@pytest.mark.parametrize(
    "scheme",
    [
        SignatureScheme.rsa_pss_rsae_sha256,
        SignatureScheme.rsa_pss_rsae_sha384,
        SignatureScheme.rsa_pss_rsae_sha512,
    ],
)
def test_each_rsa_pss_hash(pki: Pki, scheme: SignatureScheme) -> None:
    pair = make_pair(client_config(pki, signature_algorithms=[scheme]), server_config(pki, leaf=pki.rsa))
    pair.run()
    assert pair.client.engine.handshake_complete and pair.server.engine.handshake_complete


def test_byte_by_byte_delivery(pki: Pki) -> None:
    pair = make_pair(client_config(pki), server_config(pki))
    client, server = pair.client, pair.server
    client.engine.start(0.0)
    for _ in range(4):
        for src, dst in ((client, server), (server, client)):
            for level, data in src.collect():
                for i in range(len(data)):
                    dst.engine.receive(level, data[i : i + 1], 0.0)
    assert client.engine.handshake_complete and server.engine.handshake_complete
    assert_keys_match(pair)
