"""The prepared CertificateVerify signer (:class:`rudp.tls.certs.Signer`) against the general
:func:`sign` / :func:`choose_scheme` / :func:`schemes_for_key`, and its cache on the configuration."""

from __future__ import annotations

import itertools

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from rudp.errors import ConfigError
from rudp.tls import SignatureScheme, TlsConfig
from rudp.tls.certs import (
    CERTIFICATE_ONLY_SCHEMES,
    HANDSHAKE_SIGNATURE_SCHEMES,
    Signer,
    certificate_verify_content,
    choose_scheme,
    schemes_for_key,
    sign,
    verify_signature,
)
from tests.tls.pki import Issued, Pki
from tests.tls.support import server_config

ALL_SCHEMES = [int(s) for s in (*HANDSHAKE_SIGNATURE_SCHEMES, *CERTIFICATE_ONLY_SCHEMES)]


def _leaves(pki: Pki) -> list[Issued]:
    return [pki.ec256, pki.ec384, pki.rsa, pki.ed25519]


def test_signer_schemes_are_those_of_the_key(pki: Pki) -> None:
    for leaf in _leaves(pki):
        assert Signer(leaf.key).schemes == {int(s) for s in schemes_for_key(leaf.key)}


def test_signer_chooses_as_choose_scheme(pki: Pki) -> None:
    orders = [
        [int(s) for s in HANDSHAKE_SIGNATURE_SCHEMES],
        [int(s) for s in reversed(HANDSHAKE_SIGNATURE_SCHEMES)],
        [int(SignatureScheme.rsa_pss_rsae_sha512), int(SignatureScheme.ed25519)],
    ]
    peers: list[list[int]] = [[], [0x0401, 0x0201], ALL_SCHEMES, list(reversed(ALL_SCHEMES))]
    peers += [[s] for s in ALL_SCHEMES]
    peers += [list(pair) for pair in itertools.combinations(ALL_SCHEMES, 2)]
    for leaf in _leaves(pki):
        signer = Signer(leaf.key)
        for ours, peer in itertools.product(orders, peers):
            assert signer.choose(peer, ours) == choose_scheme(leaf.key, peer, ours), (leaf, ours, peer)
            # the configuration's SignatureScheme members work as well as ints, and give an int
            enum_ours = [SignatureScheme(s) for s in ours]
            chosen = signer.choose(peer, enum_ours)
            assert chosen == choose_scheme(leaf.key, peer, ours)
            assert chosen is None or type(chosen) is int


def test_signer_chooses_nothing_without_a_common_scheme(pki: Pki) -> None:
    # (the fall back: the server's handshake_failure)
    assert Signer(pki.ec256.key).choose([int(SignatureScheme.ed25519)], ALL_SCHEMES) is None
    assert Signer(pki.rsa.key).choose(ALL_SCHEMES, [int(SignatureScheme.ecdsa_secp256r1_sha256)]) is None


def test_signer_signatures_verify_like_those_of_sign(pki: Pki) -> None:
    content = certificate_verify_content(bytes(range(32)), server=True)
    for leaf in _leaves(pki):
        signer = Signer(leaf.key)
        public = leaf.key.public_key()
        for scheme in sorted(signer.schemes):
            for signature in (signer.sign(scheme, content), sign(leaf.key, scheme, content)):
                verify_signature(public, scheme, signature, content, ALL_SCHEMES)
            with pytest.raises(Exception):  # noqa: B017 - a signature of other content is refused
                verify_signature(public, scheme, signer.sign(scheme, content + b"x"), content, ALL_SCHEMES)


def test_signer_ed25519_is_deterministic_like_sign(pki: Pki) -> None:
    content = certificate_verify_content(bytes(32), server=False)
    scheme = int(SignatureScheme.ed25519)
    assert Signer(pki.ed25519.key).sign(scheme, content) == sign(pki.ed25519.key, scheme, content)


def test_signer_refuses_a_scheme_of_another_key(pki: Pki) -> None:
    for leaf, scheme in [
        (pki.ec256, SignatureScheme.ecdsa_secp384r1_sha384),
        (pki.ec256, SignatureScheme.rsa_pss_rsae_sha256),
        (pki.rsa, SignatureScheme.ecdsa_secp256r1_sha256),
        (pki.ed25519, SignatureScheme.ecdsa_secp256r1_sha256),
    ]:
        with pytest.raises(KeyError):
            Signer(leaf.key).sign(int(scheme), b"content")


def test_config_keeps_one_signer_per_key(pki: Pki) -> None:
    config = server_config(pki)
    signer = config.signer()
    assert config.signer() is signer
    assert signer.key is config.private_key
    config.private_key = pki.ec384.key  # a new key: a new signer
    replaced = config.signer()
    assert replaced is not signer
    assert replaced.key is pki.ec384.key
    assert replaced.schemes == {int(SignatureScheme.ecdsa_secp384r1_sha384)}
    # a lookalike (equal, other object) key gets its own signer as well
    lookalike = ec.derive_private_key(pki.ec384.key.private_numbers().private_value, ec.SECP384R1())
    config.private_key = lookalike
    assert config.signer() is not replaced
    assert config.signer().key is lookalike


def test_client_config_without_key_has_no_signer() -> None:
    with pytest.raises(ConfigError):
        TlsConfig(is_client=True, alpn_protocols=["h3"]).signer()


def test_certificate_verify_content_is_the_rfc_layout() -> None:
    # RFC 8446 §4.4.3: 64 spaces, the context string, a zero byte, then the transcript hash
    digest = bytes(range(48))
    assert certificate_verify_content(digest, server=True) == (
        b"\x20" * 64 + b"TLS 1.3, server CertificateVerify" + b"\x00" + digest
    )
    assert certificate_verify_content(digest, server=False) == (
        b"\x20" * 64 + b"TLS 1.3, client CertificateVerify" + b"\x00" + digest
    )
