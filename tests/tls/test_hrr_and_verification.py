"""HelloRetryRequest and server certificate verification."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from rudp.errors import TLSAlert
from rudp.tls import AlertDescription, EncryptionLevel, NamedGroup, TlsClient
from rudp.tls.messages import HRR_RANDOM
from tests.tls.pki import Pki
from tests.tls.support import Clock, client_config, make_pair, server_config


def test_hello_retry_request(pki: Pki) -> None:
    client_cfg = client_config(pki, groups=[NamedGroup.x25519, NamedGroup.secp256r1])
    pair = make_pair(client_cfg, server_config(pki, groups=[NamedGroup.secp256r1]))
    pair.run()
    assert pair.client.engine.handshake_complete and pair.server.engine.handshake_complete
    initial = [data for level, data in pair.server.sent if level == EncryptionLevel.INITIAL]
    assert HRR_RANDOM in initial[0]  # the HelloRetryRequest
    client_initial = [data for level, data in pair.client.sent if level == EncryptionLevel.INITIAL]
    assert len(client_initial) == 2  # ClientHello1 and ClientHello2
    assert b"\x00\x2c" in client_initial[1]  # ClientHello2 echoes the cookie extension


def test_hello_retry_request_other_direction(pki: Pki) -> None:
    client_cfg = client_config(pki, groups=[NamedGroup.secp384r1, NamedGroup.x25519])
    pair = make_pair(client_cfg, server_config(pki, groups=[NamedGroup.x25519]))
    pair.run()
    assert pair.client.engine.handshake_complete and pair.server.engine.handshake_complete


def test_server_prefers_existing_share_over_retry(pki: Pki) -> None:
    client_cfg = client_config(pki, groups=[NamedGroup.x25519, NamedGroup.secp256r1])
    pair = make_pair(client_cfg, server_config(pki, groups=[NamedGroup.secp256r1, NamedGroup.x25519]))
    pair.run()
    assert len([1 for level, _ in pair.client.sent if level == EncryptionLevel.INITIAL]) == 1


def test_second_hello_retry_request_is_an_alert(pki: Pki) -> None:
    client_cfg = client_config(pki, groups=[NamedGroup.x25519, NamedGroup.secp256r1])
    pair = make_pair(client_cfg, server_config(pki, groups=[NamedGroup.secp256r1]))
    client = pair.client.engine
    client.start(0.0)
    pair.server.engine.receive(EncryptionLevel.INITIAL, client.data_to_send()[0][1], 0.0)
    hrr = pair.server.engine.data_to_send()[0][1]
    client.receive(EncryptionLevel.INITIAL, hrr, 0.0)
    with pytest.raises(TLSAlert) as exc:
        client.receive(EncryptionLevel.INITIAL, hrr, 0.0)
    assert exc.value.alert == AlertDescription.unexpected_message


def test_client_hello2_without_cookie_is_refused(pki: Pki) -> None:
    client_cfg = client_config(pki, groups=[NamedGroup.x25519, NamedGroup.secp256r1])
    pair = make_pair(client_cfg, server_config(pki, groups=[NamedGroup.secp256r1]))
    pair.client.engine.start(0.0)
    server = pair.server.engine
    server.receive(EncryptionLevel.INITIAL, pair.client.engine.data_to_send()[0][1], 0.0)
    # a ClientHello2 that ignores the retry (fresh client, same groups, no cookie)
    other = TlsClient(client_cfg, b"tp")
    other.start(0.0)
    with pytest.raises(TLSAlert) as exc:
        server.receive(EncryptionLevel.INITIAL, other.data_to_send()[0][1], 0.0)
    assert exc.value.alert == AlertDescription.illegal_parameter


def test_no_common_group(pki: Pki) -> None:
    pair = make_pair(
        client_config(pki, groups=[NamedGroup.x25519]), server_config(pki, groups=[NamedGroup.secp256r1])
    )
    with pytest.raises(TLSAlert) as exc:
        pair.run()
    assert exc.value.alert == AlertDescription.handshake_failure


# -- certificate verification ------------------------------------------------------------------------


def run_alert(pair_args: tuple[object, object]) -> int:
    client_cfg, server_cfg = pair_args
    pair = make_pair(client_cfg, server_cfg)  # type: ignore[arg-type]
    with pytest.raises(TLSAlert) as exc:
        pair.run()
    return exc.value.alert


def test_wrong_hostname(pki: Pki) -> None:
    alert = run_alert((client_config(pki, server_name="example.com"), server_config(pki)))
    assert alert == AlertDescription.bad_certificate


def test_ip_address_name(pki: Pki) -> None:
    pair = make_pair(client_config(pki, server_name="127.0.0.1"), server_config(pki))
    pair.run()
    assert pair.client.engine.handshake_complete
    assert pair.server.engine.server_name is None  # no SNI for IP literals (RFC 6066 §3)
    alert = run_alert((client_config(pki, server_name="127.0.0.2"), server_config(pki)))
    assert alert == AlertDescription.bad_certificate


def test_untrusted_ca(pki: Pki) -> None:
    alert = run_alert((client_config(pki), server_config(pki, leaf=pki.untrusted)))
    assert alert == AlertDescription.unknown_ca


def test_expired_certificate(pki: Pki) -> None:
    alert = run_alert((client_config(pki), server_config(pki, leaf=pki.expired)))
    assert alert == AlertDescription.certificate_expired


def test_client_clock_after_expiry(pki: Pki) -> None:
    late = Clock(pki.ec256.cert.not_valid_after_utc.timestamp() + 60)
    alert = run_alert((client_config(pki, clock=late), server_config(pki)))
    assert alert == AlertDescription.certificate_expired


def test_verify_off(pki: Pki) -> None:
    pair = make_pair(
        client_config(pki, verify_peer=False, server_name="wrong.example", cadata=None),
        server_config(pki, leaf=pki.untrusted),
    )
    pair.run()
    assert pair.client.engine.handshake_complete


def test_cafile_path(pki: Pki, tmp_path: Path) -> None:
    path = tmp_path / "ca.pem"
    path.write_bytes(pki.ca.cert_pem)
    pair = make_pair(client_config(pki, cadata=None, cafile=str(path)), server_config(pki))
    pair.run()
    assert pair.client.engine.handshake_complete


def test_bad_certificate_verify_signature(pki: Pki) -> None:
    """A server whose key does not match its certificate fails CertificateVerify: decrypt_error."""
    server_cfg = server_config(pki)
    server_cfg.private_key = ec.generate_private_key(ec.SECP256R1())
    alert = run_alert((client_config(pki), server_cfg))
    assert alert == AlertDescription.decrypt_error
