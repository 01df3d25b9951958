"""The client's ClientHello bytes (RFC 8446 §4.1.2), its extensions that come from the configuration
encoded once per distinct configuration.

Owns :func:`encode_client_hello`, the encoding :class:`~rudp.tls.client.TlsClient` sends: the same
bytes, in the same extension order, as :meth:`rudp.tls.messages.ClientHello.encode` of the same
fields. Of the extensions, server_name, supported_groups, signature_algorithms and ALPN (before the
transport parameters) and supported_versions and psk_key_exchange_modes (after them) are the same for
every connection of one configuration: they are kept joined, by their values (bounded), so a client
encodes only its random, suites, transport parameters, key share and PSK per connection.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from rudp.tls.extensions import (
    LEGACY_VERSION,
    TLS13,
    ExtensionType,
    OfferedPsks,
    PskKeyExchangeMode,
    encode_alpn,
    encode_client_key_shares,
    encode_client_versions,
    encode_cookie,
    encode_offered_psks,
    encode_psk_modes,
    encode_server_name,
    encode_uint16_list,
)
from rudp.tls.framing import HandshakeType, frame

_TYPE_AND_LENGTH: Final = struct.Struct(">HH")
_MAX_FIXED: Final = 32
_FIXED: dict[tuple[object, ...], tuple[bytes, bytes]] = {}
"""(extensions before the transport parameters, extensions after them) by their inputs."""
_HEAD: Final = LEGACY_VERSION.to_bytes(2, "big")
_EMPTY_SESSION_ID_AND_NULL_COMPRESSION: Final = (b"\x00", b"\x01\x00")
_TRANSPORT_PARAMETERS: Final = int(ExtensionType.quic_transport_parameters)
_KEY_SHARE: Final = int(ExtensionType.key_share)
_EARLY_DATA: Final = _TYPE_AND_LENGTH.pack(ExtensionType.early_data, 0)


def _extension(ext_type: int, data: bytes) -> bytes:
    return _TYPE_AND_LENGTH.pack(ext_type, len(data)) + data


def _fixed_extensions(
    server_name: str | None, groups: tuple[int, ...], schemes: tuple[int, ...], alpn: tuple[bytes, ...]
) -> tuple[bytes, bytes]:
    key = (server_name, groups, schemes, alpn)
    fixed = _FIXED.get(key)
    if fixed is None:
        before = b"".join(
            (
                b""
                if server_name is None
                else _extension(ExtensionType.server_name, encode_server_name(server_name)),
                _extension(ExtensionType.supported_groups, encode_uint16_list(list(groups))),
                _extension(ExtensionType.signature_algorithms, encode_uint16_list(list(schemes))),
                _extension(ExtensionType.application_layer_protocol_negotiation, encode_alpn(list(alpn))),
            )
        )
        after = _extension(ExtensionType.supported_versions, encode_client_versions([TLS13])) + _extension(
            ExtensionType.psk_key_exchange_modes, encode_psk_modes([PskKeyExchangeMode.psk_dhe_ke])
        )
        if len(_FIXED) >= _MAX_FIXED:
            del _FIXED[next(iter(_FIXED))]  # the oldest
        fixed = _FIXED[key] = (before, after)
    return fixed


def encode_client_hello(
    *,
    random: bytes,
    cipher_suites: Sequence[int],
    server_name: str | None,
    supported_groups: tuple[int, ...],
    signature_algorithms: tuple[int, ...],
    alpn_protocols: tuple[bytes, ...],
    key_shares: list[tuple[int, bytes]],
    transport_parameters: bytes,
    cookie: bytes | None = None,
    early_data: bool = False,
    pre_shared_key: OfferedPsks | None = None,
) -> bytes:
    """The whole ClientHello handshake message: ``ClientHello(...).encode()`` of these fields with
    supported_versions [TLS 1.3], psk_key_exchange_modes [psk_dhe_ke], an empty legacy_session_id
    (RFC 9001 §8.4) and the null compression method; pre_shared_key, if any, last (§4.2.11)."""
    before, after = _fixed_extensions(server_name, supported_groups, signature_algorithms, alpn_protocols)
    parts = [
        before,
        _TYPE_AND_LENGTH.pack(_TRANSPORT_PARAMETERS, len(transport_parameters)),
        transport_parameters,
        after,
        _extension(_KEY_SHARE, encode_client_key_shares(key_shares)),
    ]
    if cookie is not None:
        parts.append(_extension(ExtensionType.cookie, encode_cookie(cookie)))
    if early_data:
        parts.append(_EARLY_DATA)
    if pre_shared_key is not None:
        parts.append(_extension(ExtensionType.pre_shared_key, encode_offered_psks(pre_shared_key)))
    extensions = b"".join(parts)
    session_id, compression = _EMPTY_SESSION_ID_AND_NULL_COMPRESSION
    body = b"".join(
        (
            _HEAD,
            random,
            session_id,
            struct.pack(f">{len(cipher_suites) + 1}H", 2 * len(cipher_suites), *cipher_suites),
            compression,
            len(extensions).to_bytes(2, "big"),
            extensions,
        )
    )
    return frame(HandshakeType.client_hello, body)


__all__ = ["encode_client_hello"]
