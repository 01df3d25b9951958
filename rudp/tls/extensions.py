"""TLS 1.3 extension code points and the codecs of each extension's payload (RFC 8446 §4.2).

Owns: the ExtensionType/NamedGroup/PskKeyExchangeMode tables, the extension block framing (with the
"no duplicates" rule) and one encode/decode pair per extension payload used by QUIC: server_name,
supported_groups, signature_algorithms, ALPN, supported_versions, key_share, psk_key_exchange_modes,
pre_shared_key, early_data, cookie and quic_transport_parameters (opaque bytes owned by QUIC).

Decoders read through :class:`rudp.codec.buffer.Reader`, so truncation raises DecodeError; the message
layer turns that into the decode_error alert. Every decoder rejects trailing bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from rudp.codec.buffer import BytesLike, Reader, Writer
from rudp.errors import DecodeError
from rudp.tls.alerts import AlertDescription, alert

#: TLS 1.3 in supported_versions (RFC 8446 §4.2.1)
TLS13: Final = 0x0304
#: legacy_version of ClientHello and ServerHello (RFC 8446 §4.1.2)
LEGACY_VERSION: Final = 0x0303


class ExtensionType(IntEnum):
    """Extension code points used here (RFC 8446 §4.2, RFC 7301, RFC 9001 §8.2)."""

    server_name = 0
    supported_groups = 10
    signature_algorithms = 13
    application_layer_protocol_negotiation = 16
    pre_shared_key = 41
    early_data = 42
    supported_versions = 43
    cookie = 44
    psk_key_exchange_modes = 45
    certificate_authorities = 47
    post_handshake_auth = 49
    signature_algorithms_cert = 50
    key_share = 51
    quic_transport_parameters = 57


class NamedGroup(IntEnum):
    """Key exchange groups (RFC 8446 §4.2.7)."""

    secp256r1 = 0x0017
    secp384r1 = 0x0018
    x25519 = 0x001D


class PskKeyExchangeMode(IntEnum):
    """psk_key_exchange_modes values (RFC 8446 §4.2.9)."""

    psk_ke = 0
    psk_dhe_ke = 1


Extensions = list[tuple[int, bytes]]


def finish(reader: Reader) -> None:
    """Raise DecodeError when ``reader`` has bytes left (strict length checks everywhere)."""
    if not reader.eof():
        raise DecodeError("trailing bytes", reader.error_code)


def pull_extensions(reader: Reader) -> Extensions:
    """Read an ``Extension extensions<0..2^16-1>`` block (RFC 8446 §4.2).

    Raises illegal_parameter on a duplicated extension type ("MUST NOT be more than one").
    """
    block = reader.pull_block(2)
    out: Extensions = []
    seen: set[int] = set()
    pos, end = 0, len(block)
    while pos < end:
        # extension_type (2 bytes), extension_data<0..2^16-1>, read by index
        start = pos + 4
        if start > end:
            raise DecodeError("truncated extension header", reader.error_code)
        ext_type = (block[pos] << 8) | block[pos + 1]
        pos = start + ((block[pos + 2] << 8) | block[pos + 3])
        if pos > end:
            raise DecodeError("truncated block", reader.error_code)
        if ext_type in seen:
            raise alert(AlertDescription.illegal_parameter, f"duplicate extension {ext_type}")
        seen.add(ext_type)
        out.append((ext_type, bytes(block[start:pos])))
    return out


def push_extensions(writer: Writer, extensions: Extensions) -> None:
    """Write an extension block with its 2-byte length."""
    body = b"".join(
        b"%s%s" % (_TYPE_AND_LENGTH.pack(ext_type, len(data)), data) for ext_type, data in extensions
    )
    writer.push_block(2, body)


_TYPE_AND_LENGTH: Final = struct.Struct(">HH")


# -- lists of uint16 (supported_groups §4.2.7, signature_algorithms §4.2.3) ------------------------


def encode_uint16_list(values: list[int]) -> bytes:
    """``uint16 list<2..2^16-2>`` (one struct call: the length, then the values)."""
    return struct.pack(f">{len(values) + 1}H", 2 * len(values), *values)


class _Layouts(dict[int, struct.Struct]):
    """The layouts of 0..127 big-endian uint16 values (TLS's lists are short), compiled once; a
    longer one is compiled when asked for and not kept. Indexed in C: no Python call per list."""

    def __missing__(self, count: int) -> struct.Struct:
        return struct.Struct(f">{count}H")


_uint16s: Final = _Layouts((count, struct.Struct(f">{count}H")) for count in range(128)).__getitem__


def unpack_uint16s(block: BytesLike) -> list[int]:
    """The big-endian uint16 values filling ``block`` (an even number of bytes), in one unpack."""
    return list(_uint16s(len(block) >> 1).unpack(block))


def unpack_uint16s_from(data: BytesLike, offset: int, count: int) -> list[int]:
    """``count`` big-endian uint16 values of ``data`` from ``offset`` (which must hold them)."""
    return list(_uint16s(count).unpack_from(data, offset))


def decode_uint16_list(data: BytesLike) -> list[int]:
    """Inverse of :func:`encode_uint16_list`; the list must be non-empty and of even length."""
    size = len(data)
    if size < 2 or ((data[0] << 8) | data[1]) != size - 2:
        raise DecodeError("truncated block" if size < 2 else "bad uint16 list length")
    if size == 2 or size % 2:
        raise DecodeError("bad uint16 list")
    return list(_uint16s((size - 2) >> 1).unpack_from(data, 2))


# -- supported_versions (RFC 8446 §4.2.1) -------------------------------------------------------------


def encode_client_versions(versions: list[int]) -> bytes:
    """ClientHello form: ``ProtocolVersion versions<2..254>``."""
    return bytes((2 * len(versions),)) + struct.pack(f">{len(versions)}H", *versions)


def decode_client_versions(data: BytesLike) -> list[int]:
    """Inverse of :func:`encode_client_versions`."""
    size = len(data)
    if size < 1 or data[0] != size - 1:
        raise DecodeError("truncated block" if size < 1 else "bad supported_versions length")
    if size == 1 or (size - 1) % 2:
        raise DecodeError("bad supported_versions")
    return list(_uint16s((size - 1) >> 1).unpack_from(data, 1))


def decode_uint16(data: BytesLike) -> int:
    """A payload made of exactly one uint16 (selected_version, HRR group, selected_identity)."""
    r = Reader(data)
    value = r.pull_uint16()
    finish(r)
    return value


def encode_uint16(value: int) -> bytes:
    """Inverse of :func:`decode_uint16`."""
    return value.to_bytes(2, "big")


# -- server_name (RFC 6066 §3) ----------------------------------------------------------------------


def encode_server_name(host: str) -> bytes:
    """A ServerNameList holding one host_name entry."""
    name = host.encode("ascii")
    entry = b"\x00" + len(name).to_bytes(2, "big") + name  # NameType host_name, HostName
    return len(entry).to_bytes(2, "big") + entry


def _block_end(data: BytesLike, start: int, size: int) -> int:
    """The end of the ``<..2^16-1>`` block whose 2-byte length is at ``start`` (``size``: len(data)),
    with the errors a Reader's ``uint16`` then ``read`` would raise."""
    if start + 2 > size:
        raise DecodeError("truncated uint16")
    end = start + 2 + ((data[start] << 8) | data[start + 1])
    if end > size:
        raise DecodeError("truncated block")
    return end


def _list_end(data: BytesLike) -> int:
    """The end of a ``<..2^16-1>`` list filling ``data`` after its 2-byte length (the list is read by
    index from offset 2: no Reader per extension)."""
    size = len(data)
    end = _block_end(data, 0, size)
    if end != size:
        raise DecodeError("trailing bytes")
    return end


def decode_server_name(data: BytesLike) -> str | None:
    """Return the host_name of a ServerNameList (None for the empty acknowledgement form)."""
    if len(data) == 0:
        return None
    end = _list_end(data)
    host: str | None = None
    pos = 2
    while pos < end:
        # ServerName: NameType name_type (1 byte), HostName <1..2^16-1> (RFC 6066 §3)
        name_type = data[pos]
        start = pos + 3
        if start > end:
            raise DecodeError("truncated block")
        pos = start + ((data[pos + 1] << 8) | data[pos + 2])
        if pos > end:
            raise DecodeError("truncated block")
        name = bytes(data[start:pos])
        if name_type == 0:
            if host is not None or not name:
                raise alert(AlertDescription.illegal_parameter, "bad server_name")
            try:
                host = name.decode("ascii")
            except UnicodeDecodeError:
                raise alert(AlertDescription.decode_error, "non-ASCII server_name") from None
    if host is None:
        raise DecodeError("empty server_name list")
    return host


# -- ALPN (RFC 7301 §3.1) ---------------------------------------------------------------------------


def encode_alpn(protocols: list[bytes]) -> bytes:
    """``ProtocolName protocol_name_list<2..2^16-1>``."""
    body = b"".join(len(proto).to_bytes(1, "big") + proto for proto in protocols)
    return len(body).to_bytes(2, "big") + body


def decode_alpn(data: BytesLike) -> list[bytes]:
    """Inverse of :func:`encode_alpn`; empty names and empty lists are decode errors."""
    end = _list_end(data)
    protocols: list[bytes] = []
    pos = 2
    while pos < end:
        start = pos + 1  # ProtocolName <1..2^8-1>
        pos = start + data[pos]
        if pos > end:
            raise DecodeError("truncated block")
        name = bytes(data[start:pos])
        if not name:
            raise DecodeError("empty ALPN protocol name")
        protocols.append(name)
    if not protocols:
        raise DecodeError("empty ALPN list")
    return protocols


# -- key_share (RFC 8446 §4.2.8) --------------------------------------------------------------------


def encode_client_key_shares(shares: list[tuple[int, bytes]]) -> bytes:
    """``KeyShareEntry client_shares<0..2^16-1>``."""
    body = b"".join(_TYPE_AND_LENGTH.pack(group, len(key)) + key for group, key in shares)
    return len(body).to_bytes(2, "big") + body


def decode_client_key_shares(data: BytesLike) -> list[tuple[int, bytes]]:
    """Inverse of :func:`encode_client_key_shares`; a group may appear only once (illegal_parameter)."""
    end = _list_end(data)
    shares: list[tuple[int, bytes]] = []
    pos = 2
    while pos < end:
        # KeyShareEntry: NamedGroup group (2 bytes), opaque key_exchange<1..2^16-1>
        if pos + 2 > end:
            raise DecodeError("truncated uint16")
        group = (data[pos] << 8) | data[pos + 1]
        start = pos + 4
        if start > end:
            raise DecodeError("truncated block")
        pos = start + ((data[pos + 2] << 8) | data[pos + 3])
        if pos > end:
            raise DecodeError("truncated block")
        key = bytes(data[start:pos])
        if not key:
            raise DecodeError("empty key_exchange")
        if shares and any(g == group for g, _ in shares):
            raise alert(AlertDescription.illegal_parameter, "duplicate key share group")
        shares.append((group, key))
    return shares


def encode_server_key_share(group: int, key: bytes) -> bytes:
    """ServerHello form: a single KeyShareEntry."""
    return group.to_bytes(2, "big") + len(key).to_bytes(2, "big") + key


def decode_server_key_share(data: BytesLike) -> tuple[int, bytes]:
    """Inverse of :func:`encode_server_key_share`."""
    r = Reader(data)
    group = r.pull_uint16()
    key = bytes(r.pull_block(2))
    finish(r)
    if not key:
        raise DecodeError("empty key_exchange")
    return group, key


# -- psk_key_exchange_modes (RFC 8446 §4.2.9) ---------------------------------------------------------


def encode_psk_modes(modes: list[int]) -> bytes:
    """``PskKeyExchangeMode ke_modes<1..255>``."""
    return bytes((len(modes), *modes))


def decode_psk_modes(data: BytesLike) -> list[int]:
    """Inverse of :func:`encode_psk_modes`."""
    size = len(data)
    if size < 1 or 1 + data[0] > size:
        raise DecodeError("truncated block")
    if 1 + data[0] != size:
        raise DecodeError("trailing bytes")
    if size == 1:
        raise DecodeError("empty psk_key_exchange_modes")
    return list(data[1:])


# -- pre_shared_key (RFC 8446 §4.2.11) ------------------------------------------------------------------


@dataclass(slots=True)
class OfferedPsks:
    """The ClientHello pre_shared_key payload: identities with obfuscated ages, and their binders."""

    identities: list[tuple[bytes, int]]
    binders: list[bytes] = field(default_factory=list)

    def binders_size(self) -> int:
        """Size in bytes of the encoded binders list, length prefix included (what Truncate() drops)."""
        return 2 + len(self.binders) + sum(map(len, self.binders))  # (no generator: C calls only)


def encode_offered_psks(psks: OfferedPsks) -> bytes:
    """``PskIdentity identities<7..2^16-1>; PskBinderEntry binders<33..2^16-1>``."""
    identities = b"".join(
        b"%s%s%s" % (len(identity).to_bytes(2, "big"), identity, age.to_bytes(4, "big"))
        for identity, age in psks.identities
    )
    return b"%s%s%s" % (len(identities).to_bytes(2, "big"), identities, encode_binders(psks.binders))


def encode_binders(binders: list[bytes]) -> bytes:
    """``PskBinderEntry binders<33..2^16-1>``: the end of a ClientHello that offers PSKs (RFC 8446
    §4.2.11), :meth:`OfferedPsks.binders_size` bytes."""
    body = b"".join(bytes((len(binder),)) + binder for binder in binders)
    return len(body).to_bytes(2, "big") + body


def decode_offered_psks(data: BytesLike) -> OfferedPsks:
    """Inverse of :func:`encode_offered_psks`; identity and binder counts must match. Read by index
    (the errors a Reader's reads would give, in the same order: tests/tls/test_extension_decoders.py)."""
    size = len(data)
    ids_end = _block_end(data, 0, size)
    end = _block_end(data, ids_end, size)
    if end != size:
        raise DecodeError("trailing bytes")
    identities: list[tuple[bytes, int]] = []
    pos = 2
    while pos < ids_end:
        # PskIdentity: opaque identity<1..2^16-1>, uint32 obfuscated_ticket_age
        start = pos + 2
        if start > ids_end:
            raise DecodeError("truncated block")
        pos = start + ((data[pos] << 8) | data[pos + 1])
        if pos > ids_end:
            raise DecodeError("truncated block")
        identity = bytes(data[start:pos])
        if pos + 4 > ids_end:
            raise DecodeError("truncated uint32")
        identities.append((identity, int.from_bytes(data[pos : pos + 4], "big")))
        pos += 4
        if not identity:
            raise DecodeError("empty PSK identity")
    binders: list[bytes] = []
    pos = ids_end + 2
    while pos < end:
        start = pos + 1  # PskBinderEntry <32..255>
        pos = start + data[pos]
        if pos > end:
            raise DecodeError("truncated block")
        binder = bytes(data[start:pos])
        if len(binder) < 32:
            raise DecodeError("PSK binder too short")
        binders.append(binder)
    if not identities or len(identities) != len(binders):
        raise alert(AlertDescription.illegal_parameter, "PSK identities and binders do not match")
    return OfferedPsks(identities, binders)


# -- early_data (RFC 8446 §4.2.10) and cookie (§4.2.2) ----------------------------------------------------


def decode_empty(data: BytesLike) -> None:
    """Payloads that must be empty (early_data in ClientHello/EncryptedExtensions)."""
    if len(data):
        raise DecodeError("extension must be empty")


def encode_cookie(cookie: bytes) -> bytes:
    """``opaque cookie<1..2^16-1>``."""
    return len(cookie).to_bytes(2, "big") + cookie


def decode_cookie(data: BytesLike) -> bytes:
    """Inverse of :func:`encode_cookie`."""
    r = Reader(data)
    cookie = bytes(r.pull_block(2))
    finish(r)
    if not cookie:
        raise DecodeError("empty cookie")
    return cookie


def decode_uint32(data: BytesLike) -> int:
    """A payload of exactly one uint32 (max_early_data_size in NewSessionTicket)."""
    r = Reader(data)
    value = r.pull_uint32()
    finish(r)
    return value
