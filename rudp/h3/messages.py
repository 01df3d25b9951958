"""HTTP message fields for HTTP/3: a case-insensitive :class:`Headers` view and the field rules of
RFC 9114 §4.1.2 and §4.3 (what makes a request, response or trailer section malformed)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from rudp.h3.errors import H3Error, H3ErrorCode

RawHeaders = list[tuple[bytes, bytes]]
"""Field lines as QPACK carries them: (name, value) byte pairs, names in lower case."""

CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
"""Fields that must not appear in HTTP/3 (RFC 9114 §4.2)."""

REQUEST_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path", b":protocol"})
RESPONSE_PSEUDO = frozenset({b":status"})


def field_section_size(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """The size MAX_FIELD_SECTION_SIZE limits: names and values plus 32 bytes a field (RFC 9114 §4.2.2)."""
    return sum(len(name) + len(value) + 32 for name, value in headers)


class Headers(Mapping[str, str]):
    """Header fields, looked up case-insensitively; repeated fields join with ", " (``get_list`` keeps
    them apart). ``raw`` keeps the (name, value) byte pairs in order, without pseudo-header fields."""

    def __init__(self, raw: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self.raw: RawHeaders = [(name.lower(), value) for name, value in raw]

    def get_list(self, name: str) -> list[str]:
        """Every value of ``name``, in order."""
        key = name.lower().encode("latin-1")
        return [value.decode("latin-1") for n, value in self.raw if n == key]

    def __getitem__(self, name: str) -> str:
        values = self.get_list(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for name, _ in self.raw:
            seen.setdefault(name.decode("latin-1"), None)
        return iter(seen)

    def __len__(self) -> int:
        return len({name for name, _ in self.raw})

    def __repr__(self) -> str:
        return f"Headers({[(n.decode('latin-1'), v.decode('latin-1')) for n, v in self.raw]!r})"


def to_raw(headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]] | None) -> RawHeaders:
    """User-supplied headers as lower-case byte pairs (str encoded as latin-1, as HTTP fields are)."""
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    raw: RawHeaders = []
    for name, value in items:
        n = name.encode("latin-1") if isinstance(name, str) else bytes(name)
        v = value.encode("latin-1") if isinstance(value, str) else bytes(value)
        raw.append((n.lower(), v))
    return raw


def _malformed(stream_id: int, reason: str) -> H3Error:
    return H3Error(H3ErrorCode.H3_MESSAGE_ERROR, reason, stream_id=stream_id)


def validate(headers: RawHeaders, kind: str, stream_id: int) -> dict[bytes, bytes]:
    """Check a field section of ``kind`` "request", "response" or "trailers"; return its pseudo-header
    fields.

    Raises:
        H3Error: H3_MESSAGE_ERROR (a stream error) for a malformed section (RFC 9114 §4.1.2): upper-case
            or empty names, pseudo-header fields that are unknown, repeated, misplaced or missing,
            connection-specific fields, TE other than "trailers", or values with CR, LF or NUL.
    """
    allowed = {"request": REQUEST_PSEUDO, "response": RESPONSE_PSEUDO}.get(kind, frozenset())
    pseudo: dict[bytes, bytes] = {}
    regular_seen = False
    for name, value in headers:
        if not name or name != name.lower():
            raise _malformed(stream_id, f"field name {name!r} is empty or not lower case")
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise _malformed(stream_id, f"field {name!r} has CR, LF or NUL in its value")
        if name.startswith(b":"):
            if regular_seen:
                raise _malformed(stream_id, f"pseudo-header {name!r} after a regular field")
            if name not in allowed:
                raise _malformed(stream_id, f"pseudo-header {name!r} not allowed in a {kind} section")
            if name in pseudo:
                raise _malformed(stream_id, f"pseudo-header {name!r} repeated")
            pseudo[name] = value
            continue
        regular_seen = True
        if name in CONNECTION_SPECIFIC:
            raise _malformed(stream_id, f"connection-specific field {name!r}")
        if name == b"te" and value != b"trailers":
            raise _malformed(stream_id, "TE other than 'trailers'")
    if kind == "request":
        method = pseudo.get(b":method")
        if method is None:
            raise _malformed(stream_id, "request without :method")
        if b":protocol" in pseudo:
            # Extended CONNECT (RFC 9220 §3, RFC 8441 §4): only on CONNECT, with the full target URI.
            if method != b"CONNECT":
                raise _malformed(stream_id, ":protocol on a request other than CONNECT")
            if not (
                pseudo[b":protocol"] and all(pseudo.get(k) for k in (b":scheme", b":path", b":authority"))
            ):
                raise _malformed(stream_id, "extended CONNECT needs :protocol, :scheme, :path and :authority")
        elif method == b"CONNECT":
            # RFC 9114 §4.4: a CONNECT request names only :method and :authority.
            if not pseudo.get(b":authority") or b":scheme" in pseudo or b":path" in pseudo:
                raise _malformed(stream_id, "CONNECT needs :authority and no :scheme or :path")
        elif not pseudo.get(b":scheme") or not pseudo.get(b":path"):
            raise _malformed(stream_id, "request without :scheme or :path")
    elif kind == "response":
        status = pseudo.get(b":status", b"")
        if len(status) != 3 or not status.isdigit():
            raise _malformed(stream_id, f"response without a valid :status ({status!r})")
    return pseudo


__all__ = ["Headers", "RawHeaders", "field_section_size", "to_raw", "validate"]
