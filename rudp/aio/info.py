"""The details ``get_extra_info()`` reports, with the names and shapes asyncio transports use.

Owns the translation of what rudp knows about a connection (peer certificate, cipher suite) into the
values ``asyncio.Transport.get_extra_info()`` returns over TLS: ``peercert`` as the dictionary of
``ssl.SSLSocket.getpeercert()`` and ``cipher`` as the tuple of ``ssl.SSLSocket.cipher()``. Both
transports go through these functions, so the same certificate gives the same dictionary over QUIC and
over the TCP baseline. It does not own the connection state (:mod:`rudp.aio.connection` asks for it).
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any, Final

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from rudp.crypto.suites import CipherSuite

EXTRA_INFO_NAMES: Final = ("peername", "sockname", "cipher", "peercert", "stream_id", "connection")
"""What ``Stream.get_extra_info()`` answers (``Connection.get_extra_info()``: all but the last two)."""

_LONG_NAMES: Final = {
    "2.5.4.3": "commonName",
    "2.5.4.4": "surname",
    "2.5.4.5": "serialNumber",
    "2.5.4.6": "countryName",
    "2.5.4.7": "localityName",
    "2.5.4.8": "stateOrProvinceName",
    "2.5.4.9": "streetAddress",
    "2.5.4.10": "organizationName",
    "2.5.4.11": "organizationalUnitName",
    "2.5.4.12": "title",
    "2.5.4.15": "businessCategory",
    "2.5.4.17": "postalCode",
    "2.5.4.42": "givenName",
    "2.5.4.43": "initials",
    "2.5.4.44": "generationQualifier",
    "2.5.4.46": "dnQualifier",
    "2.5.4.65": "pseudonym",
    "2.5.4.97": "organizationIdentifier",
    "1.2.840.113549.1.9.1": "emailAddress",
    "0.9.2342.19200300.100.1.1": "userId",
    "0.9.2342.19200300.100.1.25": "domainComponent",
    "1.3.6.1.4.1.311.60.2.1.1": "jurisdictionLocalityName",
    "1.3.6.1.4.1.311.60.2.1.2": "jurisdictionStateOrProvinceName",
    "1.3.6.1.4.1.311.60.2.1.3": "jurisdictionCountryName",
}
"""OpenSSL's long names of the usual name attributes (others are shown as dotted OIDs, as OpenSSL does)."""

_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_SECRET_BITS: Final = {
    CipherSuite.AES_128_GCM_SHA256: 128,
    CipherSuite.AES_256_GCM_SHA384: 256,
    CipherSuite.CHACHA20_POLY1305_SHA256: 256,
}


def cipher_tuple(suite: CipherSuite) -> tuple[str, str, int]:
    """``(name, protocol, secret bits)`` as ``ssl.SSLSocket.cipher()`` gives it for a TLS 1.3 suite."""
    return (f"TLS_{suite.name}", "TLSv1.3", _SECRET_BITS.get(suite, 0))


def _name_tuple(name: x509.Name) -> tuple[tuple[tuple[str, str], ...], ...]:
    rdns = []
    for rdn in name.rdns:
        pairs = []
        for attribute in rdn:
            oid = attribute.oid.dotted_string
            value = attribute.value
            text = value if isinstance(value, str) else bytes(value).decode("utf-8", "replace")
            pairs.append((_LONG_NAMES.get(oid, oid), text))
        rdns.append(tuple(pairs))
    return tuple(rdns)


def _time(moment: datetime) -> str:
    """OpenSSL's ASN1_TIME_print form: ``May  9 12:00:00 2026 GMT``."""
    return f"{_MONTHS[moment.month - 1]} {moment.day:2d} {moment:%H:%M:%S} {moment.year} GMT"


def _serial(number: int) -> str:
    digits = f"{abs(number):X}"
    if len(digits) % 2:
        digits = "0" + digits
    return ("-" if number < 0 else "") + digits


def _general_name(name: x509.GeneralName) -> tuple[str, Any]:
    if isinstance(name, x509.DNSName):
        return ("DNS", name.value)
    if isinstance(name, x509.IPAddress):
        address = name.value
        if isinstance(address, ipaddress.IPv6Address):
            groups = [int.from_bytes(address.packed[i : i + 2], "big") for i in range(0, 16, 2)]
            return ("IP Address", ":".join(f"{group:X}" for group in groups))
        if isinstance(address, ipaddress.IPv4Address):
            return ("IP Address", str(address))
        return ("IP Address", "<invalid>")
    if isinstance(name, x509.RFC822Name):
        return ("email", name.value)
    if isinstance(name, x509.UniformResourceIdentifier):
        return ("URI", name.value)
    if isinstance(name, x509.DirectoryName):
        return ("DirName", _name_tuple(name.value))
    if isinstance(name, x509.RegisteredID):
        return ("Registered ID", name.value.dotted_string)
    return ("othername", "<unsupported>")


def _extension(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> Any:
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def ssl_style_certificate(cert: x509.Certificate) -> dict[str, Any]:
    """``cert`` as the dictionary ``ssl.SSLSocket.getpeercert()`` returns (what asyncio's
    ``get_extra_info("peercert")`` gives): subject, issuer, version, serialNumber, notBefore, notAfter,
    and subjectAltName, OCSP, caIssuers and crlDistributionPoints when present."""
    info: dict[str, Any] = {
        "subject": _name_tuple(cert.subject),
        "issuer": _name_tuple(cert.issuer),
        "version": cert.version.value + 1,
        "serialNumber": _serial(cert.serial_number),
        "notBefore": _time(cert.not_valid_before_utc),
        "notAfter": _time(cert.not_valid_after_utc),
    }
    alt_names = _extension(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if alt_names is not None:
        info["subjectAltName"] = tuple(_general_name(name) for name in alt_names)
    access = _extension(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    if access is not None:
        for key, method in (
            ("OCSP", AuthorityInformationAccessOID.OCSP),
            ("caIssuers", AuthorityInformationAccessOID.CA_ISSUERS),
        ):
            uris = tuple(
                d.access_location.value
                for d in access
                if d.access_method == method and isinstance(d.access_location, x509.UniformResourceIdentifier)
            )
            if uris:
                info[key] = uris
    points = _extension(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS)
    if points is not None:
        uris = tuple(
            name.value
            for point in points
            for name in point.full_name or ()
            if isinstance(name, x509.UniformResourceIdentifier)
        )
        if uris:
            info["crlDistributionPoints"] = uris
    return info


__all__ = ["EXTRA_INFO_NAMES", "cipher_tuple", "ssl_style_certificate"]
