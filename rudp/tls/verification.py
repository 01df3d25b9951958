"""Peer certificate verification (RFC 8446 §4.4.2.4), with the verdicts of Python's ``ssl`` module.

Owns the verification policy and the words of its failures, for both transports:

* :func:`verify_chain` (QUIC client) and :func:`verify_client_chain` (QUIC server, client
  authentication) verify with ``cryptography.x509.verification`` — chain building, signatures,
  validity dates and DNS/IP subjectAltName matching are cryptography's. Its web-PKI extension
  policies are relaxed through the ``ExtensionPolicy`` API, and only where OpenSSL (hence the TCP
  baseline) accepts what they refuse: a CA certificate without keyUsage or with a non-critical
  basicConstraints, a leaf without authorityKeyIdentifier, and a self-signed server certificate
  (basicConstraints cA=TRUE, as ``openssl req -x509`` makes it) that is itself in the trust store.
  Trust anchors are the self-signed certificates of the store (see :class:`TrustStore`).
* A failure is then explained in OpenSSL's order of precedence — not trusted, unusable, name
  mismatch, outside its validity dates — by re-running the verification with relaxed inputs, and
  worded by :func:`certificate_failure` with what to do about it.
* :func:`ssl_verification_failure` words an ``ssl.SSLCertVerificationError`` of the TCP baseline the
  same way, from OpenSSL's verify code and the peer's chain (captured by :class:`PeerChainSSLObject`),
  so a failure reads the same over QUIC and TCP.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    Subject,
    VerificationError,
)

from rudp.errors import TLSAlert
from rudp.tls.alerts import AlertDescription, alert
from rudp.tls.certs import TrustStore

# -- Policies ----------------------------------------------------------------------------------------


def _issuer_basic_constraints(_: Policy, __: x509.Certificate, value: x509.BasicConstraints) -> None:
    # OpenSSL wants cA=TRUE in an issuer but does not care whether the extension is marked critical
    # (OpenSSL 1.1 made CAs with a non-critical one); the path length is still checked by cryptography.
    if not value.ca:
        raise ValueError("basicConstraints of the issuing certificate does not assert cA")


def _issuer_key_usage(_: Policy, __: x509.Certificate, value: x509.KeyUsage | None) -> None:
    # OpenSSL accepts a CA without keyUsage (``openssl req -x509`` makes them); present, it must allow
    # signing certificates.
    if value is not None and not value.key_cert_sign:
        raise ValueError("keyUsage of the issuing certificate does not allow keyCertSign")


def _self_trusted_key_usage(_: Policy, __: x509.Certificate, value: x509.KeyUsage | None) -> None:
    # A trusted self-signed certificate may also allow keyCertSign; it must still be allowed to sign
    # the handshake (RFC 8446 §4.4.2.2).
    if value is not None and not value.digital_signature:
        raise ValueError("keyUsage does not allow digitalSignature")


CA_POLICY: Final = (
    ExtensionPolicy.webpki_defaults_ca()
    .require_present(x509.BasicConstraints, Criticality.AGNOSTIC, _issuer_basic_constraints)
    .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _issuer_key_usage)
)
"""Issuers: the web-PKI CA policy, keyUsage optional and basicConstraints of either criticality."""

EE_POLICY: Final = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None
)
"""Leaves: the web-PKI end-entity policy (name in subjectAltName, no cA, serverAuth if EKU is
present), with authorityKeyIdentifier optional as in OpenSSL."""

SELF_TRUSTED_EE_POLICY: Final = EE_POLICY.may_be_present(
    x509.BasicConstraints, Criticality.AGNOSTIC, None
).may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, _self_trusted_key_usage)
"""A leaf that is itself a trust anchor: cA=TRUE and keyCertSign allowed, everything else as above."""


def _ee_policy(trust: TrustStore, leaf: x509.Certificate) -> ExtensionPolicy:
    return SELF_TRUSTED_EE_POLICY if trust.is_anchor(leaf) else EE_POLICY


def _subject(server_name: str) -> Subject:
    try:
        return x509.IPAddress(ipaddress.ip_address(server_name))
    except ValueError:
        return x509.DNSName(server_name)


def _own_subject(leaf: x509.Certificate) -> Subject | None:
    """A name the certificate's subjectAltName covers (a wildcard filled in), or None."""
    for name in _san_names(leaf) or ():
        try:
            return _subject(name.replace("*", "x", 1) if name.startswith("*.") else name)
        except ValueError:
            continue
    return None


_PYTHON_VALIDATOR = re.compile(r"Python extension validator failed: \w+: ")


def _reason(exc: Exception) -> str:
    """cryptography's reason without its prefixes and certificate dump."""
    text = str(exc).split(" (encountered processing", 1)[0]
    text = text.removeprefix("validation failed: ").removeprefix("candidates exhausted: ")
    return _PYTHON_VALIDATOR.sub("", text)


def _verify(
    chain: Sequence[x509.Certificate],
    trust: TrustStore,
    at: datetime,
    subject: Subject | None,
    ca_policy: ExtensionPolicy,
    ee_policy: ExtensionPolicy,
) -> list[x509.Certificate]:
    """The verified chain (leaf to anchor). Raises VerificationError (or ValueError) if there is none."""
    if trust.store is None:
        raise VerificationError("no self-signed certificate in the trust store")
    builder = (
        PolicyBuilder()
        .store(trust.store)
        .time(at)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
    )
    intermediates = [*chain[1:], *trust.intermediates]
    if subject is None:
        return builder.build_client_verifier().verify(chain[0], intermediates).chain
    return builder.build_server_verifier(subject).verify(chain[0], intermediates)


# -- Failures ----------------------------------------------------------------------------------------


class CertificateProblem(Enum):
    """Why a certificate chain was refused, in OpenSSL's order of precedence."""

    UNTRUSTED = "untrusted"
    """no chain to a trust anchor (unknown issuer, self-signed and not trusted, bad signature)"""
    REJECTED = "rejected"
    """a chain exists but a certificate in it may not be used so (purpose, CA constraints, key)"""
    NAME_MISMATCH = "name mismatch"
    """the leaf's subjectAltName does not cover the server name"""
    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"


_ALERTS: Final = {
    CertificateProblem.UNTRUSTED: AlertDescription.unknown_ca,
    CertificateProblem.REJECTED: AlertDescription.bad_certificate,
    CertificateProblem.NAME_MISMATCH: AlertDescription.bad_certificate,
    CertificateProblem.EXPIRED: AlertDescription.certificate_expired,
    CertificateProblem.NOT_YET_VALID: AlertDescription.certificate_expired,
}

_MAX_NAMES: Final = 3


def _san_names(cert: x509.Certificate) -> list[str] | None:
    """The DNS names and IP addresses of the subjectAltName, or None without the extension."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    dns = san.get_values_for_type(x509.DNSName)
    return [*dns, *(str(address) for address in san.get_values_for_type(x509.IPAddress))]


def _common_name(cert: x509.Certificate) -> str | None:
    try:
        attributes = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    return str(attributes[0].value) if attributes else None


def _leaf_label(cert: x509.Certificate | None, fallback: str) -> str:
    """'certificate for localhost, 127.0.0.1' — named by its subjectAltName, else its common name."""
    names = _san_names(cert) if cert is not None else None
    if names:
        shown = ", ".join(names[:_MAX_NAMES])
        more = len(names) - _MAX_NAMES
        return f"certificate for {shown}" + (f" (and {more} more)" if more > 0 else "")
    name = _common_name(cert) if cert is not None else None
    return f"certificate for {name or fallback}"


def _label(cert: x509.Certificate, *, leaf: bool, fallback: str) -> str:
    if leaf:
        return _leaf_label(cert, fallback)
    return f"CA certificate '{_common_name(cert) or cert.subject.rfc4514_string()}'"


def _date(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def certificate_failure(
    problem: CertificateProblem,
    server_name: str,
    chain: Sequence[x509.Certificate],
    at: datetime,
    detail: str = "",
    *,
    purpose: x509.ObjectIdentifier = ExtendedKeyUsageOID.SERVER_AUTH,
) -> TLSAlert:
    """The alert for ``problem`` with a message saying what is wrong and what to do, the same for
    both transports.

    ``chain`` is the peer's chain, leaf first, as built (QUIC) or as sent (TCP); it may be empty when
    the certificates are unknown. ``at`` is the verification time, ``detail`` the verifier's own
    reason for :attr:`CertificateProblem.REJECTED`, ``purpose`` the extended key usage the
    certificate needs (serverAuth, or clientAuth for a client certificate).
    """
    leaf = chain[0] if chain else None
    who = _leaf_label(leaf, server_name)
    if problem is CertificateProblem.UNTRUSTED:
        if leaf is not None and leaf.subject == leaf.issuer:
            how = "it is self-signed: pass the certificate itself as cafile=... (--ca FILE)"
        else:
            how = "pass cafile=... (--ca FILE) with the CA that issued it"
        message = f"{who} is not trusted: {how}, or verify=False (--insecure) for a test"
    elif problem is CertificateProblem.NAME_MISMATCH:
        if leaf is not None and _san_names(leaf) is None:
            kind = "IP" if isinstance(_subject(server_name), x509.IPAddress) else "DNS"
            message = (
                f"{who} has no subjectAltName, so it matches no server name (the common name is not "
                f"used): reissue it with subjectAltName={kind}:{server_name}"
            )
        else:
            message = (
                f"{who} does not match the server name {server_name}: connect with one of its names, "
                "or set server_name=... (--server-name NAME)"
            )
    elif problem in (CertificateProblem.EXPIRED, CertificateProblem.NOT_YET_VALID):
        message = _date_message(problem, chain, at, server_name) or f"{who} is {problem.value}"
    elif leaf is not None and _lacks_purpose(leaf, purpose):
        role, usage = _PURPOSES.get(purpose, ("peers", purpose.dotted_string))
        message = f"{who} is not for TLS {role}: its extendedKeyUsage does not include {usage}"
    else:
        message = f"{who} was rejected: {detail or 'unusable certificate'}"
    return alert(_ALERTS[problem], message)


_PURPOSES: Final = {
    ExtendedKeyUsageOID.SERVER_AUTH: ("servers", "serverAuth"),
    ExtendedKeyUsageOID.CLIENT_AUTH: ("clients", "clientAuth"),
}


def _lacks_purpose(cert: x509.Certificate, purpose: x509.ObjectIdentifier) -> bool:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return purpose not in usages


def _date_message(
    problem: CertificateProblem, chain: Sequence[x509.Certificate], at: datetime, server_name: str
) -> str | None:
    # OpenSSL checks dates from the anchor down to the leaf and reports the first failure
    for depth in reversed(range(len(chain))):
        cert = chain[depth]
        label = _label(cert, leaf=depth == 0, fallback=server_name)
        if problem is CertificateProblem.EXPIRED and at > cert.not_valid_after_utc:
            return f"{label} expired on {_date(cert.not_valid_after_utc)}: renew it (or check the clock)"
        if problem is CertificateProblem.NOT_YET_VALID and at < cert.not_valid_before_utc:
            return f"{label} is not valid before {_date(cert.not_valid_before_utc)}: check the clock"
    return None


def _related(chain: Sequence[x509.Certificate], trust: TrustStore, at: datetime) -> list[x509.Certificate]:
    """``chain`` plus the store's certificates that may issue it, up the issuer names (those valid at
    ``at`` when a name has several)."""
    related = list(chain)
    issuers = {cert.issuer for cert in chain if cert.issuer != cert.subject}
    for _ in range(8):
        found = [c for c in trust.certificates if c.subject in issuers and c not in related]
        if not found:
            break
        found = [c for c in found if c.not_valid_before_utc <= at <= c.not_valid_after_utc] or found
        related += found
        issuers = {c.issuer for c in found if c.issuer != c.subject}
    return related


def _date_problem(certs: Sequence[x509.Certificate], at: datetime) -> CertificateProblem | None:
    # OpenSSL checks dates from the anchor down to the leaf and reports the first failure
    for cert in reversed(certs):
        if at > cert.not_valid_after_utc:
            return CertificateProblem.EXPIRED
        if at < cert.not_valid_before_utc:
            return CertificateProblem.NOT_YET_VALID
    return None


_PERMISSIVE_CA: Final = ExtensionPolicy.permit_all().require_present(
    x509.BasicConstraints, Criticality.AGNOSTIC, None
)
_PERMISSIVE_EE: Final = ExtensionPolicy.permit_all()
_PATH_LENGTH: Final = "path length constraint"
_NAME_ONLY_EE: Final = ExtensionPolicy.permit_all().require_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)


def _name_matches(leaf: x509.Certificate, subject: Subject, at: datetime) -> bool:
    """Whether cryptography matches ``subject`` against the leaf's subjectAltName (the leaf alone,
    trusted as itself at a time it is valid)."""
    when = min(max(at, leaf.not_valid_before_utc), leaf.not_valid_after_utc)
    try:
        PolicyBuilder().store(Store([leaf])).time(when).extension_policies(
            ca_policy=_PERMISSIVE_CA, ee_policy=_NAME_ONLY_EE
        ).build_server_verifier(subject).verify(leaf, [])
    except (VerificationError, ValueError):
        return False
    return True


def _explain(
    chain: Sequence[x509.Certificate], trust: TrustStore, at: datetime, subject: Subject | None
) -> tuple[CertificateProblem, str, list[x509.Certificate]]:
    """Why verification failed at ``at``: (problem, detail, chain to describe).

    Checked in OpenSSL's order — a path to an anchor, the certificates' extensions, the name, the
    dates — at a time when every certificate that may make the chain is valid, so that dates are
    judged last as OpenSSL does. When there is no such time, the dates are wrong whatever else is.
    """
    leaf = chain[0]
    related = _related(chain, trust, at)
    start = max(cert.not_valid_before_utc for cert in related)
    end = min(cert.not_valid_after_utc for cert in related)
    if start > end:
        if subject is not None and not _name_matches(leaf, subject, at):
            return CertificateProblem.NAME_MISMATCH, "", list(chain)
        return _date_problem(related, at) or CertificateProblem.REJECTED, "", related
    probe = min(max(at, start), end)
    try:  # a path to an anchor at all, whatever the extensions say (names and usages included)
        _verify(chain, trust, probe, None, _PERMISSIVE_CA, _PERMISSIVE_EE)
    except (VerificationError, ValueError) as exc:
        # path lengths are checked outside the extension policies: a path that breaks one exists
        problem = CertificateProblem.REJECTED if _PATH_LENGTH in str(exc) else CertificateProblem.UNTRUSTED
        return problem, _reason(exc), list(chain)
    ee_policy = _ee_policy(trust, leaf)
    own: Subject | None = None
    if subject is not None:
        # cryptography always matches a server verifier's subject: check the rest with a name the
        # certificate has, then the real name
        own = _own_subject(leaf)
        if own is None:
            return CertificateProblem.NAME_MISMATCH, "", list(chain)
    try:
        built = _verify(chain, trust, probe, own, CA_POLICY, ee_policy)
    except (VerificationError, ValueError) as exc:
        return CertificateProblem.REJECTED, _reason(exc), list(chain)
    if subject is not None:
        try:
            built = _verify(chain, trust, probe, subject, CA_POLICY, ee_policy)
        except (VerificationError, ValueError) as exc:
            return CertificateProblem.NAME_MISMATCH, _reason(exc), list(chain)
    return _date_problem(built, at) or CertificateProblem.REJECTED, "", built


def _ders(chain: Sequence[x509.Certificate]) -> tuple[bytes, ...]:
    return tuple(cert.public_bytes(Encoding.DER) for cert in chain)


def verify_chain(chain: list[x509.Certificate], server_name: str, trust: TrustStore, at: datetime) -> None:
    """Verify a server's ``chain`` (leaf first) for ``server_name`` at time ``at`` against ``trust``.

    A chain that verified is remembered by ``trust.verified`` with the window in which all of it is
    valid: the same bytes for the same name within that window are accepted without building the chain
    again (see :mod:`rudp.tls.cert_cache`); a failure is never remembered.

    Raises TLSAlert: unknown_ca (no chain to a trust anchor), bad_certificate (name mismatch or
    unusable certificate) or certificate_expired (outside its validity dates), with a message from
    :func:`certificate_failure`.
    """
    ders = _ders(chain)
    if trust.verified.holds(ders, server_name, at):
        return
    try:
        subject = _subject(server_name)
        built = _verify(chain, trust, at, subject, CA_POLICY, _ee_policy(trust, chain[0]))
    except (VerificationError, ValueError) as exc:
        try:
            problem, detail, described = _explain(chain, trust, at, _subject(server_name))
        except ValueError:  # a server name cryptography cannot take
            problem, detail, described = CertificateProblem.REJECTED, _reason(exc), list(chain)
        raise certificate_failure(problem, server_name, described, at, detail or _reason(exc)) from None
    trust.verified.remember(ders, server_name, built)


def verify_client_chain(chain: list[x509.Certificate], trust: TrustStore, at: datetime) -> None:
    """Verify a client certificate chain (leaf first) for TLS client authentication at time ``at``.

    Raises TLSAlert: certificate_expired, unknown_ca (no chain to a trust anchor) or bad_certificate.
    """
    ders = _ders(chain)
    if trust.verified.holds(ders, None, at):
        return
    try:
        built = _verify(chain, trust, at, None, CA_POLICY, _ee_policy(trust, chain[0]))
    except (VerificationError, ValueError) as exc:
        problem, detail, described = _explain(chain, trust, at, None)
        if problem is CertificateProblem.NAME_MISMATCH:  # no name to match: the client profile refused it
            problem = CertificateProblem.REJECTED
        failure = certificate_failure(
            problem,
            "the client",
            described,
            at,
            detail or _reason(exc),
            purpose=ExtendedKeyUsageOID.CLIENT_AUTH,
        )
        raise failure from None
    trust.verified.remember(ders, None, built)


# -- The TCP baseline (Python's ssl module) ---------------------------------------------------------

# OpenSSL X509_V_ERR_* codes, as found in SSLCertVerificationError.verify_code
_OPENSSL_PROBLEMS: Final = {
    2: CertificateProblem.UNTRUSTED,  # unable to get issuer certificate
    7: CertificateProblem.UNTRUSTED,  # certificate signature failure
    18: CertificateProblem.UNTRUSTED,  # self-signed certificate (not trusted)
    19: CertificateProblem.UNTRUSTED,  # self-signed certificate in certificate chain
    20: CertificateProblem.UNTRUSTED,  # unable to get local issuer certificate
    21: CertificateProblem.UNTRUSTED,  # unable to verify the first certificate
    27: CertificateProblem.UNTRUSTED,  # certificate not trusted
    9: CertificateProblem.NOT_YET_VALID,
    10: CertificateProblem.EXPIRED,
    62: CertificateProblem.NAME_MISMATCH,  # hostname mismatch
    64: CertificateProblem.NAME_MISMATCH,  # IP address mismatch
}


class PeerChainSSLObject(ssl.SSLObject):
    """An ``SSLObject`` that keeps the peer's certificates on a failed verification.

    Set as ``SSLContext.sslobject_class``: when OpenSSL refuses the server's chain, the chain it built
    (leaf first, up to the trust anchor when it found one) or else the certificates the server sent
    are attached to the ``ssl.SSLCertVerificationError`` (see :func:`peer_chain`), so the failure can
    name the certificate and its dates.
    """

    def do_handshake(self) -> None:
        """Run the handshake; on a verification failure, attach the peer's chain."""
        try:
            super().do_handshake()
        except ssl.SSLCertVerificationError as exc:
            exc.rudp_peer_chain = _chain_of(self)  # type: ignore[attr-defined]
            raise


def _chain_of(ssl_object: ssl.SSLObject) -> list[x509.Certificate]:
    # Python 3.13 has SSLObject.get_verified_chain()/get_unverified_chain(); 3.10 to 3.12 have them
    # on the _ssl object only. After a failed verification, the "verified" chain is the one OpenSSL
    # built so far (with the anchor when it got that far).
    inner = getattr(ssl_object, "_sslobj", None)
    for method in ("get_verified_chain", "get_unverified_chain"):
        getter: Any = getattr(ssl_object, method, None) or getattr(inner, method, None)
        try:
            raw = getter() if getter is not None else None
            certs = []
            for item in raw or ():
                der = item if isinstance(item, bytes) else ssl.PEM_cert_to_DER_cert(item.public_bytes())
                certs.append(x509.load_der_x509_certificate(der))
        except (ssl.SSLError, ValueError, AttributeError, TypeError):
            continue
        if certs:
            return certs
    return []


def peer_chain(exc: ssl.SSLCertVerificationError) -> list[x509.Certificate]:
    """The peer's chain, leaf first, if :class:`PeerChainSSLObject` captured it."""
    chain = getattr(exc, "rudp_peer_chain", None)
    return list(chain) if isinstance(chain, list) else []


def ssl_verification_failure(exc: ssl.SSLCertVerificationError, server_name: str, at: datetime) -> TLSAlert:
    """The alert and message :func:`verify_chain` gives for the failure the ``ssl`` module reported."""
    code: object = getattr(exc, "verify_code", None)
    problem = _OPENSSL_PROBLEMS.get(code, CertificateProblem.REJECTED) if isinstance(code, int) else None
    detail = str(getattr(exc, "verify_message", None) or exc.reason or exc)
    return certificate_failure(
        problem or CertificateProblem.REJECTED, server_name, peer_chain(exc), at, detail
    )


__all__ = [
    "CA_POLICY",
    "EE_POLICY",
    "SELF_TRUSTED_EE_POLICY",
    "CertificateProblem",
    "PeerChainSSLObject",
    "TrustStore",
    "certificate_failure",
    "peer_chain",
    "ssl_verification_failure",
    "verify_chain",
    "verify_client_chain",
]
