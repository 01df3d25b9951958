"""Peer certificate verification (rudp.tls.verification): what is accepted, what is refused, and the
words of each refusal, for QUIC and for the TCP baseline's ssl errors.

The policy is OpenSSL's verdicts built from cryptography's verifier: certificates are made here in the
shapes OpenSSL makes them (cA=TRUE self-signed leaves, CAs without keyUsage, non-critical
basicConstraints) next to the shapes that must stay refused.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rudp.errors import TLSAlert
from rudp.tls.alerts import AlertDescription
from rudp.tls.certs import TrustStore
from rudp.tls.verification import (
    CertificateProblem,
    certificate_failure,
    ssl_verification_failure,
    verify_chain,
    verify_client_chain,
)

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass
class Cert:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def make(
    cn: str,
    issuer: Cert | None = None,
    *,
    names: tuple[str, ...] | None = ("localhost",),
    ips: tuple[str, ...] = (),
    ca: bool | None = False,
    ca_critical: bool = True,
    path_length: int | None = None,
    key_usage: dict[str, bool] | None = None,
    eku: x509.ObjectIdentifier | None = None,
    not_before: datetime = AT - 10 * DAY,
    not_after: datetime = AT + 10 * DAY,
) -> Cert:
    """A certificate with OpenSSL's default key identifiers; keyUsage only when asked."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    signer = key if issuer is None else issuer.key
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length), critical=ca_critical
        )
    if names is not None or ips:
        general: list[x509.GeneralName] = [x509.DNSName(n) for n in names or ()]
        general += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    if key_usage is not None:
        flags = dict.fromkeys(
            [
                "digital_signature",
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "key_cert_sign",
                "crl_sign",
                "encipher_only",
                "decipher_only",
            ],
            False,
        )
        builder = builder.add_extension(x509.KeyUsage(**(flags | key_usage)), critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    return Cert(builder.sign(signer, hashes.SHA256()), key)


def openssl_ca(cn: str = "Test CA") -> Cert:
    """What ``openssl req -x509 -subj /CN=...`` makes: critical cA=TRUE, key identifiers, no keyUsage."""
    return make(cn, names=None, ca=True, not_before=AT - 100 * DAY, not_after=AT + 100 * DAY)


def refusal(chain: list[Cert], name: str, trusted: list[Cert], at: datetime = AT) -> TLSAlert:
    with pytest.raises(TLSAlert) as info:
        verify_chain([c.cert for c in chain], name, TrustStore.of([c.cert for c in trusted]), at)
    return info.value


def accepts(chain: list[Cert], name: str, trusted: list[Cert], at: datetime = AT) -> None:
    verify_chain([c.cert for c in chain], name, TrustStore.of([c.cert for c in trusted]), at)


# -- What is accepted (issue 11) ---------------------------------------------------------------------


def test_openssl_self_signed_leaf_is_trusted_as_itself() -> None:
    # openssl req -x509 ... -addext subjectAltName=DNS:localhost,IP:127.0.0.1
    leaf = make("localhost", ca=True, ips=("127.0.0.1",))
    accepts([leaf], "localhost", [leaf])
    accepts([leaf], "127.0.0.1", [leaf])
    # trusted as itself, not as anything else: names and dates stay strict
    assert refusal([leaf], "example.test", [leaf]).alert == AlertDescription.bad_certificate
    assert refusal([leaf], "127.0.0.2", [leaf]).alert == AlertDescription.bad_certificate
    assert refusal([leaf], "localhost", [leaf], AT + 11 * DAY).alert == AlertDescription.certificate_expired
    # and not trusted at all when it is not in the store
    other = openssl_ca()
    failure = refusal([leaf], "localhost", [other])
    assert failure.alert == AlertDescription.unknown_ca
    assert failure.reason == (
        "certificate for localhost, 127.0.0.1 is not trusted: it is self-signed: pass the certificate "
        "itself as cafile=... (--ca FILE), or verify=False (--insecure) for a test"
    )


def test_self_signed_leaf_in_the_store_still_needs_a_signing_key_usage() -> None:
    signs = make("localhost", ca=True, key_usage={"key_cert_sign": True, "digital_signature": True})
    accepts([signs], "localhost", [signs])
    cannot_sign = make("localhost", ca=True, key_usage={"key_cert_sign": True})
    assert refusal([cannot_sign], "localhost", [cannot_sign]).alert == AlertDescription.bad_certificate


def test_self_signed_leaf_without_basic_constraints_or_key_identifiers() -> None:
    # the classic cryptography tutorial certificate: SAN only
    leaf = make("localhost", ca=None)
    accepts([leaf], "localhost", [leaf])


def test_ca_without_key_usage_and_with_non_critical_basic_constraints() -> None:
    ca = openssl_ca()
    accepts([make("localhost", ca)], "localhost", [ca])
    old_style = make("OpenSSL 1.1 CA", names=None, ca=True, ca_critical=False)
    accepts([make("localhost", old_style)], "localhost", [old_style])


def test_intermediate_without_key_usage() -> None:
    root = openssl_ca("Root")
    intermediate = make("Intermediate", root, names=None, ca=True)
    leaf = make("localhost", intermediate)
    accepts([leaf, intermediate], "localhost", [root])
    # the intermediate may also come from the CA file, as OpenSSL uses it
    accepts([leaf], "localhost", [root, intermediate])


# -- What stays refused ------------------------------------------------------------------------------


def test_ca_key_usage_without_cert_sign_is_refused() -> None:
    ca = make("CA", names=None, ca=True, key_usage={"digital_signature": True})
    failure = refusal([make("localhost", ca)], "localhost", [ca])
    assert (failure.alert, failure.reason) == (
        AlertDescription.bad_certificate,
        "certificate for localhost was rejected: keyUsage of the issuing certificate does not allow "
        "keyCertSign",
    )


def test_issuer_without_ca_is_refused() -> None:
    not_a_ca = make("Not a CA", names=None, ca=False, ca_critical=False)
    assert refusal([make("localhost", not_a_ca)], "localhost", [not_a_ca]).alert in (
        AlertDescription.bad_certificate,
        AlertDescription.unknown_ca,
    )


def test_ca_true_leaf_issued_by_a_trusted_ca_is_refused() -> None:
    ca = openssl_ca()
    leaf = make("localhost", ca, ca=True)
    failure = refusal([leaf], "localhost", [ca])
    assert failure.alert == AlertDescription.bad_certificate
    assert failure.reason.startswith("certificate for localhost was rejected: basicConstraints.cA")


def test_path_length_is_still_enforced() -> None:
    root = make("Root", names=None, ca=True, path_length=0)
    intermediate = make("Intermediate", root, names=None, ca=True)
    failure = refusal([make("localhost", intermediate), intermediate], "localhost", [root])
    assert (failure.alert, failure.reason) == (
        AlertDescription.bad_certificate,
        "certificate for localhost was rejected: path length constraint violated",
    )


def test_only_self_signed_certificates_anchor_a_chain() -> None:
    # OpenSSL (no partial chains): a CA-issued leaf or intermediate in the CA file is not enough
    root = openssl_ca("Root")
    intermediate = make("Intermediate", root, names=None, ca=True)
    leaf = make("localhost", intermediate)
    assert refusal([leaf], "localhost", [leaf]).alert == AlertDescription.unknown_ca
    assert refusal([leaf, intermediate], "localhost", [intermediate]).alert == AlertDescription.unknown_ca
    store = TrustStore.of([leaf.cert, root.cert, intermediate.cert, root.cert])
    assert store.anchors == (root.cert,)
    assert store.intermediates == (leaf.cert, intermediate.cert)
    assert store.is_anchor(root.cert) and not store.is_anchor(leaf.cert)


def test_wildcards_cover_one_label() -> None:
    ca = openssl_ca()
    leaf = make("*.example.test", ca, names=("*.example.test",))
    accepts([leaf], "a.example.test", [ca])
    assert refusal([leaf], "a.b.example.test", [ca]).alert == AlertDescription.bad_certificate
    assert refusal([leaf], "example.test", [ca]).alert == AlertDescription.bad_certificate


# -- The words of a refusal --------------------------------------------------------------------------


def test_messages_say_what_is_wrong_and_what_to_do() -> None:
    ca = openssl_ca()
    other_ca = openssl_ca("Someone else's CA")
    leaf = make("localhost", ca, ips=("127.0.0.1",))

    untrusted = refusal([leaf], "localhost", [other_ca])
    assert (untrusted.alert, untrusted.reason) == (
        AlertDescription.unknown_ca,
        "certificate for localhost, 127.0.0.1 is not trusted: pass cafile=... (--ca FILE) with the CA "
        "that issued it, or verify=False (--insecure) for a test",
    )
    elsewhere = refusal([make("example.test", ca, names=("example.test",))], "localhost", [ca])
    assert (elsewhere.alert, elsewhere.reason) == (
        AlertDescription.bad_certificate,
        "certificate for example.test does not match the server name localhost: connect with one of "
        "its names, or set server_name=... (--server-name NAME)",
    )
    wrong_ip = refusal([leaf], "127.0.0.2", [ca])
    assert wrong_ip.reason.startswith(
        "certificate for localhost, 127.0.0.1 does not match the server name 127.0.0.2"
    )
    no_san = refusal([make("localhost", ca, names=None)], "127.0.0.1", [ca])
    assert no_san.reason == (
        "certificate for localhost has no subjectAltName, so it matches no server name (the common name "
        "is not used): reissue it with subjectAltName=IP:127.0.0.1"
    )
    expired = refusal([leaf], "localhost", [ca], AT + 20 * DAY)
    assert (expired.alert, expired.reason) == (
        AlertDescription.certificate_expired,
        "certificate for localhost, 127.0.0.1 expired on 2026-06-11 12:00 UTC: renew it (or check the clock)",
    )
    early = refusal([leaf], "localhost", [ca], AT - 20 * DAY)
    assert (early.alert, early.reason) == (
        AlertDescription.certificate_expired,
        "certificate for localhost, 127.0.0.1 is not valid before 2026-05-22 12:00 UTC: check the clock",
    )
    client_only = refusal([make("localhost", ca, eku=ExtendedKeyUsageOID.CLIENT_AUTH)], "localhost", [ca])
    assert client_only.reason == (
        "certificate for localhost is not for TLS servers: its extendedKeyUsage does not include serverAuth"
    )
    many = make("a.test", ca, names=("a.test", "b.test", "c.test", "d.test", "e.test"))
    assert refusal([many], "localhost", [other_ca]).reason.startswith(
        "certificate for a.test, b.test, c.test (and 2 more) is not trusted"
    )


def test_a_wrong_name_is_reported_before_dates_and_distrust_before_both() -> None:
    # OpenSSL's order: no path to an anchor, then the name, then the dates
    ca = openssl_ca()
    leaf = make("example.test", ca, names=("example.test",))
    late = AT + 20 * DAY
    assert "does not match the server name localhost" in refusal([leaf], "localhost", [ca], late).reason
    assert "is not trusted" in refusal([leaf], "localhost", [openssl_ca("Other")], late).reason


def test_an_expired_intermediate_is_named() -> None:
    root = make("Root", names=None, ca=True, not_before=AT - 400 * DAY, not_after=AT + 400 * DAY)
    old = make("Old Intermediate", root, names=None, ca=True, not_before=AT - 300 * DAY, not_after=AT - DAY)
    leaf = make("localhost", old, not_before=AT - 200 * DAY, not_after=AT + 10 * DAY)
    failure = refusal([leaf, old], "localhost", [root])
    assert failure.alert == AlertDescription.certificate_expired
    assert failure.reason.startswith("CA certificate 'Old Intermediate' expired on 2026-05-31 12:00 UTC")


def test_client_certificates_use_the_same_policy() -> None:
    ca = openssl_ca()
    client = make("client", ca, names=("client.test",), eku=ExtendedKeyUsageOID.CLIENT_AUTH)
    verify_client_chain([client.cert], TrustStore.of([ca.cert]), AT)
    with pytest.raises(TLSAlert) as info:
        verify_client_chain([client.cert], TrustStore.of([openssl_ca("Other").cert]), AT)
    assert info.value.alert == AlertDescription.unknown_ca
    server_only = make("client", ca, names=("client.test",), eku=ExtendedKeyUsageOID.SERVER_AUTH)
    with pytest.raises(TLSAlert) as info:
        verify_client_chain([server_only.cert], TrustStore.of([ca.cert]), AT)
    assert info.value.reason == (
        "certificate for client.test is not for TLS clients: its extendedKeyUsage does not include clientAuth"
    )


# -- The TCP baseline's ssl errors, in the same words ------------------------------------------------


def ssl_error(code: int, message: str, chain: list[Cert] | None) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    exc.verify_code = code
    exc.verify_message = message
    if chain is not None:
        exc.rudp_peer_chain = [c.cert for c in chain]  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("code", "openssl_message", "server_name", "at_offset", "problem"),
    [
        (20, "unable to get local issuer certificate", "localhost", 0, CertificateProblem.UNTRUSTED),
        (18, "self-signed certificate", "localhost", 0, CertificateProblem.UNTRUSTED),
        (62, "Hostname mismatch", "example.test", 0, CertificateProblem.NAME_MISMATCH),
        (64, "IP address mismatch", "127.0.0.2", 0, CertificateProblem.NAME_MISMATCH),
        (10, "certificate has expired", "localhost", 20, CertificateProblem.EXPIRED),
        (9, "certificate is not yet valid", "localhost", -20, CertificateProblem.NOT_YET_VALID),
    ],
)
def test_ssl_errors_read_like_quic_failures(
    code: int, openssl_message: str, server_name: str, at_offset: int, problem: CertificateProblem
) -> None:
    ca = openssl_ca()
    leaf = make("localhost", ca, ips=("127.0.0.1",))
    at = AT + at_offset * DAY
    trusted = [openssl_ca("Other")] if problem is CertificateProblem.UNTRUSTED else [ca]
    quic = refusal([leaf], server_name, trusted, at)
    built = [leaf] if problem is CertificateProblem.UNTRUSTED else [leaf, ca]  # as OpenSSL built it
    tcp = ssl_verification_failure(ssl_error(code, openssl_message, built), server_name, at)
    assert (tcp.alert, tcp.reason) == (quic.alert, quic.reason)
    assert tcp.reason == certificate_failure(problem, server_name, [c.cert for c in built], at).reason


def test_ssl_errors_without_a_chain_or_with_an_unmapped_code() -> None:
    bare = ssl_verification_failure(
        ssl_error(20, "unable to get local issuer certificate", None), "h.test", AT
    )
    assert bare.alert == AlertDescription.unknown_ca
    assert bare.reason.startswith("certificate for h.test is not trusted: ")
    leaf = make("localhost", openssl_ca())
    other = ssl_verification_failure(ssl_error(24, "invalid CA certificate", [leaf]), "localhost", AT)
    assert (other.alert, other.reason) == (
        AlertDescription.bad_certificate,
        "certificate for localhost was rejected: invalid CA certificate",
    )
