"""TLS 1.3 handshake messages used by QUIC: dataclasses, encoders and strict decoders (RFC 8446 §4).

Owns one dataclass per message (ClientHello, ServerHello/HelloRetryRequest, EncryptedExtensions,
CertificateRequest, Certificate, CertificateVerify, Finished, NewSessionTicket); the framing and the
reassembly of CRYPTO bytes into messages are :mod:`rudp.tls.framing`.

Every decoder takes the message body and raises only :class:`rudp.errors.TLSAlert`: truncation and
trailing bytes become decode_error, structurally valid but forbidden values their specific alert.
Extensions are decoded into typed fields; extensions this stack does not know are kept raw in
``other_extensions`` (ClientHello) or rejected where the RFC says so (ServerHello).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

from rudp.codec.buffer import Reader, Writer
from rudp.errors import DecodeError, TLSAlert
from rudp.tls import extensions as ext
from rudp.tls.alerts import AlertDescription, alert
from rudp.tls.extensions import Extensions, ExtensionType, OfferedPsks
from rudp.tls.framing import HandshakeType, decode_body, frame

T = TypeVar("T")

#: ServerHello.random of a HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3)
HRR_RANDOM: Final = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")

_SUPPORTED_VERSIONS_2: Final = int(ExtensionType.supported_versions).to_bytes(2, "big") + b"\x00\x02"
_KEY_SHARE: Final = int(ExtensionType.key_share).to_bytes(2, "big")
_COOKIE: Final = int(ExtensionType.cookie).to_bytes(2, "big")
_PRE_SHARED_KEY_2: Final = int(ExtensionType.pre_shared_key).to_bytes(2, "big") + b"\x00\x02"
_EARLY_DATA_4: Final = int(ExtensionType.early_data).to_bytes(2, "big") + b"\x00\x04"
_TYPE_AND_LENGTH: Final = struct.Struct(">HH")
_SERVER_NAME_EMPTY: Final = _TYPE_AND_LENGTH.pack(ExtensionType.server_name, 0)
_EARLY_DATA_EMPTY: Final = _TYPE_AND_LENGTH.pack(ExtensionType.early_data, 0)
_GROUPS: Final = int(ExtensionType.supported_groups)
_ALPN: Final = int(ExtensionType.application_layer_protocol_negotiation)
_TRANSPORT_PARAMETERS: Final = int(ExtensionType.quic_transport_parameters)
_PRE_SHARED_KEY: Final = int(ExtensionType.pre_shared_key)
"""EncryptedExtensions and NewSessionTicket extension heads (and types), encoded once."""
"""ServerHello extension types (and the length of those of two bytes), encoded once."""
_VERSIONS: Final = int(ExtensionType.supported_versions)
_SHARE: Final = int(ExtensionType.key_share)
_VERSION_AND_SHARE: Final = struct.Struct(">HHHHHHH")
"""A ServerHello's supported_versions (type, length 2, version) and key_share head (type, length,
group, key length)"""
_SUITE_ETC: Final = struct.Struct(">HBH")
"""A ServerHello's cipher_suite, legacy_compression_method and extensions length"""
_SIGNATURE_HEAD: Final = struct.Struct(">IHH")
"""A CertificateVerify's handshake header (type and length in 4 bytes), scheme and signature length"""
_ALPN_ONE: Final = struct.Struct(">HHHB")
"""An ALPN extension naming one protocol (RFC 7301 §3.1): type, length, list length, name length"""


def _payload(decoder: Callable[[bytes], T], data: bytes) -> T:
    try:
        return decoder(data)
    except TLSAlert:
        raise
    except DecodeError as exc:
        raise alert(AlertDescription.decode_error, f"malformed extension: {exc.reason}") from None


# -- ClientHello (RFC 8446 §4.1.2) --------------------------------------------------------------------


@dataclass(slots=True)
class ClientHello:
    """A ClientHello with the extensions this stack understands decoded into fields."""

    random: bytes
    cipher_suites: list[int]
    legacy_session_id: bytes = b""
    legacy_version: int = ext.LEGACY_VERSION
    compression_methods: bytes = b"\x00"
    server_name: str | None = None
    supported_versions: list[int] | None = None
    supported_groups: list[int] | None = None
    signature_algorithms: list[int] | None = None
    key_shares: list[tuple[int, bytes]] | None = None
    alpn_protocols: list[bytes] | None = None
    psk_modes: list[int] | None = None
    early_data: bool = False
    cookie: bytes | None = None
    transport_parameters: bytes | None = None
    pre_shared_key: OfferedPsks | None = None
    other_extensions: Extensions = field(default_factory=list)

    def encode(self) -> bytes:
        """The whole handshake message; pre_shared_key, if any, is the last extension (§4.2.11)."""
        exts: Extensions = []
        if self.server_name is not None:
            exts.append((ExtensionType.server_name, ext.encode_server_name(self.server_name)))
        if self.supported_groups is not None:
            exts.append((ExtensionType.supported_groups, ext.encode_uint16_list(self.supported_groups)))
        if self.signature_algorithms is not None:
            sig = ext.encode_uint16_list(self.signature_algorithms)
            exts.append((ExtensionType.signature_algorithms, sig))
        if self.alpn_protocols is not None:
            alpn = ext.encode_alpn(self.alpn_protocols)
            exts.append((ExtensionType.application_layer_protocol_negotiation, alpn))
        if self.transport_parameters is not None:
            exts.append((ExtensionType.quic_transport_parameters, self.transport_parameters))
        if self.supported_versions is not None:
            versions = ext.encode_client_versions(self.supported_versions)
            exts.append((ExtensionType.supported_versions, versions))
        if self.psk_modes is not None:
            exts.append((ExtensionType.psk_key_exchange_modes, ext.encode_psk_modes(self.psk_modes)))
        if self.key_shares is not None:
            exts.append((ExtensionType.key_share, ext.encode_client_key_shares(self.key_shares)))
        if self.cookie is not None:
            exts.append((ExtensionType.cookie, ext.encode_cookie(self.cookie)))
        if self.early_data:
            exts.append((ExtensionType.early_data, b""))
        exts.extend(self.other_extensions)
        if self.pre_shared_key is not None:
            exts.append((ExtensionType.pre_shared_key, ext.encode_offered_psks(self.pre_shared_key)))
        w = Writer()
        w.push_uint16(self.legacy_version)
        w.push_bytes(self.random)
        w.push_block(1, self.legacy_session_id)
        w.push_bytes(ext.encode_uint16_list(self.cipher_suites))
        w.push_block(1, self.compression_methods)
        ext.push_extensions(w, exts)
        return frame(HandshakeType.client_hello, w.getvalue())

    @classmethod
    def decode(cls, body: bytes) -> ClientHello:
        """Decode a ClientHello body (without the 4-byte handshake header)."""
        try:
            return _decode_well_formed(bytes(body))
        except Exception:  # malformed: the general decoder below raises its alert
            pass
        return decode_body(body, cls._parse)

    @classmethod
    def _parse(cls, r: Reader) -> ClientHello:
        legacy_version = r.pull_uint16()
        random = r.pull_bytes(32)
        session_id = bytes(r.pull_block(1))
        suites_raw = r.pull_block(2)
        if len(session_id) > 32 or not suites_raw or len(suites_raw) % 2:
            raise DecodeError("bad ClientHello header")
        suites = ext.unpack_uint16s(suites_raw)
        compression = bytes(r.pull_block(1))
        if not compression:
            raise DecodeError("empty compression methods")
        hello = cls(random, suites, session_id, legacy_version, compression)
        raw_exts = ext.pull_extensions(r) if not r.eof() else []
        last = len(raw_exts) - 1
        for index, (ext_type, data) in enumerate(raw_exts):
            decoder = _CLIENT_HELLO_DECODERS.get(ext_type)
            if decoder is None:
                hello.other_extensions.append((ext_type, data))
                continue
            decoder(hello, data)
            if ext_type == ExtensionType.pre_shared_key and index != last:
                raise alert(AlertDescription.illegal_parameter, "pre_shared_key is not the last extension")
        return hello


def _client_hello_field(
    name: str, decoder: Callable[[bytes], object]
) -> Callable[[ClientHello, bytes], None]:
    def decode(hello: ClientHello, data: bytes) -> None:
        setattr(hello, name, _payload(decoder, data))

    return decode


def _set_transport_parameters(hello: ClientHello, data: bytes) -> None:
    hello.transport_parameters = data  # opaque here: QUIC decodes them (RFC 9001 §8.2)


def _set_early_data(hello: ClientHello, data: bytes) -> None:
    _payload(ext.decode_empty, data)
    hello.early_data = True


# One decoder per ClientHello extension this stack understands, looked up by code point (one dict
# lookup per extension instead of a chain of comparisons); the others go to other_extensions.
_CLIENT_HELLO_DECODERS: Final[dict[int, Callable[[ClientHello, bytes], None]]] = {
    ExtensionType.server_name: _client_hello_field("server_name", ext.decode_server_name),
    ExtensionType.supported_groups: _client_hello_field("supported_groups", ext.decode_uint16_list),
    ExtensionType.signature_algorithms: _client_hello_field("signature_algorithms", ext.decode_uint16_list),
    ExtensionType.application_layer_protocol_negotiation: _client_hello_field(
        "alpn_protocols", ext.decode_alpn
    ),
    ExtensionType.quic_transport_parameters: _set_transport_parameters,
    ExtensionType.supported_versions: _client_hello_field("supported_versions", ext.decode_client_versions),
    ExtensionType.psk_key_exchange_modes: _client_hello_field("psk_modes", ext.decode_psk_modes),
    ExtensionType.key_share: _client_hello_field("key_shares", ext.decode_client_key_shares),
    ExtensionType.cookie: _client_hello_field("cookie", ext.decode_cookie),
    ExtensionType.early_data: _set_early_data,
    ExtensionType.pre_shared_key: _client_hello_field("pre_shared_key", ext.decode_offered_psks),
}


def _early_data(data: bytes) -> bool:
    if data:
        raise DecodeError("extension must be empty")
    return True


_CLIENT_HELLO_FIELDS: Final[dict[int, tuple[str, Callable[[bytes], object]]]] = {
    ExtensionType.server_name: ("server_name", ext.decode_server_name),
    ExtensionType.supported_groups: ("supported_groups", ext.decode_uint16_list),
    ExtensionType.signature_algorithms: ("signature_algorithms", ext.decode_uint16_list),
    ExtensionType.application_layer_protocol_negotiation: ("alpn_protocols", ext.decode_alpn),
    ExtensionType.quic_transport_parameters: ("transport_parameters", bytes),
    ExtensionType.supported_versions: ("supported_versions", ext.decode_client_versions),
    ExtensionType.psk_key_exchange_modes: ("psk_modes", ext.decode_psk_modes),
    ExtensionType.key_share: ("key_shares", ext.decode_client_key_shares),
    ExtensionType.cookie: ("cookie", ext.decode_cookie),
    ExtensionType.early_data: ("early_data", _early_data),
    ExtensionType.pre_shared_key: ("pre_shared_key", ext.decode_offered_psks),
}
"""(field, payload decoder) by extension type: :data:`_CLIENT_HELLO_DECODERS` for
:func:`_decode_well_formed`."""


def _decode_well_formed(body: bytes) -> ClientHello:
    """:meth:`ClientHello._parse` of a well-formed body, read by index with the same checks and the
    same extension decoders, in fewer calls; on anything malformed it raises some exception (which
    one does not matter: :meth:`ClientHello.decode` then runs the general decoder, which raises the
    alert). tests/tls/test_client_hello_encoding.py checks it agrees with the general decoder."""
    size = len(body)
    # legacy_version (2), random (32), legacy_session_id<0..32>, cipher_suites<2..2^16-2>,
    # legacy_compression_methods<1..2^8-1>, extensions<8..2^16-1> (RFC 8446 §4.1.2)
    suites_at = 35 + body[34]
    if suites_at > 67 or suites_at + 2 > size:
        raise ValueError
    suites_end = suites_at + 2 + ((body[suites_at] << 8) | body[suites_at + 1])
    suites_size = suites_end - suites_at - 2
    if not suites_size or suites_size & 1 or suites_end >= size:
        raise ValueError
    compression_end = suites_end + 1 + body[suites_end]
    if compression_end == suites_end + 1 or compression_end > size:
        raise ValueError
    hello = ClientHello(
        body[2:34],
        ext.unpack_uint16s_from(body, suites_at + 2, suites_size >> 1),
        body[35:suites_at],
        (body[0] << 8) | body[1],
        body[suites_end + 1 : compression_end],
    )
    if compression_end == size:
        return hello
    pos = compression_end + 2
    if pos > size or pos + ((body[compression_end] << 8) | body[compression_end + 1]) != size:
        raise ValueError
    # each extension is decoded as it is found: a structural fault further on still raises (and the
    # general decoder then gives its alert, whatever an earlier extension's decoder did)
    seen: set[int] = set()
    fields = _CLIENT_HELLO_FIELDS
    head = _TYPE_AND_LENGTH.unpack_from
    ext_type = -1
    while pos < size:
        start = pos + 4
        if start > size:
            raise ValueError
        ext_type, length = head(body, pos)
        pos = start + length
        if pos > size or ext_type in seen:
            raise ValueError
        seen.add(ext_type)
        known = fields.get(ext_type)
        if known is None:
            hello.other_extensions.append((ext_type, body[start:pos]))
        else:
            setattr(hello, known[0], known[1](body[start:pos]))
    if hello.pre_shared_key is not None and ext_type != _PRE_SHARED_KEY:
        raise ValueError
    return hello


# -- ServerHello and HelloRetryRequest (RFC 8446 §4.1.3, §4.1.4) ------------------------------------------

_SERVER_HELLO_EXTS: Final = frozenset(
    {ExtensionType.key_share, ExtensionType.pre_shared_key, ExtensionType.supported_versions}
)
_HRR_EXTS: Final = frozenset(
    {ExtensionType.key_share, ExtensionType.cookie, ExtensionType.supported_versions}
)


@dataclass(slots=True)
class ServerHello:
    """A ServerHello, or a HelloRetryRequest when ``random`` is :data:`HRR_RANDOM`.

    ``key_share`` is the server's (group, public key) in a ServerHello; ``selected_group`` is the
    group asked for by a HelloRetryRequest.
    """

    random: bytes
    cipher_suite: int
    legacy_session_id_echo: bytes = b""
    legacy_version: int = ext.LEGACY_VERSION
    compression_method: int = 0
    selected_version: int | None = ext.TLS13
    key_share: tuple[int, bytes] | None = None
    selected_group: int | None = None
    selected_identity: int | None = None
    cookie: bytes | None = None

    @property
    def is_retry_request(self) -> bool:
        """True for a HelloRetryRequest."""
        return self.random == HRR_RANDOM

    def encode(self) -> bytes:
        """The whole handshake message (joined from its fields: one per server handshake)."""
        version, share = self.selected_version, self.key_share
        if share is None or version is None or self.selected_group is not None or self.cookie is not None:
            return self._encode_general()
        # the ServerHello of every handshake: supported_versions and key_share, then pre_shared_key
        # when resuming (the order of _encode_general), the fixed-size fields in one struct call
        group, key = share
        size = len(key)
        session_id = self.legacy_session_id_echo
        try:
            extensions = _VERSION_AND_SHARE.pack(_VERSIONS, 2, version, _SHARE, size + 4, group, size) + key
            if self.selected_identity is not None:
                extensions += _PRE_SHARED_KEY_2 + self.selected_identity.to_bytes(2, "big")
            suite_etc = _SUITE_ETC.pack(self.cipher_suite, self.compression_method, len(extensions))
            body = b"".join(
                (
                    self.legacy_version.to_bytes(2, "big"),
                    self.random,
                    len(session_id).to_bytes(1, "big"),
                    session_id,
                    suite_etc,
                    extensions,
                )
            )
        except (struct.error, OverflowError):  # a field out of range: the general code's OverflowError
            return self._encode_general()
        return frame(HandshakeType.server_hello, body)

    def _encode_general(self) -> bytes:
        """:meth:`encode` of any field values (a HelloRetryRequest's among them)."""
        parts = [
            self.legacy_version.to_bytes(2, "big"),
            self.random,
            len(self.legacy_session_id_echo).to_bytes(1, "big"),
            self.legacy_session_id_echo,
            self.cipher_suite.to_bytes(2, "big"),
            self.compression_method.to_bytes(1, "big"),
            b"",  # the extensions' length, below
        ]
        if self.selected_version is not None:
            parts += (_SUPPORTED_VERSIONS_2, self.selected_version.to_bytes(2, "big"))
        if self.key_share is not None:
            group, key = self.key_share
            share = ext.encode_server_key_share(group, key)
            parts += (_KEY_SHARE, len(share).to_bytes(2, "big"), share)
        if self.selected_group is not None:
            parts += (_KEY_SHARE, b"\x00\x02", self.selected_group.to_bytes(2, "big"))
        if self.cookie is not None:
            cookie = ext.encode_cookie(self.cookie)
            parts += (_COOKIE, len(cookie).to_bytes(2, "big"), cookie)
        if self.selected_identity is not None:
            parts += (_PRE_SHARED_KEY_2, self.selected_identity.to_bytes(2, "big"))
        parts[6] = sum(map(len, parts[7:])).to_bytes(2, "big")
        return frame(HandshakeType.server_hello, b"".join(parts))

    @classmethod
    def decode(cls, body: bytes) -> ServerHello:
        """Decode a ServerHello/HelloRetryRequest body; unexpected extensions -> unsupported_extension."""
        return decode_body(body, cls._parse)

    @classmethod
    def _parse(cls, r: Reader) -> ServerHello:
        legacy_version = r.pull_uint16()
        random = r.pull_bytes(32)
        session_id = bytes(r.pull_block(1))
        suite = r.pull_uint16()
        compression = r.pull_uint8()
        hello = cls(random, suite, session_id, legacy_version, compression, selected_version=None)
        allowed = _HRR_EXTS if hello.is_retry_request else _SERVER_HELLO_EXTS
        for ext_type, data in ext.pull_extensions(r):
            if ext_type not in allowed:
                raise alert(AlertDescription.unsupported_extension, f"extension {ext_type} in ServerHello")
            if ext_type == ExtensionType.supported_versions:
                hello.selected_version = _payload(ext.decode_uint16, data)
            elif ext_type == ExtensionType.key_share and hello.is_retry_request:
                hello.selected_group = _payload(ext.decode_uint16, data)
            elif ext_type == ExtensionType.key_share:
                hello.key_share = _payload(ext.decode_server_key_share, data)
            elif ext_type == ExtensionType.cookie:
                hello.cookie = _payload(ext.decode_cookie, data)
            else:
                hello.selected_identity = _payload(ext.decode_uint16, data)
        return hello


# -- EncryptedExtensions (RFC 8446 §4.3.1) --------------------------------------------------------------

#: extensions that are recognised but never allowed in EncryptedExtensions (RFC 8446 §4.2 table)
_FORBIDDEN_IN_EE: Final = frozenset(
    {
        ExtensionType.key_share,
        ExtensionType.pre_shared_key,
        ExtensionType.supported_versions,
        ExtensionType.psk_key_exchange_modes,
        ExtensionType.cookie,
        ExtensionType.signature_algorithms,
        ExtensionType.signature_algorithms_cert,
        ExtensionType.post_handshake_auth,
        ExtensionType.certificate_authorities,
    }
)


@dataclass(slots=True)
class EncryptedExtensions:
    """EncryptedExtensions: ALPN, QUIC transport parameters, early_data acceptance, SNI ack."""

    alpn_protocol: bytes | None = None
    transport_parameters: bytes | None = None
    early_data: bool = False
    server_name_ack: bool = False
    supported_groups: list[int] | None = None
    other_extensions: Extensions = field(default_factory=list)

    def encode(self) -> bytes:
        """The whole handshake message (each extension's type and length, then its payload, joined
        once: one per server handshake)."""
        head = _TYPE_AND_LENGTH.pack
        parts = [b""]  # the extensions' length, below
        if self.server_name_ack:
            parts.append(_SERVER_NAME_EMPTY)
        if self.supported_groups is not None:
            groups = ext.encode_uint16_list(self.supported_groups)
            parts += (head(_GROUPS, len(groups)), groups)
        protocol = self.alpn_protocol
        if protocol is not None:  # ext.encode_alpn([protocol]) with its extension head
            size = len(protocol)
            if size > 0xFF:
                raise OverflowError("ALPN protocol name too long")
            parts += (_ALPN_ONE.pack(_ALPN, size + 3, size + 1, size), protocol)
        if self.early_data:
            parts.append(_EARLY_DATA_EMPTY)
        if self.transport_parameters is not None:
            parameters = self.transport_parameters
            parts += (head(_TRANSPORT_PARAMETERS, len(parameters)), parameters)
        for ext_type, data in self.other_extensions:
            parts += (head(ext_type, len(data)), data)
        parts[0] = sum(map(len, parts)).to_bytes(2, "big")
        return frame(HandshakeType.encrypted_extensions, b"".join(parts))

    @classmethod
    def decode(cls, body: bytes) -> EncryptedExtensions:
        """Decode an EncryptedExtensions body; forbidden extensions -> illegal_parameter."""
        return decode_body(body, cls._parse)

    @classmethod
    def _parse(cls, r: Reader) -> EncryptedExtensions:
        msg = cls()
        for ext_type, data in ext.pull_extensions(r):
            if ext_type in _FORBIDDEN_IN_EE:
                raise alert(
                    AlertDescription.illegal_parameter, f"extension {ext_type} in EncryptedExtensions"
                )
            if ext_type == ExtensionType.application_layer_protocol_negotiation:
                protocols = _payload(ext.decode_alpn, data)
                if len(protocols) != 1:
                    raise alert(AlertDescription.illegal_parameter, "server selected several protocols")
                msg.alpn_protocol = protocols[0]
            elif ext_type == ExtensionType.quic_transport_parameters:
                msg.transport_parameters = data
            elif ext_type == ExtensionType.early_data:
                _payload(ext.decode_empty, data)
                msg.early_data = True
            elif ext_type == ExtensionType.server_name:
                _payload(ext.decode_empty, data)
                msg.server_name_ack = True
            elif ext_type == ExtensionType.supported_groups:
                msg.supported_groups = _payload(ext.decode_uint16_list, data)
            else:
                msg.other_extensions.append((ext_type, data))
        return msg


# -- Authentication messages (RFC 8446 §4.3.2, §4.4) -----------------------------------------------------


@dataclass(slots=True)
class CertificateRequest:
    """CertificateRequest: a context and the signature schemes the server accepts (§4.3.2)."""

    context: bytes = b""
    signature_algorithms: list[int] = field(default_factory=list)
    other_extensions: Extensions = field(default_factory=list)

    def encode(self) -> bytes:
        """The whole handshake message."""
        w = Writer()
        w.push_block(1, self.context)
        exts: Extensions = [
            (ExtensionType.signature_algorithms, ext.encode_uint16_list(self.signature_algorithms))
        ]
        ext.push_extensions(w, exts + self.other_extensions)
        return frame(HandshakeType.certificate_request, w.getvalue())

    @classmethod
    def decode(cls, body: bytes) -> CertificateRequest:
        """Decode; signature_algorithms is mandatory (missing_extension)."""
        msg = decode_body(body, cls._parse)
        if not msg.signature_algorithms:
            raise alert(AlertDescription.missing_extension, "CertificateRequest without signature_algorithms")
        return msg

    @classmethod
    def _parse(cls, r: Reader) -> CertificateRequest:
        msg = cls(bytes(r.pull_block(1)))
        for ext_type, data in ext.pull_extensions(r):
            if ext_type == ExtensionType.signature_algorithms:
                msg.signature_algorithms = _payload(ext.decode_uint16_list, data)
            else:
                msg.other_extensions.append((ext_type, data))
        return msg


@dataclass(slots=True)
class CertificateMessage:
    """Certificate (§4.4.2): DER X.509 entries, leaf first, each with its raw extensions block."""

    context: bytes = b""
    certificates: list[bytes] = field(default_factory=list)

    def encode(self) -> bytes:
        """The whole handshake message (entries carry no extensions)."""
        w = Writer()
        w.push_block(1, self.context)
        with w.block(3):
            for der in self.certificates:
                w.push_block(3, der)
                w.push_uint16(0)
        return frame(HandshakeType.certificate, w.getvalue())

    @classmethod
    def decode(cls, body: bytes) -> CertificateMessage:
        """Decode a Certificate body (entry extensions are parsed for framing, then ignored)."""
        return decode_body(body, cls._parse)

    @classmethod
    def _parse(cls, r: Reader) -> CertificateMessage:
        msg = cls(bytes(r.pull_block(1)))
        entries = r.sub_reader(r.pull_uint24())
        while not entries.eof():
            der = bytes(entries.pull_block(3))
            if not der:
                raise DecodeError("empty certificate entry")
            ext.pull_extensions(entries)
            msg.certificates.append(der)
        return msg


@dataclass(slots=True)
class CertificateVerify:
    """CertificateVerify (§4.4.3): signature scheme and signature."""

    algorithm: int
    signature: bytes

    def encode(self) -> bytes:
        """The whole handshake message (header, scheme and signature length in one struct call)."""
        signature = self.signature
        size = len(signature)
        if size > 0xFFFF or not 0 <= self.algorithm <= 0xFFFF:
            return self._encode_general()  # (which raises as it always did)
        return (
            _SIGNATURE_HEAD.pack((HandshakeType.certificate_verify << 24) | (size + 4), self.algorithm, size)
            + signature
        )

    def _encode_general(self) -> bytes:
        w = Writer()
        w.push_uint16(self.algorithm)
        w.push_block(2, self.signature)
        return frame(HandshakeType.certificate_verify, w.getvalue())

    @classmethod
    def decode(cls, body: bytes) -> CertificateVerify:
        """Decode a CertificateVerify body."""
        return decode_body(body, lambda r: cls(r.pull_uint16(), bytes(r.pull_block(2))))


@dataclass(slots=True)
class Finished:
    """Finished (§4.4.4): HMAC over the transcript; its length is the suite's hash length."""

    verify_data: bytes

    def encode(self) -> bytes:
        """The whole handshake message."""
        return frame(HandshakeType.finished, self.verify_data)

    @classmethod
    def decode(cls, body: bytes, hash_length: int) -> Finished:
        """Decode; a body that is not exactly ``hash_length`` bytes is a decode_error."""
        if len(body) != hash_length:
            raise alert(AlertDescription.decode_error, "Finished of the wrong length")
        return cls(body)


# -- NewSessionTicket (RFC 8446 §4.6.1) -----------------------------------------------------------------


@dataclass(slots=True)
class NewSessionTicket:
    """NewSessionTicket; ``max_early_data`` is the early_data extension value (None when absent)."""

    lifetime: int
    age_add: int
    nonce: bytes
    ticket: bytes
    max_early_data: int | None = None

    def encode(self) -> bytes:
        """The whole handshake message (its fields joined once)."""
        nonce, ticket = self.nonce, self.ticket
        if self.max_early_data is None:
            extensions = b"\x00\x00"
        else:  # the early_data extension: type, length 4, max_early_data_size (RFC 8446 §4.6.1)
            extensions = b"\x00\x08" + _EARLY_DATA_4 + self.max_early_data.to_bytes(4, "big")
        body = b"".join(
            (
                self.lifetime.to_bytes(4, "big"),
                self.age_add.to_bytes(4, "big"),
                len(nonce).to_bytes(1, "big"),
                nonce,
                len(ticket).to_bytes(2, "big"),
                ticket,
                extensions,
            )
        )
        return frame(HandshakeType.new_session_ticket, body)

    @classmethod
    def decode(cls, body: bytes) -> NewSessionTicket:
        """Decode a NewSessionTicket body (unknown extensions are ignored)."""
        return decode_body(body, cls._parse)

    @classmethod
    def _parse(cls, r: Reader) -> NewSessionTicket:
        msg = cls(r.pull_uint32(), r.pull_uint32(), bytes(r.pull_block(1)), bytes(r.pull_block(2)))
        if not msg.ticket:
            raise DecodeError("empty ticket")
        for ext_type, data in ext.pull_extensions(r):
            if ext_type == ExtensionType.early_data:
                msg.max_early_data = _payload(ext.decode_uint32, data)
        return msg
