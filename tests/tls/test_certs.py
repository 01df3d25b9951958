"""PEM loading, trust stores and signature helpers."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from rudp.errors import ConfigError, TLSAlert
from rudp.tls import AlertDescription, SignatureScheme, TlsConfig
from rudp.tls.certs import (
    certificate_verify_content,
    load_certificate_chain,
    load_private_key,
    load_trust_store,
    parse_certificates,
    sign,
    system_ca_bundle,
    verify_signature,
)
from tests.tls.pki import Pki


def test_load_chain_and_key_from_files(pki: Pki, tmp_path: Path) -> None:
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(pki.rsa.cert_pem + pki.ca.cert_pem)
    key_path.write_bytes(pki.rsa.key_pem)
    chain = load_certificate_chain(str(cert_path))
    assert [c.subject for c in chain] == [pki.rsa.cert.subject, pki.ca.cert.subject]
    assert load_private_key(key_path).public_key() == pki.rsa.key.public_key()


def test_loading_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_certificate_chain(str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError):
        load_certificate_chain(b"not a pem")
    with pytest.raises(ConfigError):
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_capath_directory(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "a.pem").write_bytes(pki.ca.cert_pem)
    (tmp_path / "b.pem").write_bytes(pki.other_ca.cert_pem)
    load_trust_store(capath=str(tmp_path))
    with pytest.raises(ConfigError):
        load_trust_store(cadata=b"")


@pytest.mark.skipif(system_ca_bundle() is None, reason="no system CA bundle on this machine")
def test_system_bundle_loads_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_trust_store()


def test_server_config_validation(pki: Pki) -> None:
    with pytest.raises(ConfigError):
        TlsConfig(is_client=False, alpn_protocols=["h3"])  # no certificate
    with pytest.raises(ConfigError):
        TlsConfig(is_client=True, alpn_protocols=[])  # QUIC needs ALPN
    with pytest.raises(ConfigError):
        TlsConfig(
            is_client=False,
            alpn_protocols=["h3"],
            certfile=pki.ed25519.cert_pem,
            keyfile=pki.ed25519.key_pem,
            signature_algorithms=[SignatureScheme.ecdsa_secp256r1_sha256],
        )


def test_signature_scheme_must_fit_the_key(pki: Pki) -> None:
    content = certificate_verify_content(bytes(32), server=True)
    assert content.startswith(b" " * 64 + b"TLS 1.3, server CertificateVerify\x00")
    signature = sign(pki.ec256.key, SignatureScheme.ecdsa_secp256r1_sha256, content)
    public = pki.ec256.cert.public_key()
    allowed = [SignatureScheme.ecdsa_secp256r1_sha256, SignatureScheme.ed25519]
    verify_signature(public, SignatureScheme.ecdsa_secp256r1_sha256, signature, content, allowed)
    with pytest.raises(TLSAlert) as exc:
        verify_signature(public, SignatureScheme.ed25519, signature, content, allowed)
    assert exc.value.alert == AlertDescription.illegal_parameter
    with pytest.raises(TLSAlert) as exc:
        verify_signature(public, SignatureScheme.ecdsa_secp256r1_sha256, signature, content + b"x", allowed)
    assert exc.value.alert == AlertDescription.decrypt_error
    with pytest.raises(TLSAlert) as exc:
        parse_certificates([b"\x30\x03garbage"])
    assert exc.value.alert == AlertDescription.bad_certificate
