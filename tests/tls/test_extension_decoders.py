"""The ClientHello extension decoders read by index: exact round trips, and every cut or extended
encoding refused as malformed (DecodeError), as the Reader-based decoders did."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rudp.errors import DecodeError, TLSAlert
from rudp.tls import extensions as ext

CASES: list[tuple[Callable[[bytes], object], bytes, object]] = [
    (ext.decode_server_name, ext.encode_server_name("example.com"), "example.com"),
    (ext.decode_alpn, ext.encode_alpn([b"h3", b"hq-interop"]), [b"h3", b"hq-interop"]),
    (
        ext.decode_client_key_shares,
        ext.encode_client_key_shares([(0x1D, bytes(range(32))), (0x17, bytes(65))]),
        [(0x1D, bytes(range(32))), (0x17, bytes(65))],
    ),
    (ext.decode_psk_modes, ext.encode_psk_modes([1, 0]), [1, 0]),
]


@pytest.mark.parametrize(("decode", "encoded", "value"), CASES)
def test_round_trip_cuts_and_trailing_bytes(
    decode: Callable[[bytes], object], encoded: bytes, value: object
) -> None:
    assert decode(encoded) == value
    assert decode(memoryview(encoded)) == value
    for cut in range(1 if decode is ext.decode_server_name else 0, len(encoded)):
        with pytest.raises(DecodeError):
            decode(encoded[:cut])
    with pytest.raises(DecodeError):
        decode(encoded + b"\x00")


def test_inner_lengths_beyond_the_list_are_truncations() -> None:
    with pytest.raises(DecodeError, match="truncated block"):
        ext.decode_alpn(b"\x00\x03\x05h3")  # a name of 5 bytes in a 3-byte list
    with pytest.raises(DecodeError, match="truncated block"):
        ext.decode_client_key_shares(b"\x00\x05\x00\x1d\x00\x09a")
    with pytest.raises(DecodeError, match="truncated uint16"):
        ext.decode_client_key_shares(b"\x00\x01\x00")
    with pytest.raises(DecodeError, match="truncated block"):
        ext.decode_server_name(b"\x00\x02\x00\x00")


def test_empty_and_repeated_entries() -> None:
    assert ext.decode_server_name(b"") is None  # the server's acknowledgement form
    with pytest.raises(DecodeError, match="empty ALPN protocol name"):
        ext.decode_alpn(b"\x00\x01\x00")
    with pytest.raises(DecodeError, match="empty ALPN list"):
        ext.decode_alpn(b"\x00\x00")
    with pytest.raises(DecodeError, match="empty key_exchange"):
        ext.decode_client_key_shares(b"\x00\x04\x00\x1d\x00\x00")
    with pytest.raises(TLSAlert):
        ext.decode_client_key_shares(ext.encode_client_key_shares([(0x1D, b"a"), (0x1D, b"b")]))
    with pytest.raises(TLSAlert):
        ext.decode_server_name(b"\x00\x08" + b"\x00\x00\x01a" + b"\x00\x00\x01b")  # two host names
    with pytest.raises(DecodeError, match="empty psk_key_exchange_modes"):
        ext.decode_psk_modes(b"\x00")
    assert ext.decode_client_key_shares(b"\x00\x00") == []
