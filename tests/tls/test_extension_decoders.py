"""The ClientHello extension decoders read by index: exact round trips, and every cut or extended
encoding refused as malformed (DecodeError), as the Reader-based decoders did."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rudp.codec.buffer import Reader
from rudp.errors import DecodeError, TLSAlert
from rudp.tls import extensions as ext
from rudp.tls.alerts import AlertDescription, alert

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


def _general_offered_psks(data: bytes) -> object:
    """decode_offered_psks as it read with a Reader (the reference for the by-index reading)."""
    r = Reader(data)
    ids = r.sub_reader(r.pull_uint16())
    binders_block = r.sub_reader(r.pull_uint16())
    ext.finish(r)
    identities: list[tuple[bytes, int]] = []
    while not ids.eof():
        identity = bytes(ids.pull_block(2))
        identities.append((identity, ids.pull_uint32()))
        if not identity:
            raise DecodeError("empty PSK identity")
    binders: list[bytes] = []
    while not binders_block.eof():
        binder = bytes(binders_block.pull_block(1))
        if len(binder) < 32:
            raise DecodeError("PSK binder too short")
        binders.append(binder)
    if not identities or len(identities) != len(binders):
        raise alert(AlertDescription.illegal_parameter, "PSK identities and binders do not match")
    return ext.OfferedPsks(identities, binders)


def _psk_outcome(decode: Callable[[bytes], object], data: bytes) -> object:
    try:
        return _outcome(decode, data)
    except TLSAlert as exc:
        return ("TLSAlert", exc.alert, exc.reason)


_offers = st.builds(
    ext.OfferedPsks,
    st.lists(st.tuples(st.binary(max_size=40), st.integers(0, 0xFFFFFFFF)), max_size=3),
    st.lists(st.binary(min_size=30, max_size=50), max_size=3),
).map(ext.encode_offered_psks)


@given(
    st.one_of(
        st.binary(max_size=120), _offers, _offers.map(lambda b: b[:-1]), _offers.map(lambda b: b + b"\0")
    )
)
def test_offered_psks_decode_as_the_reader_did(data: bytes) -> None:
    """RFC 8446 §4.2.11: the by-index decoder gives the Reader's result and errors, in the same order."""
    for view in (data, memoryview(data)):
        assert _psk_outcome(ext.decode_offered_psks, view) == _psk_outcome(_general_offered_psks, data)
    offer = _psk_outcome(ext.decode_offered_psks, data)
    if isinstance(offer, ext.OfferedPsks):
        assert offer.binders_size() == len(ext.encode_binders(offer.binders))


def _offer(identities: bytes, binders: bytes) -> bytes:
    return len(identities).to_bytes(2, "big") + identities + len(binders).to_bytes(2, "big") + binders


_BINDER = b"\x20" + bytes(32)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x00\x09\x00\x01a\x00\x00\x00\x01",  # no binders length
        b"\x00\x09\x00\x01a\x00\x00\x00\x01\x00",
        _offer(b"\x00\x01a\x00\x00\x00", _BINDER),  # the age cut to 3 bytes
        _offer(b"\x00\x01a\x00\x00", _BINDER),
        _offer(b"\x00\x05a\x00\x00\x00\x00", _BINDER),  # the identity runs past the list
        _offer(b"\x00", _BINDER),
        _offer(b"\x00\x00\x00\x00\x00\x01", _BINDER),  # an empty identity
        _offer(b"\x00\x01a\x00\x00\x00\x01", b"\x1f" + bytes(31)),  # a short binder
        _offer(b"\x00\x01a\x00\x00\x00\x01", b"\x21" + bytes(32)),  # a binder past the list
        _offer(b"\x00\x01a\x00\x00\x00\x01", _BINDER) + b"\x00",  # trailing bytes
        _offer(b"\x00\x01a\x00\x00\x00\x01", _BINDER + _BINDER),  # counts differ
        _offer(b"", b""),
        _offer(b"\x00\x01a\x00\x00\x00\x01\x00\x02bc\xff\xff\xff\xff", _BINDER + _BINDER),
    ],
)
def test_offered_psks_errors_are_the_readers(data: bytes) -> None:
    assert _psk_outcome(ext.decode_offered_psks, data) == _psk_outcome(_general_offered_psks, data)
