"""One verdict for a certificate, whatever the transport: QUIC (rudp's own TLS on cryptography's
verifier) and the TCP baseline (Python's ``ssl``) accept and refuse the same certificates with the same
alert and the same message, and agree with aioquic's verification.

The certificates are made as people make them: with the ``openssl`` command line (``req -x509``
self-signed leaves, CAs without keyUsage, intermediates), and with ``cryptography``'s builder where the
command line cannot (dates in the past or future, OpenSSL 1.1-style CAs, leaves without SAN). Every
handshake is real, on 127.0.0.1. ``rudp cert`` is tested the same way with the files it writes.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from aioquic.tls import verify_certificate
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import rudp
from rudp.cli import main
from rudp.tls.alerts import AlertDescription

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
DAY = datetime.timedelta(days=1)
CRYPTO_ERROR = 0x100
TRANSPORTS: tuple[Literal["quic"], Literal["tcp"]] = ("quic", "tcp")


# -- Making certificates -----------------------------------------------------------------------------


def _openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _openssl_key(cwd: Path, name: str) -> None:
    _openssl(cwd, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name)


def _openssl_self_signed(cwd: Path, stem: str, subject: str, *extra: str) -> None:
    """``openssl req -x509`` as usually typed: OpenSSL's defaults make it cA=TRUE, without keyUsage."""
    _openssl(
        cwd, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", subject, "-days", "30", "-keyout", f"{stem}-key.pem", "-out", f"{stem}.pem", *extra,
    )  # fmt: skip


def _openssl_issue(cwd: Path, stem: str, subject: str, issuer: str, extensions: str) -> None:
    """A CSR signed by ``issuer`` with ``openssl x509 -req`` and an extension file."""
    _openssl_key(cwd, f"{stem}-key.pem")
    _openssl(cwd, "req", "-new", "-key", f"{stem}-key.pem", "-subj", subject, "-out", f"{stem}.csr")
    (cwd / f"{stem}.ext").write_text(extensions)
    _openssl(
        cwd, "x509", "-req", "-in", f"{stem}.csr", "-CA", f"{issuer}.pem", "-CAkey", f"{issuer}-key.pem",
        "-CAcreateserial", "-days", "30", "-extfile", f"{stem}.ext", "-out", f"{stem}.pem",
    )  # fmt: skip


@dataclass
class Built:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _general_names(names: tuple[str, ...]) -> list[x509.GeneralName]:
    result: list[x509.GeneralName] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name))
    return result


def _build(
    cn: str,
    issuer: Built | None,
    *,
    names: tuple[str, ...] | None = ("localhost",),
    ca: bool | None = False,
    ca_critical: bool = True,
    not_before: datetime.datetime = NOW - DAY,
    not_after: datetime.datetime = NOW + 30 * DAY,
    key_identifiers: bool = True,
    eku: x509.ObjectIdentifier | None = None,
) -> Built:
    """A certificate with OpenSSL's default extensions (SKI, AKI, basicConstraints), no keyUsage."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    signer_key = key if issuer is None else issuer.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if key_identifiers:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False
        )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=ca_critical)
    if names is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    return Built(builder.sign(signer_key, hashes.SHA256()), key)


def _write(directory: Path, stem: str, *chain: Built) -> None:
    (directory / f"{stem}.pem").write_bytes(
        b"".join(c.cert.public_bytes(serialization.Encoding.PEM) for c in chain)
    )
    (directory / f"{stem}-key.pem").write_bytes(
        chain[0].key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


# -- The matrix --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A server certificate (chain file + key), what the client trusts, where it connects, the verdict."""

    cert: str
    trust: str
    host: str = "127.0.0.1"
    server_name: str | None = "localhost"
    alert: AlertDescription | None = None
    """None: the handshake succeeds; else the alert both transports fail with"""
    message: str = ""
    """a part of the failure's message"""
    aioquic: bool = True
    """aioquic's verification applies (it checks no key purpose)"""


EXPIRED_ON = (NOW - 2 * DAY).strftime("%Y-%m-%d %H:%M UTC")
VALID_FROM = (NOW + 2 * DAY).strftime("%Y-%m-%d %H:%M UTC")

CASES = {
    # The two files of issue 11, trusted as passed
    "openssl self-signed leaf, its own CA file": Case("ss", "ss.pem"),
    "openssl CA without keyUsage": Case("leaf", "ca.pem"),
    "openssl intermediate chain": Case("chain", "root.pem"),
    "IP SAN, server_name unset": Case("ss", "ss.pem", server_name=None),
    "self-signed without basicConstraints or AKI": Case("bare", "bare.pem"),
    "CA with a non-critical basicConstraints (OpenSSL 1.1)": Case("leaf11", "ca11.pem"),
    "expired": Case(
        "expired",
        "ca.pem",
        alert=AlertDescription.certificate_expired,
        message=f"certificate for localhost expired on {EXPIRED_ON}: renew it",
    ),
    "not yet valid": Case(
        "future",
        "ca.pem",
        alert=AlertDescription.certificate_expired,
        message=f"certificate for localhost is not valid before {VALID_FROM}: check the clock",
    ),
    "expired intermediate": Case(
        "old-chain",
        "root.pem",
        alert=AlertDescription.certificate_expired,
        message=f"CA certificate 'Old Intermediate' expired on {EXPIRED_ON}",
    ),
    "expired CA in the CA file": Case(
        "by-old-ca",
        "old-ca.pem",
        alert=AlertDescription.certificate_expired,
        message=f"CA certificate 'Old CA' expired on {EXPIRED_ON}",
    ),
    "wrong name": Case(
        "other-name",
        "ca.pem",
        alert=AlertDescription.bad_certificate,
        message="certificate for example.test does not match the server name localhost",
    ),
    "wrong IP address": Case(
        "leaf",
        "ca.pem",
        server_name="127.0.0.2",
        alert=AlertDescription.bad_certificate,
        message="certificate for localhost, 127.0.0.1 does not match the server name 127.0.0.2",
    ),
    "common name only, no SAN": Case(
        "cn-only",
        "ca.pem",
        alert=AlertDescription.bad_certificate,
        message="certificate for localhost has no subjectAltName, so it matches no server name",
    ),
    "untrusted CA": Case(
        "leaf",
        "root.pem",
        alert=AlertDescription.unknown_ca,
        message="certificate for localhost, 127.0.0.1 is not trusted: pass cafile=... (--ca FILE) with "
        "the CA that issued it, or verify=False (--insecure) for a test",
    ),
    "self-signed, not trusted": Case(
        "ss",
        "ca.pem",
        host="127.0.0.1",
        server_name=None,
        alert=AlertDescription.unknown_ca,
        message="certificate for localhost, 127.0.0.1 is not trusted: it is self-signed: pass the "
        "certificate itself as cafile=... (--ca FILE)",
    ),
    "CA-issued leaf pinned without its CA": Case(
        "leaf", "leaf.pem", alert=AlertDescription.unknown_ca, message="is not trusted"
    ),
    "client-only extended key usage": Case(
        "client-eku",
        "ca.pem",
        alert=AlertDescription.bad_certificate,
        message="certificate for localhost is not for TLS servers: its extendedKeyUsage does not "
        "include serverAuth",
        aioquic=False,
    ),
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cert-matrix")
    # openssl-made: a self-signed leaf, a CA without keyUsage and its leaf, a root > intermediate > leaf
    _openssl_self_signed(d, "ss", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    _openssl_self_signed(d, "ca", "/CN=Test CA")
    _openssl_issue(d, "leaf", "/CN=localhost", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl_self_signed(d, "root", "/CN=Test Root")
    _openssl_issue(d, "inter", "/CN=Test Intermediate", "root", "basicConstraints=critical,CA:TRUE\n")
    _openssl_issue(d, "chain-leaf", "/CN=localhost", "inter", "subjectAltName=DNS:localhost\n")
    (d / "chain.pem").write_bytes((d / "chain-leaf.pem").read_bytes() + (d / "inter.pem").read_bytes())
    shutil.copy(d / "chain-leaf-key.pem", d / "chain-key.pem")
    # cryptography-made, where the command line cannot: dates, old-style CAs, odd leaves
    ca_key = serialization.load_pem_private_key((d / "ca-key.pem").read_bytes(), None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError("openssl made an EC key")
    ca = Built(x509.load_pem_x509_certificate((d / "ca.pem").read_bytes()), ca_key)
    _write(d, "expired", _build("localhost", ca, not_before=NOW - 30 * DAY, not_after=NOW - 2 * DAY))
    _write(d, "future", _build("localhost", ca, not_before=NOW + 2 * DAY, not_after=NOW + 30 * DAY))
    root_key = serialization.load_pem_private_key((d / "root-key.pem").read_bytes(), None)
    if not isinstance(root_key, ec.EllipticCurvePrivateKey):
        raise TypeError("openssl made an EC key")
    root = Built(x509.load_pem_x509_certificate((d / "root.pem").read_bytes()), root_key)
    old = _build(
        "Old Intermediate", root, names=None, ca=True, not_before=NOW - 30 * DAY, not_after=NOW - 2 * DAY
    )
    _write(d, "old-chain", _build("localhost", old), old)
    old_ca = _build("Old CA", None, names=None, ca=True, not_before=NOW - 30 * DAY, not_after=NOW - 2 * DAY)
    _write(d, "old-ca", old_ca)
    _write(d, "by-old-ca", _build("localhost", old_ca))
    _write(d, "other-name", _build("example.test", ca, names=("example.test",)))
    _write(d, "cn-only", _build("localhost", ca, names=None))
    _write(d, "client-eku", _build("localhost", ca, eku=ExtendedKeyUsageOID.CLIENT_AUTH))
    _write(d, "bare", _build("localhost", None, ca=None, key_identifiers=False))
    ca11 = _build("OpenSSL 1.1 CA", None, names=None, ca=True, ca_critical=False)
    _write(d, "ca11", ca11)
    _write(d, "leaf11", _build("localhost", ca11))
    return d


async def _verdict(
    port: int, case: Case, certs: Path, transport: Literal["quic", "tcp"]
) -> tuple[int, str] | None:
    config = rudp.Config(cafile=certs / case.trust, server_name=case.server_name, handshake_timeout=5.0)
    try:
        async with rudp.connect(case.host, port, config=config, transport=transport) as conn:
            await conn.ping()
    except rudp.HandshakeFailed as exc:
        return exc.code, exc.reason
    return None


def _aioquic_accepts(case: Case, certs: Path) -> bool:
    chain = x509.load_pem_x509_certificates((certs / f"{case.cert}.pem").read_bytes())
    try:
        verify_certificate(
            chain[0], chain[1:], server_name=case.server_name or case.host, cafile=str(certs / case.trust)
        )
    except Exception:  # aioquic's alerts
        return False
    return True


async def _noop(conn: rudp.Connection) -> None:
    await conn.wait_closed()


@pytest.mark.parametrize("name", list(CASES))
async def test_same_verdict_over_quic_tcp_and_aioquic(name: str, certs: Path) -> None:
    case = CASES[name]
    config = rudp.Config(certfile=certs / f"{case.cert}.pem", keyfile=certs / f"{case.cert}-key.pem")
    verdicts = {}
    for transport in TRANSPORTS:  # a server each: "both" may find the UDP port's number taken on TCP
        server = await rudp.serve("127.0.0.1", 0, _noop, config=config, transport=transport)
        try:
            verdicts[transport] = await _verdict(server.port, case, certs, transport)
        finally:
            server.close()
            await server.wait_closed()
    quic, tcp = verdicts["quic"], verdicts["tcp"]
    assert quic == tcp  # same alert, same words
    if case.alert is None:
        assert quic is None
    else:
        assert quic is not None
        code, message = quic
        assert code == CRYPTO_ERROR + case.alert
        assert case.message in message
    if case.aioquic:
        assert _aioquic_accepts(case, certs) == (case.alert is None)


# -- rudp cert ---------------------------------------------------------------------------------------


async def test_rudp_cert_writes_a_ca_and_a_certificate_both_transports_trust(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "certs"
    assert main(["cert", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    ca, ca_key, cert, key = (out_dir / n for n in ("ca.pem", "ca-key.pem", "cert.pem", "key.pem"))
    assert f"rudp serve --www . --transport both --cert {cert} --key {key}" in printed
    assert f"rudp get --ca {ca} https://localhost:4433/index.html" in printed
    assert "created a development CA" in printed
    for private in (ca_key, key):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    first_ca = ca.read_bytes()
    # a second run keeps the CA (clients already trust it) and issues a new certificate
    assert main(["cert", str(out_dir)]) == 0
    assert "reusing the development CA" in capsys.readouterr().out
    assert ca.read_bytes() == first_ca
    assert cert.read_bytes() != leaf.public_bytes(serialization.Encoding.PEM)

    server_config = rudp.Config(certfile=cert, keyfile=key)
    done = []
    for transport in TRANSPORTS:
        server = await rudp.serve("127.0.0.1", 0, _noop, config=server_config, transport=transport)
        try:
            for server_name in ("localhost", None):  # the DNS name, then the IP address SAN
                config = rudp.Config(cafile=ca, server_name=server_name, handshake_timeout=5.0)
                async with rudp.connect("127.0.0.1", server.port, config=config, transport=transport) as conn:
                    await conn.ping()
                    done.append(f"{transport} {server_name or '127.0.0.1'}")
        finally:
            server.close()
            await server.wait_closed()
    assert done == ["quic localhost", "quic 127.0.0.1", "tcp localhost", "tcp 127.0.0.1"]


def test_rudp_cert_refuses_bad_names_and_a_half_ca(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cert", str(tmp_path / "a"), "not a name!"]) == 2
    assert "neither an IP address nor a DNS name" in capsys.readouterr().err
    assert main(["cert", str(tmp_path / "b")]) == 0
    (tmp_path / "b" / "ca-key.pem").unlink()
    assert main(["cert", str(tmp_path / "b")]) == 2
    assert "ca-key.pem is missing" in capsys.readouterr().err
