"""The caches shared by handshakes (rudp.tls.cert_cache, the Initial secrets): what they reuse, when they
load or verify again, that they stay bounded, and that reuse never skips a check that proves something
about this handshake or lets one connection's secrets reach another."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rudp.crypto import keys as crypto_keys
from rudp.crypto.keys import initial_secrets
from rudp.errors import ConfigError, TLSAlert
from rudp.tls.alerts import AlertDescription
from rudp.tls.cert_cache import (
    CERTIFICATES,
    MAX_TRUST_STORES,
    BoundedCache,
    CertificateCache,
    VerifiedChains,
    cached_trust_store,
    trust_store_cache_size,
)
from rudp.tls.certs import TrustStore
from rudp.tls.verification import verify_chain, verify_client_chain
from tests.tls.pki import NOW, Pki, make_ca, make_leaf
from tests.tls.support import client_config, make_pair, server_config


def test_bounded_cache_keeps_the_most_recently_used() -> None:
    cache: BoundedCache[int, str] = BoundedCache(3)
    for i in range(3):
        cache.put(i, str(i))
    assert cache.get(0) == "0"  # 0 is now the most recent: 1 goes first
    cache.put(3, "3")
    assert len(cache) == 3
    assert cache.get(1) is None
    assert [cache.get(i) for i in (0, 2, 3)] == ["0", "2", "3"]


def test_certificate_cache_parses_once_and_stays_bounded(pki: Pki) -> None:
    cache = CertificateCache(limit=2)
    der = pki.ec256.cert.public_bytes(serialization.Encoding.DER)
    first = cache.load(der)
    assert cache.load(bytearray(der)) is first
    assert first == pki.ec256.cert
    for issued in (pki.ec384, pki.rsa, pki.ed25519):
        cache.load(issued.cert.public_bytes(serialization.Encoding.DER))
    assert len(cache) == 2
    assert cache.load(der) is not first  # evicted, parsed again: still the same certificate
    with pytest.raises(ValueError):
        cache.load(b"\x30\x03bad")
    assert len(cache) == 2  # failures are not cached


def _write(path: Path, *certs: x509.Certificate) -> None:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))


def test_trust_store_loaded_once_per_content(tmp_path: Path, pki: Pki) -> None:
    cafile = tmp_path / "ca.pem"
    _write(cafile, pki.ca.cert)
    store = cached_trust_store(cafile)
    assert cached_trust_store(str(cafile)) is store
    assert store.anchors == (pki.ca.cert,)
    # Edited in place (another CA, another size, a later mtime): loaded again.
    _write(cafile, pki.other_ca.cert, pki.ca.cert)
    later = os.stat(cafile).st_mtime_ns + 5_000_000_000
    os.utime(cafile, ns=(later, later))
    reloaded = cached_trust_store(cafile)
    assert reloaded is not store
    assert set(reloaded.anchors) == {pki.ca.cert, pki.other_ca.cert}
    # Replaced by another file (a new inode) of the same size and mtime: loaded again.
    replacement = tmp_path / "new.pem"
    _write(replacement, pki.other_ca.cert, pki.ca.cert)
    os.utime(replacement, ns=(later, later))
    os.replace(replacement, cafile)
    assert cached_trust_store(cafile) is not reloaded
    # PEM data is keyed by its bytes.
    pem = pki.ca.cert_pem
    assert cached_trust_store(cadata=pem) is cached_trust_store(cadata=bytes(pem))
    assert cached_trust_store(cadata=pki.other_ca.cert_pem) is not cached_trust_store(cadata=pem)


def test_trust_store_rewritten_in_place_with_the_same_size_and_mtime_is_loaded_again(
    tmp_path: Path, pki: Pki
) -> None:
    # Two CA files of the same size (blank lines after the shorter PEM block).
    first, other = (c.public_bytes(serialization.Encoding.PEM) for c in (pki.ca.cert, pki.other_ca.cert))
    size = max(len(first), len(other))
    first, other = first.ljust(size, b"\n"), other.ljust(size, b"\n")
    cafile = tmp_path / "ca.pem"
    cafile.write_bytes(first)
    before = os.stat(cafile)
    store = cached_trust_store(cafile)
    assert store.anchors == (pki.ca.cert,)
    # The other CA written over the same inode, its mtime set back: only the ctime tells. The file
    # system's ctime clock can be coarse, so rewrite until it has moved (a write within the same
    # clock tick keeps it).
    for _ in range(1_000_000):
        with open(cafile, "r+b") as f:
            f.write(other)
        if os.stat(cafile).st_ctime_ns != before.st_ctime_ns:
            break
    os.utime(cafile, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(cafile)
    same = ("st_ino", "st_size", "st_mtime_ns")
    assert [getattr(after, f) for f in same] == [getattr(before, f) for f in same]
    assert after.st_ctime_ns != before.st_ctime_ns
    reloaded = cached_trust_store(cafile)
    assert reloaded is not store
    assert reloaded.anchors == (pki.other_ca.cert,)


def test_trust_store_failures_are_not_cached_and_the_cache_is_bounded(tmp_path: Path, pki: Pki) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError, match="cannot read"):
        cached_trust_store(missing)
    _write(missing, pki.ca.cert)  # now it exists: loaded, not a remembered failure
    assert cached_trust_store(missing).anchors == (pki.ca.cert,)
    for _ in range(MAX_TRUST_STORES + 4):
        cached_trust_store(cadata=make_ca("one of many").cert_pem)
    assert trust_store_cache_size() == MAX_TRUST_STORES


def test_verified_chain_is_reused_only_inside_its_validity_window(pki: Pki) -> None:
    trust = TrustStore.of([pki.ca.cert])
    leaf = make_leaf(
        pki.ca,
        ec.generate_private_key(ec.SECP256R1()),
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=2),
    )
    verify_chain([leaf.cert], "localhost", trust, NOW)
    assert len(trust.verified) == 1
    ders = (leaf.cert.public_bytes(serialization.Encoding.DER),)
    assert trust.verified.holds(ders, "localhost", NOW + timedelta(days=1))
    # After the leaf expired the remembered verdict does not apply: verified again, and refused.
    with pytest.raises(TLSAlert) as exc:
        verify_chain([leaf.cert], "localhost", trust, NOW + timedelta(days=3))
    assert exc.value.alert == AlertDescription.certificate_expired
    # Before it was valid either.
    with pytest.raises(TLSAlert) as exc:
        verify_chain([leaf.cert], "localhost", trust, NOW - timedelta(days=2))
    assert exc.value.alert == AlertDescription.certificate_expired
    # Another name is not covered by the verdict for localhost.
    with pytest.raises(TLSAlert) as exc:
        verify_chain([leaf.cert], "example.com", trust, NOW)
    assert exc.value.alert == AlertDescription.bad_certificate
    # A verdict for the server profile says nothing about client authentication (subject None).
    assert not trust.verified.holds(ders, None, NOW)


def test_failures_are_never_remembered_and_stores_do_not_share_verdicts(pki: Pki) -> None:
    trust = TrustStore.of([pki.ca.cert])
    for _ in range(2):
        with pytest.raises(TLSAlert) as exc:
            verify_chain([pki.untrusted.cert], "localhost", trust, NOW)
        assert exc.value.alert == AlertDescription.unknown_ca
    assert len(trust.verified) == 0
    verify_chain([pki.ec256.cert], "localhost", trust, NOW)
    other = TrustStore.of([pki.other_ca.cert])
    with pytest.raises(TLSAlert) as exc:
        verify_chain([pki.ec256.cert], "localhost", other, NOW)  # verified for `trust` only
    assert exc.value.alert == AlertDescription.unknown_ca
    verify_client_chain([pki.client.cert], trust, NOW)
    assert len(trust.verified) == 2


def test_verdicts_are_bounded() -> None:
    verdicts = VerifiedChains(limit=4)
    ca = make_ca("bounded")
    for i in range(10):
        leaf = make_leaf(ca, ec.generate_private_key(ec.SECP256R1()))
        verdicts.remember((leaf.cert.public_bytes(serialization.Encoding.DER), bytes([i])), "x", [leaf.cert])
    assert len(verdicts) == 4


def test_a_cached_chain_still_needs_the_key_to_sign(pki: Pki) -> None:
    """An impostor replaying the real server's certificate chain (already verified and remembered)
    without its private key fails at CertificateVerify (RFC 8446 §4.4.3)."""
    client_cfg = client_config(pki)
    genuine = make_pair(client_cfg, server_config(pki))
    genuine.run()
    assert genuine.client.engine.handshake_complete
    assert len(client_cfg.trust_store().verified) == 1
    impostor_cfg = server_config(pki)
    object.__setattr__(impostor_cfg, "private_key", ec.generate_private_key(ec.SECP256R1()))
    second_client = client_config(pki)
    assert second_client.trust_store() is client_cfg.trust_store()  # the verdict applies to it
    impostor = make_pair(second_client, impostor_cfg, seed=7)
    with pytest.raises(TLSAlert) as exc:
        impostor.run()
    assert exc.value.alert == AlertDescription.decrypt_error
    assert not impostor.client.engine.handshake_complete


def test_caches_hold_no_secrets(pki: Pki) -> None:
    """After handshakes (mutual TLS included) the shared caches hold certificates, names, dates and
    public Initial secrets only: no private key, no traffic secret of any connection."""
    client_cfg = client_config(pki, certfile=pki.client.cert_pem, keyfile=pki.client.key_pem)
    server_cfg = server_config(pki, client_auth="required", cadata=pki.ca.cert_pem)
    pair = make_pair(client_cfg, server_cfg)
    pair.run()
    assert pair.server.engine.handshake_complete
    secrets = [event.secret for side in (pair.client, pair.server) for event in side.keys]
    assert secrets
    private = [
        key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        for key in (client_cfg.private_key, server_cfg.private_key)
        if key is not None
    ]
    held: list[object] = []
    for store in (client_cfg.trust_store(), server_cfg.trust_store()):
        for (ders, name), window in store.verified._verdicts._entries.items():
            held += [*ders, name, *window]
    for der, cert in CERTIFICATES._parsed._entries.items():
        assert isinstance(cert, x509.Certificate)
        held.append(der)
    blobs = [item for item in held if isinstance(item, bytes)]
    assert blobs
    for blob in blobs:
        assert all(secret not in blob for secret in secrets)
        assert all(key not in blob for key in private)
    for item in held:
        assert item is None or isinstance(item, bytes | str | datetime)


def test_initial_secrets_cache_is_bounded_and_exact() -> None:
    first = initial_secrets(b"\x83\x94\xc8\xf0\x3e\x51\x57\x08", 1)
    # RFC 9001 Appendix A.1: the client Initial secret of this DCID.
    assert first[0].hex() == "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea"
    for i in range(100):
        initial_secrets(i.to_bytes(8, "big"), 1)
    assert len(crypto_keys._RECENT_INITIAL) <= crypto_keys._MAX_RECENT_INITIAL
    assert initial_secrets(b"\x83\x94\xc8\xf0\x3e\x51\x57\x08", 1) == first
    with pytest.raises(ValueError):
        initial_secrets(b"\x01", 0x12345678)


def test_a_wall_clock_past_expiry_fails_the_next_handshake(pki: Pki) -> None:
    """Handshakes of one config share verdicts; the config's clock still decides."""
    leaf = make_leaf(pki.ca, ec.generate_private_key(ec.SECP256R1()), not_after=NOW + timedelta(hours=1))
    clock_now = [NOW.timestamp()]
    client_cfg = client_config(pki, clock=lambda: clock_now[0])  # type: ignore[arg-type]
    make_pair(client_cfg, server_config(pki, leaf=leaf)).run()
    clock_now[0] = (NOW + timedelta(hours=2)).timestamp()
    pair = make_pair(client_cfg, server_config(pki, leaf=leaf), seed=3)
    with pytest.raises(TLSAlert) as exc:
        pair.run()
    assert exc.value.alert == AlertDescription.certificate_expired


def test_the_server_chain_is_encoded_once_and_again_when_replaced(pki: Pki) -> None:
    config = server_config(pki)
    first = config.certificate_chain_der()
    assert first == tuple(c.public_bytes(serialization.Encoding.DER) for c in config.certificate_chain)
    assert config.certificate_chain_der() is first  # same certificate objects: the same bytes object
    config.certificate_chain = [pki.ec384.cert]  # replaced (a reload): the new chain is encoded
    assert config.certificate_chain_der() == (pki.ec384.cert.public_bytes(serialization.Encoding.DER),)
    config.certificate_chain.append(pki.ca.cert)  # changed in place: noticed too
    assert config.certificate_chain_der()[1] == pki.ca.cert.public_bytes(serialization.Encoding.DER)


def test_the_certificate_message_is_encoded_once_per_chain_and_follows_a_new_one(pki: Pki) -> None:
    # rudp.tls.server keeps the last chain's Certificate message: every handshake of a configuration
    # sends the same bytes; another configuration's chain is sent as it is.
    from rudp.tls import server as server_module
    from rudp.tls.messages import CertificateMessage

    client_cfg = client_config(pki)
    configs = [server_config(pki), server_config(pki, leaf=pki.ec384)]
    for config in (configs[0], configs[1], configs[0]):
        ders = config.certificate_chain_der()
        for seed in (1, 2):
            pair = make_pair(client_cfg, config, seed=seed)
            pair.run()
            assert pair.client.engine.peer_certificate_chain == list(config.certificate_chain)
            last = server_module._last_certificate_message
            assert last is not None and last[0] is ders
            assert last[1] == CertificateMessage(b"", list(ders)).encode()
