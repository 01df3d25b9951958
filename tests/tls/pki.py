"""Test PKI generated with ``cryptography`` at test time (no key or certificate files are committed)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.now(UTC).replace(microsecond=0)  # aioquic checks dates against the real clock
#: POSIX time the tests run at (inside every certificate's validity, except the expired one)
NOW_TS = NOW.timestamp()

AnyKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class Issued:
    """A certificate with its key, as PEM bytes and objects."""

    cert: x509.Certificate
    key: AnyKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str = "rudp test CA") -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=365))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def make_leaf(
    ca: Issued,
    key: AnyKey,
    names: tuple[str, ...] = ("localhost", "127.0.0.1"),
    *,
    not_before: datetime = NOW - timedelta(days=1),
    not_after: datetime = NOW + timedelta(days=90),
    usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.SERVER_AUTH,
) -> Issued:
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    ca_key = ca.key
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("test CAs use EC keys")
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return Issued(cert, key)


@dataclass
class Pki:
    ca: Issued
    ec256: Issued
    ec384: Issued
    rsa: Issued
    ed25519: Issued
    expired: Issued
    other_ca: Issued
    untrusted: Issued
    client: Issued
    untrusted_client: Issued


def make_pki() -> Pki:
    ca = make_ca()
    other_ca = make_ca("someone else's CA")
    return Pki(
        ca=ca,
        ec256=make_leaf(ca, ec.generate_private_key(ec.SECP256R1())),
        ec384=make_leaf(ca, ec.generate_private_key(ec.SECP384R1())),
        rsa=make_leaf(ca, rsa.generate_private_key(65537, 2048)),
        ed25519=make_leaf(ca, ed25519.Ed25519PrivateKey.generate()),
        expired=make_leaf(
            ca,
            ec.generate_private_key(ec.SECP256R1()),
            not_before=NOW - timedelta(days=100),
            not_after=NOW - timedelta(days=10),
        ),
        other_ca=other_ca,
        untrusted=make_leaf(other_ca, ec.generate_private_key(ec.SECP256R1())),
        client=make_leaf(
            ca,
            ec.generate_private_key(ec.SECP256R1()),
            ("client.example",),
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        ),
        untrusted_client=make_leaf(
            other_ca,
            ed25519.Ed25519PrivateKey.generate(),
            ("client.example",),
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        ),
    )
