"""Failure cases: each must raise TLSAlert with the exact alert, and nothing else may escape."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rudp.errors import TLSAlert, TransportError, TransportErrorCode
from rudp.tls import AlertDescription, EncryptionLevel, TlsClient, TlsServer
from rudp.tls.framing import HandshakeType, frame
from rudp.tls.messages import ClientHello
from tests.tls.pki import Pki, make_pki
from tests.tls.support import Tamper, client_config, make_pair, server_config


def flip_last_byte(side: str, level: EncryptionLevel) -> Tamper:
    def tamper(name: str, lvl: EncryptionLevel, data: bytes) -> bytes:
        if name == side and lvl == level:
            return data[:-1] + bytes((data[-1] ^ 1,))
        return data

    return tamper


def expect_alert(pki: Pki, description: AlertDescription, tamper: Tamper | None = None, **kw: Any) -> None:
    client_kw = {k[7:]: v for k, v in kw.items() if k.startswith("client_")}
    server_kw = {k[7:]: v for k, v in kw.items() if k.startswith("server_")}
    pair = make_pair(client_config(pki, **client_kw), server_config(pki, **server_kw))
    with pytest.raises(TLSAlert) as exc:
        pair.run(tamper)
    assert exc.value.alert == description
    assert exc.value.code == 0x100 + description


def test_tampered_client_finished(pki: Pki) -> None:
    expect_alert(pki, AlertDescription.decrypt_error, flip_last_byte("client", EncryptionLevel.HANDSHAKE))


def test_tampered_server_finished(pki: Pki) -> None:
    expect_alert(pki, AlertDescription.decrypt_error, flip_last_byte("server", EncryptionLevel.HANDSHAKE))


def test_alpn_mismatch(pki: Pki) -> None:
    expect_alert(
        pki,
        AlertDescription.no_application_protocol,
        client_alpn_protocols=["h3"],
        server_alpn_protocols=["x"],
    )


def test_no_common_cipher_suite(pki: Pki) -> None:
    from rudp.crypto.suites import CipherSuite

    expect_alert(
        pki,
        AlertDescription.handshake_failure,
        client_cipher_suites=[CipherSuite.AES_128_GCM_SHA256],
        server_cipher_suites=[CipherSuite.CHACHA20_POLY1305_SHA256],
    )


def test_no_common_signature_algorithm(pki: Pki) -> None:
    from rudp.tls import SignatureScheme

    expect_alert(
        pki, AlertDescription.handshake_failure, client_signature_algorithms=[SignatureScheme.ed25519]
    )


def _client_hello(pki: Pki, **changes: object) -> bytes:
    client = TlsClient(client_config(pki), b"tp")
    client.start(0.0)
    raw = client.data_to_send()[0][1]
    hello = ClientHello.decode(raw[4:])
    for key, value in changes.items():
        setattr(hello, key, value)
    return hello.encode()


def _server(pki: Pki) -> TlsServer:
    return TlsServer(server_config(pki), b"server tp")


def feed_server(pki: Pki, data: bytes, level: EncryptionLevel = EncryptionLevel.INITIAL) -> int:
    with pytest.raises(TLSAlert) as exc:
        _server(pki).receive(level, data, 0.0)
    return exc.value.alert


def test_missing_transport_parameters(pki: Pki) -> None:
    assert (
        feed_server(pki, _client_hello(pki, transport_parameters=None)) == AlertDescription.missing_extension
    )


def test_server_missing_transport_parameters(pki: Pki) -> None:
    """EncryptedExtensions without quic_transport_parameters: the client sends missing_extension."""
    from rudp.tls.messages import EncryptedExtensions

    def strip(name: str, level: EncryptionLevel, data: bytes) -> bytes:
        if name == "server" and level == EncryptionLevel.HANDSHAKE:
            ee_len = int.from_bytes(data[1:4], "big")
            ee = EncryptedExtensions.decode(data[4 : 4 + ee_len])
            ee.transport_parameters = None
            return ee.encode() + data[4 + ee_len :]
        return data

    expect_alert(pki, AlertDescription.missing_extension, strip)


def test_no_tls13(pki: Pki) -> None:
    assert (
        feed_server(pki, _client_hello(pki, supported_versions=[0x0303])) == AlertDescription.protocol_version
    )


def test_no_alpn_offered(pki: Pki) -> None:
    alert = feed_server(pki, _client_hello(pki, alpn_protocols=None))
    assert alert == AlertDescription.no_application_protocol


def test_invalid_key_share(pki: Pki) -> None:
    alert = feed_server(pki, _client_hello(pki, key_shares=[(0x001D, b"\x00" * 32)]))
    assert alert == AlertDescription.illegal_parameter


def test_duplicate_extension(pki: Pki) -> None:
    raw = _client_hello(pki, other_extensions=[(0x1234, b""), (0x1234, b"")])
    assert feed_server(pki, raw) == AlertDescription.illegal_parameter


def test_psk_not_last(pki: Pki) -> None:
    hello = ClientHello.decode(_client_hello(pki)[4:])
    raw = hello.encode()
    # append an unknown extension after a fake pre_shared_key
    from rudp.tls.extensions import OfferedPsks, encode_offered_psks

    psk = encode_offered_psks(OfferedPsks([(b"id", 0)], [bytes(32)]))
    hello.other_extensions = [(41, psk), (0x1234, b"")]
    raw = hello.encode()
    assert feed_server(pki, raw) == AlertDescription.illegal_parameter


@pytest.mark.parametrize("cut", [1, 2, 5, 40, 80])
def test_truncated_client_hello(pki: Pki, cut: int) -> None:
    raw = _client_hello(pki)
    body = raw[4:-cut]
    assert feed_server(pki, frame(HandshakeType.client_hello, body)) == AlertDescription.decode_error


def test_trailing_bytes(pki: Pki) -> None:
    raw = _client_hello(pki)
    assert (
        feed_server(pki, frame(HandshakeType.client_hello, raw[4:] + b"\x00"))
        == AlertDescription.decode_error
    )


def test_unexpected_message_order(pki: Pki) -> None:
    assert feed_server(pki, frame(HandshakeType.finished, bytes(32))) == AlertDescription.unexpected_message
    raw = _client_hello(pki)
    # a ClientHello at the Handshake level
    assert feed_server(pki, raw, EncryptionLevel.HANDSHAKE) == AlertDescription.unexpected_message
    # two ClientHellos
    assert feed_server(pki, raw + raw) == AlertDescription.unexpected_message
    # a client receiving Finished before ServerHello
    client = TlsClient(client_config(pki), b"tp")
    client.start(0.0)
    with pytest.raises(TLSAlert) as exc:
        client.receive(EncryptionLevel.INITIAL, frame(HandshakeType.finished, bytes(32)), 0.0)
    assert exc.value.alert == AlertDescription.unexpected_message


def test_end_of_early_data_and_key_update_are_unexpected(pki: Pki) -> None:
    pair = make_pair(client_config(pki), server_config(pki))
    pair.run()
    client = pair.client.engine
    with pytest.raises(TLSAlert) as exc:
        client.receive(EncryptionLevel.APPLICATION, frame(HandshakeType.key_update, b"\x00"), 0.0)
    assert exc.value.alert == AlertDescription.unexpected_message
    with pytest.raises(TLSAlert):  # the failure is sticky
        client.receive(EncryptionLevel.APPLICATION, b"", 0.0)


def test_oversized_message(pki: Pki) -> None:
    with pytest.raises(TransportError) as exc:
        _server(pki).receive(EncryptionLevel.INITIAL, b"\x01\xff\xff\xff", 0.0)
    assert exc.value.code == TransportErrorCode.CRYPTO_BUFFER_EXCEEDED


_FUZZ_PKI = make_pki()
_VALID_HELLO = _client_hello(_FUZZ_PKI)
_ALLOWED = {
    AlertDescription.decode_error,
    AlertDescription.unexpected_message,
    AlertDescription.illegal_parameter,
    AlertDescription.protocol_version,
    AlertDescription.missing_extension,
    AlertDescription.handshake_failure,
    AlertDescription.no_application_protocol,
    AlertDescription.decrypt_error,
}


def _server_survives(data: bytes) -> None:
    server = TlsServer(server_config(_FUZZ_PKI), b"tp")
    try:
        server.receive(EncryptionLevel.INITIAL, data, 0.0)
    except TLSAlert as exc:
        assert exc.alert in _ALLOWED, exc
    except TransportError as exc:
        assert exc.code == TransportErrorCode.CRYPTO_BUFFER_EXCEEDED


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    _server_survives(data)
    _server_survives(b"\x01" + len(data).to_bytes(3, "big") + data)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(4, len(_VALID_HELLO) - 1), st.integers(1, 255)), min_size=1, max_size=4)
)
def test_fuzz_mutated_client_hello(mutations: list[tuple[int, int]]) -> None:
    data = bytearray(_VALID_HELLO)
    for index, xor in mutations:
        data[index] ^= xor
    _server_survives(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_client_receiving_garbage(data: bytes) -> None:
    client = TlsClient(client_config(_FUZZ_PKI), b"tp")
    client.start(0.0)
    for payload in (data, b"\x02" + len(data).to_bytes(3, "big") + data):
        try:
            client.receive(EncryptionLevel.INITIAL, payload, 0.0)
        except TLSAlert as exc:
            assert exc.alert in _ALLOWED | {AlertDescription.unsupported_extension}, exc
            return
        except TransportError as exc:
            assert exc.code == TransportErrorCode.CRYPTO_BUFFER_EXCEEDED
            return


def test_stray_bytes_at_a_level_no_longer_read(pki: Pki) -> None:
    """RFC 8446 §5.1: a partial message left at Initial once the server reads only Handshake ends it;
    a partial ClientHello while Initial is still read waits for the rest."""
    raw = _client_hello(pki)
    server = _server(pki)
    server.receive(EncryptionLevel.INITIAL, raw[:10], 0.0)  # waits for the rest
    with pytest.raises(TLSAlert, match="stray data at level INITIAL") as exc:
        server.receive(EncryptionLevel.INITIAL, raw[10:] + raw[:10], 0.0)
    assert exc.value.alert == AlertDescription.unexpected_message
