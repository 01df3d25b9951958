"""QUIC transport parameters (RFC 9000 §18, RFC 9221 §3, RFC 9368 §3): values, encoding, validation.

Owns the parameter set each endpoint announces in the TLS quic_transport_parameters extension and the
§18.2 validity rules. What the connection does with them (limits, CID authentication per §7.3) belongs
to the connection.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from enum import IntEnum
from typing import Final, TypeVar

from rudp.codec.buffer import BytesLike, Reader, Writer
from rudp.codec.varint import VARINT_MAX, encode_varint
from rudp.errors import DecodeError, TransportErrorCode

_T = TypeVar("_T")

_TPE = TransportErrorCode.TRANSPORT_PARAMETER_ERROR
MAX_STREAMS_LIMIT: Final = 1 << 60


class TransportParameterId(IntEnum):
    """Transport parameter identifiers (RFC 9000 §18.2, RFC 9221 §3, RFC 9368 §3)."""

    ORIGINAL_DESTINATION_CONNECTION_ID = 0x00
    MAX_IDLE_TIMEOUT = 0x01
    STATELESS_RESET_TOKEN = 0x02
    MAX_UDP_PAYLOAD_SIZE = 0x03
    INITIAL_MAX_DATA = 0x04
    INITIAL_MAX_STREAM_DATA_BIDI_LOCAL = 0x05
    INITIAL_MAX_STREAM_DATA_BIDI_REMOTE = 0x06
    INITIAL_MAX_STREAM_DATA_UNI = 0x07
    INITIAL_MAX_STREAMS_BIDI = 0x08
    INITIAL_MAX_STREAMS_UNI = 0x09
    ACK_DELAY_EXPONENT = 0x0A
    MAX_ACK_DELAY = 0x0B
    DISABLE_ACTIVE_MIGRATION = 0x0C
    PREFERRED_ADDRESS = 0x0D
    ACTIVE_CONNECTION_ID_LIMIT = 0x0E
    INITIAL_SOURCE_CONNECTION_ID = 0x0F
    RETRY_SOURCE_CONNECTION_ID = 0x10
    VERSION_INFORMATION = 0x11
    MAX_DATAGRAM_FRAME_SIZE = 0x20
    MIN_ACK_DELAY = 0xFF04DE1B  # draft-ietf-quic-ack-frequency §3


_TP = TransportParameterId
# RFC 9000 §18.2: a client must not send these; receiving one from a client is an error.
SERVER_ONLY: Final = frozenset(
    (
        _TP.ORIGINAL_DESTINATION_CONNECTION_ID,
        _TP.STATELESS_RESET_TOKEN,
        _TP.PREFERRED_ADDRESS,
        _TP.RETRY_SOURCE_CONNECTION_ID,
    )
)


@dataclass(frozen=True, slots=True)
class PreferredAddress:
    """The server's preferred_address (RFC 9000 §18.2, §9.6); an all-zero address means "none"."""

    ipv4_address: ipaddress.IPv4Address | None
    ipv4_port: int
    ipv6_address: ipaddress.IPv6Address | None
    ipv6_port: int
    connection_id: bytes
    stateless_reset_token: bytes


@dataclass(frozen=True, slots=True)
class VersionInformation:
    """version_information (RFC 9368 §3): the chosen version and the versions available."""

    chosen_version: int
    available_versions: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class TransportParameters:
    """One endpoint's transport parameters; absent parameters hold their RFC 9000 §18.2 defaults.

    Connection-ID parameters are None when absent (their presence is checked by §7.3 authentication).
    Durations keep their wire units: ``max_idle_timeout`` and ``max_ack_delay`` are milliseconds.
    """

    original_destination_connection_id: bytes | None = None
    max_idle_timeout: int = 0
    stateless_reset_token: bytes | None = None
    max_udp_payload_size: int = 65527
    initial_max_data: int = 0
    initial_max_stream_data_bidi_local: int = 0
    initial_max_stream_data_bidi_remote: int = 0
    initial_max_stream_data_uni: int = 0
    initial_max_streams_bidi: int = 0
    initial_max_streams_uni: int = 0
    ack_delay_exponent: int = 3
    max_ack_delay: int = 25
    disable_active_migration: bool = False
    preferred_address: PreferredAddress | None = None
    active_connection_id_limit: int = 2
    initial_source_connection_id: bytes | None = None
    retry_source_connection_id: bytes | None = None
    version_information: VersionInformation | None = None
    max_datagram_frame_size: int | None = None
    """RFC 9221 §3: None when absent (datagrams unsupported); 0 is not allowed to be meaningful."""
    min_ack_delay: int | None = None
    """draft-ietf-quic-ack-frequency §3, in microseconds: None when absent (the sender does not take
    ACK_FREQUENCY frames)."""
    unknown: tuple[tuple[int, bytes], ...] = field(default=(), compare=False)
    """Parameters rudp does not know (GREASE included), kept only for inspection; never re-encoded."""

    def validate(self) -> None:
        """Check the §18.2 value rules.

        Raises:
            DecodeError: TRANSPORT_PARAMETER_ERROR naming the offending parameter.
        """
        if self.max_udp_payload_size < 1200:
            raise DecodeError("max_udp_payload_size below 1200", _TPE)
        if self.ack_delay_exponent > 20:
            raise DecodeError("ack_delay_exponent above 20", _TPE)
        if self.max_ack_delay >= 1 << 14:
            raise DecodeError("max_ack_delay of 2^14 ms or more", _TPE)
        if self.min_ack_delay is not None and self.min_ack_delay > self.max_ack_delay * 1000:
            # draft-ietf-quic-ack-frequency §3: min_ack_delay (us) may not exceed max_ack_delay (ms).
            raise DecodeError("min_ack_delay above max_ack_delay", _TPE)
        if self.active_connection_id_limit < 2:
            raise DecodeError("active_connection_id_limit below 2", _TPE)
        if max(self.initial_max_streams_bidi, self.initial_max_streams_uni) > MAX_STREAMS_LIMIT:
            raise DecodeError("initial_max_streams above 2^60", _TPE)
        if self.stateless_reset_token is not None and len(self.stateless_reset_token) != 16:
            raise DecodeError("stateless_reset_token is not 16 bytes", _TPE)
        for name in (
            "original_destination_connection_id",
            "initial_source_connection_id",
            "retry_source_connection_id",
        ):
            cid = getattr(self, name)
            if cid is not None and len(cid) > 20:
                raise DecodeError(f"{name} longer than 20 bytes", _TPE)
        preferred = self.preferred_address
        if preferred is not None and (
            not 1 <= len(preferred.connection_id) <= 20 or len(preferred.stateless_reset_token) != 16
        ):
            raise DecodeError("preferred_address with a bad connection ID or token", _TPE)
        if self.version_information is not None and self.version_information.chosen_version == 0:
            raise DecodeError("version_information chosen version is 0", _TPE)  # RFC 9368 §4


_INT_PARAMS: Final[dict[int, str]] = {
    _TP.MAX_IDLE_TIMEOUT: "max_idle_timeout",
    _TP.MAX_UDP_PAYLOAD_SIZE: "max_udp_payload_size",
    _TP.INITIAL_MAX_DATA: "initial_max_data",
    _TP.INITIAL_MAX_STREAM_DATA_BIDI_LOCAL: "initial_max_stream_data_bidi_local",
    _TP.INITIAL_MAX_STREAM_DATA_BIDI_REMOTE: "initial_max_stream_data_bidi_remote",
    _TP.INITIAL_MAX_STREAM_DATA_UNI: "initial_max_stream_data_uni",
    _TP.INITIAL_MAX_STREAMS_BIDI: "initial_max_streams_bidi",
    _TP.INITIAL_MAX_STREAMS_UNI: "initial_max_streams_uni",
    _TP.ACK_DELAY_EXPONENT: "ack_delay_exponent",
    _TP.MAX_ACK_DELAY: "max_ack_delay",
    _TP.ACTIVE_CONNECTION_ID_LIMIT: "active_connection_id_limit",
    _TP.MAX_DATAGRAM_FRAME_SIZE: "max_datagram_frame_size",
    _TP.MIN_ACK_DELAY: "min_ack_delay",
}
_BYTES_PARAMS: Final[dict[int, str]] = {
    _TP.ORIGINAL_DESTINATION_CONNECTION_ID: "original_destination_connection_id",
    _TP.STATELESS_RESET_TOKEN: "stateless_reset_token",
    _TP.INITIAL_SOURCE_CONNECTION_ID: "initial_source_connection_id",
    _TP.RETRY_SOURCE_CONNECTION_ID: "retry_source_connection_id",
}
_DEFAULTS: Final = {f.name: f.default for f in fields(TransportParameters)}
# Enum members read once (in Python 3.11 each ``_TP.X`` costs an enum metaclass lookup).
_FIELD_NAMES: Final = tuple(_DEFAULTS)


FIELD_INDEX: Final = {name: index for index, name in enumerate(_FIELD_NAMES)}
"""Each field's position in :func:`build_parameters`'s values."""
_SETTERS: Final = tuple(TransportParameters.__dict__[name].__set__ for name in _FIELD_NAMES)
"""Each field's slot setter, in field order (what the frozen dataclass's ``__init__`` does, through
``object.__setattr__``, per field)."""
_NEW: Final = object.__new__


def build_parameters(values: Iterable[object]) -> TransportParameters:
    """``TransportParameters(*values)``: every field's value in field order, set in the object's slots
    directly (the same object, about half the cost of the frozen dataclass's ``__init__``: one is built
    per handshake, and again when a connection changes its own). Values are not checked: only for
    values that come from another ``TransportParameters`` (and validated ones).

    Raises:
        ValueError: not one value per field.
    """
    params: TransportParameters = _NEW(TransportParameters)
    for set_value, value in zip(_SETTERS, values, strict=True):
        set_value(params, value)
    return params


def with_changes(params: TransportParameters, changes: dict[str, object]) -> TransportParameters:
    """``dataclasses.replace(params, **changes)``, the same object, without ``replace``'s scan of the
    field definitions on every call (a connection fills in its CID parameters once per handshake).

    Raises:
        TypeError: a name in ``changes`` that is not a field (as ``replace``).
    """
    if not FIELD_INDEX.keys() >= changes.keys():
        raise TypeError(f"not transport parameters: {sorted(set(changes) - set(FIELD_INDEX))}")
    get = changes.get
    return build_parameters([get(name, getattr(params, name)) for name in _FIELD_NAMES])


_DISABLE_ACTIVE_MIGRATION: Final = int(_TP.DISABLE_ACTIVE_MIGRATION)
_PREFERRED_ADDRESS: Final = int(_TP.PREFERRED_ADDRESS)
_VERSION_INFORMATION: Final = int(_TP.VERSION_INFORMATION)
# The encoder's tables: each parameter ID already in its varint form (RFC 9000 §18), with its field
# name (and, for integers, its default, which is not sent).
_BYTES_ENCODING: Final = tuple((encode_varint(i), name) for i, name in _BYTES_PARAMS.items())
_INT_ENCODING: Final = tuple((encode_varint(i), name, _DEFAULTS[name]) for i, name in _INT_PARAMS.items())
_ONE_BYTE: Final = tuple(bytes((value,)) for value in range(0x40))


def _decode_preferred_address(reader: Reader) -> PreferredAddress:
    ipv4 = reader.pull_bytes(4)
    ipv4_port = reader.pull_uint16()
    ipv6 = reader.pull_bytes(16)
    ipv6_port = reader.pull_uint16()
    cid = reader.pull_bytes(reader.pull_uint8())
    token = reader.pull_bytes(16)
    return PreferredAddress(
        ipaddress.IPv4Address(ipv4) if any(ipv4) or ipv4_port else None,
        ipv4_port,
        ipaddress.IPv6Address(ipv6) if any(ipv6) or ipv6_port else None,
        ipv6_port,
        cid,
        token,
    )


def _version_information(body: memoryview) -> VersionInformation:
    """RFC 9368 §3: Chosen Version, then the Available Versions, 32 bits each (the whole value)."""
    size = len(body)
    if size == 0 or size % 4:
        raise DecodeError("version_information length is not a positive multiple of 4", _TPE)
    versions = struct.unpack(f">{size >> 2}I", body)
    return VersionInformation(versions[0], versions[1:])


def _whole_varint(body: memoryview, param_id: int) -> int:
    """An integer parameter's value: one varint filling the whole body (RFC 9000 §18)."""
    if not body:
        raise DecodeError(f"truncated transport parameter {param_id:#x}", _TPE)
    first = body[0]
    length = 1 << (first >> 6)
    if length != len(body):
        what = "truncated" if length > len(body) else "trailing bytes in"
        raise DecodeError(f"{what} transport parameter {param_id:#x}", _TPE)
    if length == 1:
        return first
    return int.from_bytes(body, "big") & ((1 << (length * 8 - 2)) - 1)


def _decode_whole(decode: Callable[[Reader], _T], body: memoryview, param_id: int) -> _T:
    reader = Reader(body, error_code=_TPE)
    value = decode(reader)
    if not reader.eof():
        raise DecodeError(f"transport parameter {param_id:#x} has trailing bytes", _TPE)
    return value


def version_information_of(data: BytesLike) -> VersionInformation | None:
    """The version_information parameter (RFC 9368 §3) of transport parameters decoded and validated
    before (a ticket's remembered ones), or None: the other parameters are skipped, not decoded.

    Raises:
        DecodeError: TRANSPORT_PARAMETER_ERROR for truncated input or a malformed version_information.
    """
    view = data if type(data) is memoryview else memoryview(data)
    size = len(view)
    pos = 0
    while pos < size:  # RFC 9000 §18: ID, Length, Value; the varints read by index (a resumed
        # handshake checks its ticket's parameters on both sides)
        param_id, pos = _varint_at(view, pos, size)
        length, pos = _varint_at(view, pos, size)
        end = pos + length
        if end > size:
            raise DecodeError(f"truncated transport parameter {param_id:#x}", _TPE)
        if param_id == _VERSION_INFORMATION:
            return _version_information(view[pos:end])
        pos = end
    return None


def decode_transport_parameters(data: BytesLike, *, from_server: bool) -> TransportParameters:
    """Decode and validate the peer's transport parameters.

    ``from_server`` tells who sent them: a client sending a server-only parameter is an error.

    Raises:
        DecodeError: TRANSPORT_PARAMETER_ERROR for malformed input, duplicates (RFC 9000 §7.4),
            server-only parameters from a client, or values outside their §18.2 ranges.
    """
    view = data if type(data) is memoryview else memoryview(data)
    size = len(view)
    pos = 0
    values: dict[str, object] = {}
    seen: set[int] = set()
    unknown: list[tuple[int, bytes]] = []
    while pos < size:
        # RFC 9000 §18: ID (varint), Length (varint), Value; both varints read by index, one-byte
        # ones (IDs and lengths under 64, all but a few) inline
        param_id = view[pos]
        if param_id < 0x40:
            pos += 1
        else:
            param_id, pos = _varint_at(view, pos, size)
        length = view[pos] if pos < size else 0x40
        if length < 0x40:
            pos += 1
        else:
            length, pos = _varint_at(view, pos, size)
        end = pos + length
        if end > size:
            raise DecodeError(f"truncated transport parameter {param_id:#x}", _TPE)
        if param_id in seen:
            raise DecodeError(f"duplicate transport parameter {param_id:#x}", _TPE)
        seen.add(param_id)
        name = _INT_PARAMS.get(param_id)
        if name is not None:  # (no integer parameter is server-only)
            # RFC 9000 §18: one varint filling the whole value (_whole_varint, inlined)
            if length == 1 and view[pos] < 0x40:
                values[name] = view[pos]
            else:
                values[name] = _whole_varint(view[pos:end], param_id)
            pos = end
            continue
        if not from_server and param_id in SERVER_ONLY:
            raise DecodeError(f"client sent server-only parameter {param_id:#x}", _TPE)
        body = view[pos:end]
        pos = end
        if param_id in _BYTES_PARAMS:
            values[_BYTES_PARAMS[param_id]] = bytes(body)
        elif param_id == _DISABLE_ACTIVE_MIGRATION:
            if body:
                raise DecodeError(f"transport parameter {param_id:#x} has trailing bytes", _TPE)
            values["disable_active_migration"] = True
        elif param_id == _PREFERRED_ADDRESS:
            values["preferred_address"] = _decode_whole(_decode_preferred_address, body, param_id)
        elif param_id == _VERSION_INFORMATION:
            values["version_information"] = _version_information(body)
        else:
            # RFC 9000 §7.4.2, §18.1: unknown (and reserved 31*N+27) parameters are ignored.
            unknown.append((param_id, bytes(body)))
    if unknown:
        values["unknown"] = tuple(unknown)
    params = TransportParameters(**values)  # type: ignore[arg-type]
    params.validate()
    return params


def _varint_at(view: memoryview, pos: int, size: int) -> tuple[int, int]:
    """The varint (RFC 9000 §16) at ``pos`` of ``view`` and the position after it."""
    if pos >= size:
        raise DecodeError("truncated varint", _TPE)
    first = view[pos]
    length = 1 << (first >> 6)
    if length == 1:
        return first, pos + 1
    end = pos + length
    if end > size:
        raise DecodeError("truncated varint", _TPE)
    return int.from_bytes(view[pos:end], "big") & ((1 << (length * 8 - 2)) - 1), end


def _encode_preferred_address(preferred: PreferredAddress) -> bytes:
    writer = Writer()
    writer.push_bytes(preferred.ipv4_address.packed if preferred.ipv4_address else bytes(4))
    writer.push_uint16(preferred.ipv4_port)
    writer.push_bytes(preferred.ipv6_address.packed if preferred.ipv6_address else bytes(16))
    writer.push_uint16(preferred.ipv6_port)
    writer.push_block(1, preferred.connection_id)
    writer.push_bytes(preferred.stateless_reset_token)
    return writer.getvalue()


def encode_transport_parameters(
    params: TransportParameters, *, grease: tuple[int, bytes] | None = None
) -> bytes:
    """Encode ``params`` (defaults are omitted, as the receiver assumes them).

    ``grease``: an optional reserved parameter ``(31 * N + 27, value)`` to include (RFC 9000 §18.1).

    Raises:
        ValueError: for values that do not fit their encoding.
    """
    # RFC 9000 §18: each parameter is ID (varint), Length (varint), Value; the common ones are joined
    # from precomputed IDs (the connection encodes its parameters once per handshake).
    parts: list[bytes] = []
    for param_id, name in _BYTES_ENCODING:
        value = getattr(params, name)
        if value is not None:
            parts += (param_id, encode_varint(len(value)), value)
    for param_id, name, default in _INT_ENCODING:
        value = getattr(params, name)
        if value is not None and value != default:
            # the varint inline for values under 2^30 (all but the largest windows); the Length is
            # 1, 2, 4 or 8: a one-byte varint
            if 0 <= value < 0x40:
                parts += (param_id, b"\x01", _ONE_BYTE[value])
            elif 0x40 <= value < 0x4000:
                parts += (param_id, b"\x02", (0x4000 | value).to_bytes(2, "big"))
            elif 0x4000 <= value < 0x40000000:
                parts += (param_id, b"\x04", (0x80000000 | value).to_bytes(4, "big"))
            elif 0 <= value <= VARINT_MAX:
                parts += (param_id, b"\x08", (0xC000000000000000 | value).to_bytes(8, "big"))
            else:
                raise ValueError(f"{name} out of range")
    writer = Writer()
    writer.push_bytes(b"".join(parts))
    if params.disable_active_migration:
        writer.push_varint(_TP.DISABLE_ACTIVE_MIGRATION)
        writer.push_varint(0)
    if params.preferred_address is not None:
        writer.push_varint(_TP.PREFERRED_ADDRESS)
        writer.push_block(0, _encode_preferred_address(params.preferred_address))
    if params.version_information is not None:
        info = params.version_information
        writer.push_varint(_TP.VERSION_INFORMATION)
        writer.push_varint(4 * (1 + len(info.available_versions)))
        for version in (info.chosen_version, *info.available_versions):
            writer.push_uint32(version)
    if grease is not None:
        writer.push_varint(grease[0])
        writer.push_block(0, grease[1])
    return writer.getvalue()


# A client's parameters differ between its connections only in initial_source_connection_id (RFC 9000
# §7.3): the rest is encoded once per parameters object and version_information (bounded).
_SOURCE_CID_ID: Final = encode_varint(_TP.INITIAL_SOURCE_CONNECTION_ID)
_MAX_WITHOUT_SOURCE_CID: Final = 16
_WITHOUT_SOURCE_CID: dict[tuple[int, VersionInformation | None], tuple[TransportParameters, bytes]] = {}


def encode_with_source_cid(
    params: TransportParameters, source_cid: bytes, version_information: VersionInformation | None
) -> bytes:
    """``encode_transport_parameters`` of ``params`` with ``initial_source_connection_id`` and
    ``version_information`` set, the same bytes. Parameters with a connection-ID parameter of their
    own (a server's) are encoded whole; without one (a client's: RFC 9000 §18.2 lets only a server
    send the others) the source CID comes first, as the encoder puts it, before the rest's bytes,
    kept from the previous connection with the same ``params`` object and ``version_information``.

    Raises:
        ValueError: as ``encode_transport_parameters``.
    """
    if (
        params.original_destination_connection_id is not None
        or params.stateless_reset_token is not None
        or params.initial_source_connection_id is not None
        or params.retry_source_connection_id is not None
    ):
        return encode_transport_parameters(
            replace(params, initial_source_connection_id=source_cid, version_information=version_information)
        )
    key = (id(params), version_information)  # (the entry holds the object: its id stays its own)
    cached = _WITHOUT_SOURCE_CID.get(key)
    if cached is None:
        rest = encode_transport_parameters(replace(params, version_information=version_information))
        if len(_WITHOUT_SOURCE_CID) >= _MAX_WITHOUT_SOURCE_CID:
            del _WITHOUT_SOURCE_CID[next(iter(_WITHOUT_SOURCE_CID))]  # the oldest
        cached = _WITHOUT_SOURCE_CID[key] = (params, rest)
    return b"%s%s%s%s" % (_SOURCE_CID_ID, encode_varint(len(source_cid)), source_cid, cached[1])


# A server's parameters differ between its connections only in the connection-ID ones (RFC 9000 §7.3,
# §10.3), which the encoder writes first: the bytes after them are kept per parameters object and
# version_information (bounded), and the connection's parameters object need not be built to encode.
_LEADING_CHANGES: Final = frozenset((*_BYTES_PARAMS.values(), "version_information", "preferred_address"))
_NO_CIDS: Final[dict[str, object]] = dict.fromkeys(_BYTES_PARAMS.values())
_MAX_AFTER_CIDS: Final = 16
_AFTER_CIDS: dict[tuple[int, tuple[int, tuple[int, ...]] | None], tuple[TransportParameters, bytes]] = {}
"""The bytes after the CID parameters by (the parameters object's id, version_information's values)."""


def encode_with_changes(params: TransportParameters, changes: dict[str, object]) -> bytes:
    """``encode_transport_parameters(with_changes(params, changes))``, the same bytes. When ``changes``
    are connection-ID parameters and version_information (and no preferred address, which holds a
    CID of its own), those are encoded and the bytes after them are those of an earlier call with the
    same ``params`` object and version_information; anything else is encoded whole.

    Raises:
        ValueError: as ``encode_transport_parameters``.
    """
    if (
        params.preferred_address is not None
        or changes.get("preferred_address") is not None
        or not _LEADING_CHANGES.issuperset(changes)
    ):
        return encode_transport_parameters(with_changes(params, changes))
    given = changes.get("version_information", params.version_information)
    info = given if isinstance(given, VersionInformation) else None
    if given is not None and info is None:
        return encode_transport_parameters(with_changes(params, changes))
    # (the entry holds the object: its id stays its own; version_information by its values, hashed
    # as a tuple: the dataclass's hash is a Python function)
    key = (id(params), None if info is None else (info.chosen_version, info.available_versions))
    cached = _AFTER_CIDS.get(key)
    if cached is None:
        rest = encode_transport_parameters(with_changes(params, {**_NO_CIDS, "version_information": info}))
        if len(_AFTER_CIDS) >= _MAX_AFTER_CIDS:
            del _AFTER_CIDS[next(iter(_AFTER_CIDS))]  # the oldest
        cached = _AFTER_CIDS[key] = (params, rest)
    parts: list[bytes] = []
    for param_id, name in _BYTES_ENCODING:
        value = changes[name] if name in changes else getattr(params, name)
        if value is not None:
            if not isinstance(value, bytes):
                return encode_transport_parameters(with_changes(params, changes))
            size = len(value)
            parts += (param_id, _ONE_BYTE[size] if size < 0x40 else encode_varint(size), value)
    parts.append(cached[1])
    return b"".join(parts)
