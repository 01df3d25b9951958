"""Certificates made on the fly, for tests, examples, ``rudp demo`` and ``rudp cert``.

Owns :func:`make_test_pki` (a throwaway CA plus a server certificate for the given names, written as
PEM files; tests and demos only) and :func:`make_dev_certificates` (what ``rudp cert`` writes, in the
manner of mkcert: a development CA kept and reused in its directory, its key readable by the owner
only, and a server certificate for local names). Never use either outside development.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rudp.errors import ConfigError
from rudp.tls.certs import check_key_matches_certificate, load_certificate_chain, load_private_key


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


# -- rudp cert ---------------------------------------------------------------------------------------

DEV_NAMES = ("localhost", "127.0.0.1", "::1")
"""The names ``rudp cert`` covers by default."""
DEV_CA_DAYS = 3650
"""Validity of a new development CA (ten years, as mkcert)."""
DEV_CERT_DAYS = 825
"""Validity of a development server certificate (the most some clients accept)."""


@dataclass(frozen=True)
class DevCertificates:
    """What :func:`make_dev_certificates` wrote."""

    ca_file: Path
    ca_key_file: Path
    cert_file: Path
    key_file: Path
    names: tuple[str, ...]
    ca_created: bool
    """False when an existing CA of the directory was reused"""
    not_valid_after: datetime.datetime
    """End of the server certificate's validity"""


_DNS_NAME = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def _general_names(names: Sequence[str]) -> list[x509.GeneralName]:
    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
            continue
        except ValueError:
            pass
        try:
            ascii_name = name.encode("idna").decode("ascii").lower()
        except UnicodeError:
            ascii_name = ""
        if not _DNS_NAME.fullmatch(ascii_name):
            raise ConfigError(f"{name!r} is neither an IP address nor a DNS name")
        general.append(x509.DNSName(ascii_name))
    return general


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` readable and writable by the owner only (mode 0600), even over an old file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # an existing file keeps its mode on open: restrict it before writing
        file.write(data)
    os.chmod(path, 0o600)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_dev_ca(ca_file: Path, ca_key_file: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = load_certificate_chain(ca_file)[0]
    key = load_private_key(ca_key_file)
    check_key_matches_certificate(key, cert, key_name=str(ca_key_file), certificate_name=str(ca_file))
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{ca_key_file} is not an EC key made by rudp cert")
    return cert, key


def _new_dev_ca(now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"rudp development CA ({platform.node() or 'this machine'})")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=DEV_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_dev_certificates(
    directory: str | Path, names: Sequence[str] = DEV_NAMES, *, days: int = DEV_CERT_DAYS
) -> DevCertificates:
    """Write a development CA and a server certificate for ``names`` into ``directory``, like mkcert.

    The CA is ``ca.pem`` with its key ``ca-key.pem`` (mode 0600: whoever holds it can make
    certificates the CA's users trust). Both are reused when already there, so a CA given to clients
    stays valid across runs. The server certificate is ``cert.pem`` with its key ``key.pem`` (mode
    0600), signed by the CA, valid ``days`` days (not beyond the CA), for DNS names and IP addresses.

    Raises:
        ConfigError: no name, a name that is neither a DNS name nor an IP address, only one of
            ``ca.pem``/``ca-key.pem`` present, or an existing CA that cannot be loaded.
    """
    if not names:
        raise ConfigError("give at least one name for the certificate")
    if days < 1:
        raise ConfigError("the certificate must be valid for at least one day")
    alt_names = _general_names(names)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca_file, ca_key_file = directory / "ca.pem", directory / "ca-key.pem"
    now = datetime.datetime.now(datetime.UTC)
    if ca_file.exists() != ca_key_file.exists():
        missing = ca_key_file if ca_file.exists() else ca_file
        raise ConfigError(f"{missing} is missing: remove the other CA file to make a new CA")
    created = not ca_file.exists()
    if created:
        ca_cert, ca_key = _new_dev_ca(now)
        _write_private(ca_key_file, _pem_key(ca_key))
        ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    else:
        ca_cert, ca_key = _load_dev_ca(ca_file, ca_key_file)
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = min(now + datetime.timedelta(days=days), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    _write_private(key_file, _pem_key(key))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return DevCertificates(
        ca_file, ca_key_file, cert_file, key_file, tuple(names), created, cert.not_valid_after_utc
    )
