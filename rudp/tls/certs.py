"""Certificates and signatures for the TLS handshake (RFC 8446 §4.2.3, §4.4.2, §4.4.3).

Owns: PEM loading of chains and private keys, trust stores (CA file/data/directory or the system
bundle, split into anchors and intermediates as OpenSSL uses them) and the CertificateVerify
signature (create and check) for ecdsa_secp256r1_sha256, ecdsa_secp384r1_sha384,
rsa_pss_rsae_sha256/384/512 and ed25519. Chain verification lives in :mod:`rudp.tls.verification`.
"""

from __future__ import annotations

import hashlib
import os
import re
import ssl
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import Store

from rudp.errors import ConfigError
from rudp.tls.alerts import AlertDescription, alert
from rudp.tls.cert_cache import CERTIFICATES, VerifiedChains

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class SignatureScheme(IntEnum):
    """Signature schemes (RFC 8446 §4.2.3)."""

    rsa_pkcs1_sha256 = 0x0401
    rsa_pkcs1_sha384 = 0x0501
    rsa_pkcs1_sha512 = 0x0601
    ecdsa_secp256r1_sha256 = 0x0403
    ecdsa_secp384r1_sha384 = 0x0503
    rsa_pss_rsae_sha256 = 0x0804
    rsa_pss_rsae_sha384 = 0x0805
    rsa_pss_rsae_sha512 = 0x0806
    ed25519 = 0x0807


#: schemes usable in CertificateVerify, in default preference order
HANDSHAKE_SIGNATURE_SCHEMES: Final = (
    SignatureScheme.ecdsa_secp256r1_sha256,
    SignatureScheme.rsa_pss_rsae_sha256,
    SignatureScheme.ed25519,
    SignatureScheme.ecdsa_secp384r1_sha384,
    SignatureScheme.rsa_pss_rsae_sha384,
    SignatureScheme.rsa_pss_rsae_sha512,
)

#: schemes only advertised for signatures inside certificates (never valid in CertificateVerify)
CERTIFICATE_ONLY_SCHEMES: Final = (
    SignatureScheme.rsa_pkcs1_sha256,
    SignatureScheme.rsa_pkcs1_sha384,
    SignatureScheme.rsa_pkcs1_sha512,
)

_ECDSA: Final[dict[SignatureScheme, tuple[str, hashes.HashAlgorithm]]] = {
    SignatureScheme.ecdsa_secp256r1_sha256: ("secp256r1", hashes.SHA256()),
    SignatureScheme.ecdsa_secp384r1_sha384: ("secp384r1", hashes.SHA384()),
}
_RSA_PSS: Final[dict[SignatureScheme, hashes.HashAlgorithm]] = {
    SignatureScheme.rsa_pss_rsae_sha256: hashes.SHA256(),
    SignatureScheme.rsa_pss_rsae_sha384: hashes.SHA384(),
    SignatureScheme.rsa_pss_rsae_sha512: hashes.SHA512(),
}


def _pss(scheme: int) -> tuple[padding.PSS, hashes.HashAlgorithm]:
    # RFC 8446 §4.2.3: RSASSA-PSS with MGF1 on the same hash and a salt as long as the digest
    algorithm = _RSA_PSS[SignatureScheme(scheme)]
    return padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size), algorithm


_SERVER_CONTEXT: Final = b"TLS 1.3, server CertificateVerify"
_CLIENT_CONTEXT: Final = b"TLS 1.3, client CertificateVerify"
_SERVER_PREFIX: Final = b" " * 64 + _SERVER_CONTEXT + b"\x00"
_CLIENT_PREFIX: Final = b" " * 64 + _CLIENT_CONTEXT + b"\x00"
"""what comes before the transcript hash in the signed content (RFC 8446 §4.4.3), joined once"""

PemSource = str | os.PathLike[str] | bytes

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


# -- Loading -----------------------------------------------------------------------------------------


def describe_source(source: PemSource) -> str:
    """How error messages name a PEM source: its path, or "the PEM data" for bytes."""
    return "the PEM data" if isinstance(source, bytes) else os.fspath(source)


def _read(source: PemSource) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {os.fspath(source)}: {exc.strerror or exc}") from exc


def _parse_pem_certificates(data: bytes) -> list[x509.Certificate]:
    certs = []
    with warnings.catch_warnings():
        # old roots in system bundles trigger deprecation warnings (e.g. non-positive serial numbers)
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        for block in _PEM_CERT.findall(data):
            try:
                certs.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                continue  # one unparsable CA in a system bundle must not break the rest
    return certs


def load_certificate_chain(source: PemSource) -> list[x509.Certificate]:
    """Certificates of a PEM file (path) or PEM bytes, leaf first.

    Raises:
        ConfigError: the file cannot be read or holds no certificate (the message names it).
    """
    certs = _parse_pem_certificates(_read(source))
    if not certs:
        raise ConfigError(f"no PEM certificate found in {describe_source(source)}")
    return certs


def load_private_key(source: PemSource, password: bytes | None = None) -> PrivateKey:
    """A private key (EC P-256/P-384, RSA or Ed25519) from a PEM file (path) or PEM bytes.

    Raises:
        ConfigError: the file cannot be read, holds no usable key, or the key type is unsupported (the
            message names the file).
    """
    data = _read(source)
    try:
        key = serialization.load_pem_private_key(data, password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"cannot load a private key from {describe_source(source)}: {exc}") from exc
    if not isinstance(key, PrivateKey):
        raise ConfigError(f"unsupported private key type {type(key).__name__} in {describe_source(source)}")
    return key


def _public_key_der(key: PublicKey | x509.Certificate) -> bytes:
    public = key.public_key() if isinstance(key, x509.Certificate) else key
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def check_key_matches_certificate(
    key: PrivateKey, certificate: x509.Certificate, *, key_name: str, certificate_name: str
) -> None:
    """Refuse a private key that is not the one of ``certificate`` (the leaf): every handshake would
    fail its CertificateVerify, so say so when the configuration is loaded instead.

    Raises:
        ConfigError: "the private key in <key_name> does not match the certificate in <certificate_name>".
    """
    if _public_key_der(key.public_key()) != _public_key_der(certificate):
        raise ConfigError(
            f"the private key in {key_name} does not match the certificate in {certificate_name}"
        )


def load_credentials(
    certfile: PemSource, keyfile: PemSource, password: bytes | None = None
) -> tuple[list[x509.Certificate], PrivateKey]:
    """The certificate chain and its private key, checked to belong together.

    Raises:
        ConfigError: a file cannot be read or parsed, or the key is not the certificate's (the message
            names the files).
    """
    chain = load_certificate_chain(certfile)
    key = load_private_key(keyfile, password)
    check_key_matches_certificate(
        key, chain[0], key_name=describe_source(keyfile), certificate_name=describe_source(certfile)
    )
    return chain, key


def system_ca_bundle() -> str | None:
    """Path of the system CA bundle: OpenSSL's default (honours SSL_CERT_FILE), then usual paths."""
    candidates = [ssl.get_default_verify_paths().cafile]
    candidates += [
        "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine, Arch
        "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
        "/etc/ssl/ca-bundle.pem",  # openSUSE
        "/etc/ssl/cert.pem",  # macOS, Alpine
        "/usr/local/share/certs/ca-root-nss.crt",  # FreeBSD
    ]
    for path in candidates:
        if path and os.path.isfile(path):
            return path
    return None


@dataclass(frozen=True, eq=False)
class TrustStore:
    """The certificates trusted for peer verification, used the way OpenSSL uses a CA file.

    Self-signed certificates (subject equal to issuer) are the trust anchors: a verified chain must
    end at one of them, and a self-signed server certificate that is itself an anchor is trusted as
    itself. The other certificates of the file only help to build a chain up to an anchor (OpenSSL
    does not trust a chain that stops at an intermediate certificate unless told to).
    """

    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]
    verified: VerifiedChains = field(default_factory=VerifiedChains, repr=False)
    """chains that verified against this store, with when they stay valid (see
    :mod:`rudp.tls.cert_cache`)"""

    @classmethod
    def of(cls, certificates: Sequence[x509.Certificate]) -> TrustStore:
        """Split ``certificates`` into anchors (self-signed) and intermediates, without duplicates."""
        anchors: dict[bytes, x509.Certificate] = {}
        intermediates: dict[bytes, x509.Certificate] = {}
        for cert in certificates:
            target = anchors if cert.subject == cert.issuer else intermediates
            target.setdefault(cert.public_bytes(serialization.Encoding.DER), cert)
        return cls(tuple(anchors.values()), tuple(intermediates.values()))

    @cached_property
    def store(self) -> Store | None:
        """The cryptography Store of the anchors (None when there is none: nothing can be trusted)."""
        return Store(list(self.anchors)) if self.anchors else None

    @cached_property
    def _anchor_ders(self) -> frozenset[bytes]:
        return frozenset(cert.public_bytes(serialization.Encoding.DER) for cert in self.anchors)

    def is_anchor(self, cert: x509.Certificate) -> bool:
        """Whether ``cert`` itself (byte for byte) is one of the trust anchors."""
        return cert.public_bytes(serialization.Encoding.DER) in self._anchor_ders

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        """Every certificate of the store, anchors first."""
        return self.anchors + self.intermediates


def load_trust_store(
    cafile: PemSource | None = None, cadata: bytes | None = None, capath: str | None = None
) -> TrustStore:
    """The trusted certificates of a CA file, PEM data and/or a directory; the system bundle if none.

    Raises:
        ConfigError: a file cannot be read, or no certificate was found.
    """
    certs: list[x509.Certificate] = []
    if cafile is not None:
        certs += load_certificate_chain(cafile)
    if cadata is not None:
        certs += load_certificate_chain(cadata)
    if capath is not None:
        try:
            entries = sorted(Path(capath).iterdir())
        except OSError as exc:
            raise ConfigError(f"cannot read the CA directory {capath}: {exc.strerror or exc}") from exc
        for entry in entries:
            if entry.is_file():
                certs += _parse_pem_certificates(_read(entry))
    if cafile is None and cadata is None and capath is None:
        bundle = system_ca_bundle()
        if bundle is None:
            raise ConfigError("no CA file given and no system CA bundle found")
        certs += _parse_pem_certificates(_read(bundle))
    if not certs:
        raise ConfigError("the trust store is empty")
    return TrustStore.of(certs)


# -- CertificateVerify (RFC 8446 §4.4.3) ---------------------------------------------------------------


def certificate_verify_content(transcript_hash: bytes, *, server: bool) -> bytes:
    """The signed content: 64 spaces, the context string, a zero byte, the transcript hash."""
    return (_SERVER_PREFIX if server else _CLIENT_PREFIX) + transcript_hash


def schemes_for_key(key: PrivateKey | PublicKey) -> list[SignatureScheme]:
    """The CertificateVerify schemes a key can produce/verify, in default preference order."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return [s for s, (curve, _) in _ECDSA.items() if key.curve.name == curve]
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return list(_RSA_PSS)
    return [SignatureScheme.ed25519]


def choose_scheme(key: PrivateKey, peer_schemes: Collection[int], our_schemes: Sequence[int]) -> int | None:
    """The first of ``our_schemes`` usable with ``key`` that the peer offered, or None."""
    usable = set(schemes_for_key(key)) & set(peer_schemes)
    return next((s for s in our_schemes if s in usable), None)


def sign(key: PrivateKey, scheme: int, content: bytes) -> bytes:
    """Sign ``content`` with ``scheme`` (which must be one of :func:`schemes_for_key`)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(content)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(content, ec.ECDSA(_ECDSA[SignatureScheme(scheme)][1]))
    pss, algorithm = _pss(scheme)
    return key.sign(content, pss, algorithm)


_PREHASHED_ECDSA: Final[dict[int, tuple[Callable[[bytes], Any], ec.ECDSA]]] = {
    SignatureScheme.ecdsa_secp256r1_sha256: (hashlib.sha256, ec.ECDSA(Prehashed(hashes.SHA256()))),
    SignatureScheme.ecdsa_secp384r1_sha384: (hashlib.sha384, ec.ECDSA(Prehashed(hashes.SHA384()))),
}
"""ECDSA schemes as (hash constructor, signature algorithm over that hash's digest): the same signature
as ``ec.ECDSA(hash)`` over the content (ECDSA signs the digest, RFC 8446 §4.2.3), the algorithm object
made once, the content hashed by ``hashlib``."""


class Signer:
    """A configured private key prepared for CertificateVerify (RFC 8446 §4.4.3): the schemes it can
    sign with and its signature algorithm objects, worked out once per key instead of per handshake.
    Signs exactly as :func:`sign` and chooses exactly as :func:`choose_scheme`
    (tests/tls/test_signer.py compares them)."""

    __slots__ = ("_ec", "_ecdsa", "_ed25519", "_pss", "_rsa", "key", "schemes")

    def __init__(self, key: PrivateKey) -> None:
        self.key = key
        #: the schemes :func:`schemes_for_key` gives for ``key``
        self.schemes: frozenset[int] = frozenset(int(s) for s in schemes_for_key(key))
        # the key once more under its own type (one of the three is set), dispatched on once here
        self._ec: ec.EllipticCurvePrivateKey | None = None
        self._rsa: rsa.RSAPrivateKey | None = None
        self._ed25519: ed25519.Ed25519PrivateKey | None = None
        self._ecdsa: dict[int, tuple[Callable[[bytes], Any], ec.ECDSA]] = {}
        self._pss: dict[int, tuple[padding.PSS, hashes.HashAlgorithm]] = {}
        if isinstance(key, ec.EllipticCurvePrivateKey):
            self._ec = key
            self._ecdsa = {s: _PREHASHED_ECDSA[s] for s in self.schemes}
        elif isinstance(key, rsa.RSAPrivateKey):
            self._rsa = key
            self._pss = {s: _pss(s) for s in self.schemes}
        else:
            self._ed25519 = key

    def choose(self, peer_schemes: Collection[int], our_schemes: Sequence[int]) -> int | None:
        """:func:`choose_scheme` for this key: the first of ``our_schemes`` it can sign with that the
        peer offered, or None."""
        usable = self.schemes
        for scheme in our_schemes:
            if scheme in usable and scheme in peer_schemes:
                return int(scheme)
        return None

    def sign(self, scheme: int, content: bytes) -> bytes:
        """:func:`sign` with this key (``scheme`` must be one of :attr:`schemes`, else KeyError)."""
        if self._ec is not None:
            digest, algorithm = self._ecdsa[scheme]
            return self._ec.sign(digest(content).digest(), algorithm)
        if self._rsa is not None:
            pss, hash_algorithm = self._pss[scheme]
            return self._rsa.sign(content, pss, hash_algorithm)
        if self._ed25519 is None or scheme not in self.schemes:
            raise KeyError(scheme)
        return self._ed25519.sign(content)


def verify_signature(
    public_key: object, scheme: int, signature: bytes, content: bytes, allowed: Collection[int]
) -> None:
    """Check a CertificateVerify signature.

    Raises TLSAlert: illegal_parameter when ``scheme`` was not offered or does not fit the key,
    decrypt_error when the signature is wrong (RFC 8446 §4.4.3).
    """
    if not isinstance(public_key, PublicKey):
        raise alert(AlertDescription.unsupported_certificate, "unsupported certificate key type")
    if scheme not in allowed or scheme not in schemes_for_key(public_key):
        raise alert(AlertDescription.illegal_parameter, f"signature scheme {scheme:#06x} not acceptable")
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, content)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, content, ec.ECDSA(_ECDSA[SignatureScheme(scheme)][1]))
        else:
            pss, algorithm = _pss(scheme)
            public_key.verify(signature, content, pss, algorithm)
    except (InvalidSignature, ValueError):
        raise alert(AlertDescription.decrypt_error, "bad CertificateVerify signature") from None


def parse_certificates(ders: list[bytes]) -> list[x509.Certificate]:
    """DER certificates from a Certificate message; unparsable ones -> bad_certificate."""
    try:
        return [CERTIFICATES.load(der) for der in ders]
    except ValueError:
        raise alert(AlertDescription.bad_certificate, "unparsable certificate") from None
