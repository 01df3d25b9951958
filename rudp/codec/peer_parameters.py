"""The peer's transport parameters decoded with what an earlier connection to the same peer decoded
(RFC 9000 §18; issue 13, handshake CPU).

A server answers every client of one configuration with the same parameters except its connection-ID
ones (original_destination_connection_id, stateless_reset_token, initial_source_connection_id and,
after a Retry, retry_source_connection_id: RFC 9000 §7.3, §10.3), which its encoder writes first.
A client's differ between its connections only in initial_source_connection_id, which rudp writes
first: a server decodes its clients' parameters the same way (those of a client that writes it later,
whose bytes after the leading ones then change every time, in full and not kept).
:func:`decode_transport_parameters_cached` reads those leading parameters by index and takes the
values of the bytes after them from the last decode of the same bytes (bounded), then validates the
whole as :func:`~rudp.codec.transport_params.decode_transport_parameters` does: the same result and
the same errors for any input (anything unusual in the leading parameters, and every input not seen
before, is decoded in full).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Final

from rudp.codec.transport_params import (
    _BYTES_PARAMS,
    FIELD_INDEX,
    SERVER_ONLY,
    TransportParameters,
    build_parameters,
    decode_transport_parameters,
)

_LEADING: Final[dict[int, str]] = {int(param_id): name for param_id, name in _BYTES_PARAMS.items()}
"""The connection-ID parameters by ID (all below 0x40: one-byte varints)."""
_SERVER_ONLY_NAMES: Final = frozenset(_BYTES_PARAMS[i] for i in _BYTES_PARAMS if i in SERVER_ONLY)
_FIELDS: Final = tuple(f.name for f in fields(TransportParameters))
_MAX_REST: Final = 16
_REST: dict[tuple[bool, tuple[str, ...], bytes], list[object]] = {}
"""Every field's value in field order, by (from_server, leading parameter names, the bytes after them):
the other fields' are those of the bytes after the leading ones."""


def decode_transport_parameters_cached(data: bytes, *, from_server: bool) -> TransportParameters:
    """``decode_transport_parameters(data, from_server=from_server)``, the parameters after the
    leading connection-ID ones taken from an earlier decode of the same bytes.

    Raises:
        DecodeError: as :func:`~rudp.codec.transport_params.decode_transport_parameters`.
    """
    if type(data) is not bytes:
        return decode_transport_parameters(data, from_server=from_server)
    size = len(data)
    pos = 0
    leading: dict[str, bytes] = {}
    while pos + 1 < size:
        name = _LEADING.get(data[pos])
        if name is None:
            break
        length = data[pos + 1]
        end = pos + 2 + length
        if length >= 0x40 or end > size or name in leading:
            return decode_transport_parameters(data, from_server=from_server)  # (its error, if any)
        leading[name] = data[pos + 2 : end]
        pos = end
    if not from_server and (not leading or not _SERVER_ONLY_NAMES.isdisjoint(leading)):
        # (refused: RFC 9000 §18.2; or a client's source CID among the rest: never seen again)
        return decode_transport_parameters(data, from_server=from_server)
    key = (from_server, tuple(leading), data[pos:])
    rest = _REST.get(key)
    if rest is None:
        params = decode_transport_parameters(data, from_server=from_server)
        if len(_REST) >= _MAX_REST:
            del _REST[next(iter(_REST))]  # the oldest
        # (a leading name in the rest would have been a duplicate: refused above, so never here)
        # (the leading fields' places hold this decode's values: each later one puts its own there)
        _REST[key] = [getattr(params, name) for name in _FIELDS]
        return params
    values = rest.copy()
    for name, value in leading.items():
        values[FIELD_INDEX[name]] = value
    params = build_parameters(values)  # (as TransportParameters(*values); each value decoded before)
    params.validate()  # (the §18.2 rules that involve the leading parameters: CID and token sizes)
    return params


__all__ = ["decode_transport_parameters_cached"]
