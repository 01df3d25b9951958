"""The ClientHello extension decoders read by index: exact round trips, and every cut or extended
encoding refused as malformed (DecodeError), as the Reader-based decoders did."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def _general_uint16_list(data: bytes) -> list[int]:
    """decode_uint16_list as it was (a slice, then an unpack of the rest)."""
    size = len(data)
    if size < 2 or int.from_bytes(data[:2], "big") != size - 2:
        raise DecodeError("truncated block" if size < 2 else "bad uint16 list length")
    if size == 2 or size % 2:
        raise DecodeError("bad uint16 list")
    return list(struct.unpack(f">{(size - 2) >> 1}H", data[2:]))


def _general_client_versions(data: bytes) -> list[int]:
    size = len(data)
    if size < 1 or data[0] != size - 1:
        raise DecodeError("truncated block" if size < 1 else "bad supported_versions length")
    if size == 1 or (size - 1) % 2:
        raise DecodeError("bad supported_versions")
    return list(struct.unpack(f">{(size - 1) >> 1}H", data[1:]))


def _outcome(decode: Callable[[bytes], object], data: bytes) -> object:
    try:
        return decode(data)
    except DecodeError as exc:
        return ("DecodeError", exc.reason)
    except struct.error as exc:
        return ("struct.error", str(exc))


_lists = st.lists(st.integers(0, 0xFFFF), max_size=140).map(lambda v: ext.encode_uint16_list(v) if v else b"")


@given(st.one_of(st.binary(max_size=300), _lists, _lists.map(lambda b: b[:-1]), _lists.map(lambda b: b[1:])))
def test_uint16_lists_decode_as_the_sliced_unpack_did(data: bytes) -> None:
    """The compiled layouts (under 128 values, and the general one above) change nothing."""
    for view in (data, memoryview(data)):
        assert _outcome(ext.decode_uint16_list, view) == _outcome(_general_uint16_list, data)
        assert _outcome(ext.decode_client_versions, view) == _outcome(_general_client_versions, data)
        reference = _outcome(lambda d: list(struct.unpack(f">{len(d) >> 1}H", d)), data)
        assert _outcome(ext.unpack_uint16s, view) == reference


@given(st.lists(st.tuples(st.integers(0, 3), st.binary(min_size=1, max_size=3)), max_size=4))
def test_key_shares_refuse_a_repeated_group(shares: list[tuple[int, bytes]]) -> None:
    """RFC 8446 §4.2.8: each group at most once (illegal_parameter), checked from the second share on."""
    encoded = ext.encode_client_key_shares(shares)
    if len({group for group, _ in shares}) == len(shares):
        assert ext.decode_client_key_shares(encoded) == shares
    else:
        with pytest.raises(TLSAlert, match="duplicate key share group"):
            ext.decode_client_key_shares(encoded)
