"""TLS alert descriptions (RFC 8446 §6) and the helpers that turn failures into :class:`TLSAlert`.

Owns the alert code table only. In QUIC no alert record is ever sent: a fatal alert becomes the
transport error CRYPTO_ERROR 0x100 + alert (RFC 9001 §4.8), which is what :class:`rudp.errors.TLSAlert`
carries.
"""

from __future__ import annotations

from enum import IntEnum

from rudp.errors import TLSAlert


class AlertDescription(IntEnum):
    """TLS 1.3 alert descriptions (RFC 8446 §6, RFC 9846 Appendix B.2)."""

    close_notify = 0
    unexpected_message = 10
    bad_record_mac = 20
    record_overflow = 22
    handshake_failure = 40
    bad_certificate = 42
    unsupported_certificate = 43
    certificate_revoked = 44
    certificate_expired = 45
    certificate_unknown = 46
    illegal_parameter = 47
    unknown_ca = 48
    access_denied = 49
    decode_error = 50
    decrypt_error = 51
    protocol_version = 70
    insufficient_security = 71
    internal_error = 80
    inappropriate_fallback = 86
    user_canceled = 90
    missing_extension = 109
    unsupported_extension = 110
    unrecognized_name = 112
    bad_certificate_status_response = 113
    unknown_psk_identity = 115
    certificate_required = 116
    general_error = 117
    no_application_protocol = 120


def alert(description: AlertDescription, reason: str = "") -> TLSAlert:
    """Build the exception for a fatal ``description`` alert (raise it at the failure point)."""
    return TLSAlert(description, reason or description.name)


__all__ = ["AlertDescription", "TLSAlert", "alert"]
