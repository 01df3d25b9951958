"""Self-signed certificates made on the fly, for tests, examples and ``rudp demo``.

Owns :func:`make_test_pki`: a throwaway CA plus a server certificate for the given names, written as
PEM files. Never use these certificates outside tests and demos.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TestPki:
    """Paths of the PEM files :func:`make_test_pki` wrote."""

    __test__ = False  # not a pytest test class

    ca_file: Path
    cert_file: Path
    key_file: Path

    @property
    def client_cert_file(self) -> Path:
        """A client certificate (clientAuth) signed by the same CA, for mutual TLS."""
        return self.ca_file.parent / "client.pem"

    @property
    def client_key_file(self) -> Path:
        """The client certificate's private key."""
        return self.ca_file.parent / "client-key.pem"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    alt_names: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    now: datetime.datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _write(cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def make_test_pki(
    directory: str | Path, names: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
) -> TestPki:
    """Write ``ca.pem``, ``cert.pem`` and ``key.pem`` into ``directory``; the leaf covers ``names``.

    A client certificate signed by the same CA (for mutual TLS) is written too: ``client.pem`` and
    ``client-key.pem`` (subject "rudp test client").
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("rudp test CA"))
        .issuer_name(_name("rudp test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    alt_names: list[x509.GeneralName] = []
    for name in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt_names.append(x509.DNSName(name))
    cert, key = _leaf(ca_key, ca_cert, names[0], alt_names, ExtendedKeyUsageOID.SERVER_AUTH, now)
    client_cert, client_key = _leaf(
        ca_key,
        ca_cert,
        "rudp test client",
        [x509.DNSName("client.test")],
        ExtendedKeyUsageOID.CLIENT_AUTH,
        now,
    )
    pki = TestPki(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    pki.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(pki.cert_file, pki.key_file, cert, key)
    _write(pki.client_cert_file, pki.client_key_file, client_cert, client_key)
    return pki
