"""Retry Integrity Tag (RFC 9001 §5.8, RFC 9369 §3.3.3) and address-validation tokens (RFC 9000 §8.1)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rudp.codec.codes import Version
from rudp.crypto.keys import INITIAL_SUITE, derive_packet_keys
from rudp.crypto.retry import (
    RETRY_KEY_V1,
    RETRY_KEY_V2,
    RETRY_NONCE_V1,
    RETRY_NONCE_V2,
    RETRY_SECRET_V1,
    RETRY_SECRET_V2,
    AddressToken,
    TokenSealer,
    retry_integrity_tag,
    verify_retry_integrity,
)
from rudp.crypto.vectors import ALL_VECTORS, VersionVectors

V1, V2 = int(Version.V1), int(Version.V2)
by_version = pytest.mark.parametrize("vectors", ALL_VECTORS, ids=["rfc9001-v1", "rfc9369-v2"])


@pytest.mark.parametrize(
    ("version", "secret", "key", "nonce"),
    [
        (Version.V1, RETRY_SECRET_V1, RETRY_KEY_V1, RETRY_NONCE_V1),
        (Version.V2, RETRY_SECRET_V2, RETRY_KEY_V2, RETRY_NONCE_V2),
    ],
)
def test_fixed_retry_keys_derive_from_the_published_secrets(
    version: int, secret: bytes, key: bytes, nonce: bytes
) -> None:
    material = derive_packet_keys(INITIAL_SUITE, secret, version)
    assert (material.key, material.iv) == (key, nonce)


@by_version
def test_verify_rejects_a_wrong_original_dcid(vectors: VersionVectors) -> None:
    assert not verify_retry_integrity(vectors.retry_packet, b"\x00" + vectors.dcid[1:], vectors.version)
    assert not verify_retry_integrity(vectors.retry_packet, b"", vectors.version)


@by_version
def test_verify_rejects_the_other_version(vectors: VersionVectors) -> None:
    other = Version.V2 if vectors.version == Version.V1 else Version.V1
    assert not verify_retry_integrity(vectors.retry_packet, vectors.dcid, other)
    assert not verify_retry_integrity(vectors.retry_packet, vectors.dcid, 0x1A2A3A4A)


@by_version
@given(data=st.data())
def test_verify_rejects_any_flipped_byte(vectors: VersionVectors, data: st.DataObject) -> None:
    packet = bytearray(vectors.retry_packet)
    packet[data.draw(st.integers(0, len(packet) - 1))] ^= data.draw(st.integers(1, 255))
    assert not verify_retry_integrity(bytes(packet), vectors.dcid, vectors.version)


@by_version
def test_verify_rejects_short_packets(vectors: VersionVectors) -> None:
    for cut in range(0, 17):
        assert not verify_retry_integrity(vectors.retry_packet[:cut], vectors.dcid, vectors.version)


def test_tag_of_unknown_version_is_a_caller_error() -> None:
    with pytest.raises(ValueError):
        retry_integrity_tag(b"\xf0" * 10, b"\x01" * 8, 0xFF00001D)


# --- address-validation tokens -----------------------------------------------------------------------

KEY = bytes(range(32))
ADDRESS = b"\xc0\x00\x02\x01\x11\x5c"  # 192.0.2.1:4444
ODCID = bytes.fromhex("8394c8f03e515708")


def _counter_randbytes() -> tuple[list[int], TokenSealer]:
    calls: list[int] = []
    counter = itertools.count()

    def randbytes(n: int) -> bytes:
        calls.append(n)
        return next(counter).to_bytes(n, "big")

    return calls, TokenSealer(KEY, randbytes=randbytes)


def test_retry_token_round_trip() -> None:
    sealer = TokenSealer(KEY)
    token = sealer.seal(ADDRESS, ODCID, 100.0, retry=True, version=V1)
    assert sealer.open(token, ADDRESS, 105.0, lifetime=10.0, version=V1) == AddressToken(
        retry=True, original_dcid=ODCID, issued_at=100.0
    )


def test_new_token_round_trip() -> None:
    sealer = TokenSealer(KEY)
    token = sealer.seal(ADDRESS[:4], b"", 7.25, retry=False, version=V1)
    opened = sealer.open(token, ADDRESS[:4], 7.25, lifetime=86400.0, version=V1)
    assert opened == AddressToken(retry=False, original_dcid=b"", issued_at=7.25)


def test_randomness_is_injected() -> None:
    calls, sealer = _counter_randbytes()
    first = sealer.seal(ADDRESS, ODCID, 1.0, retry=True, version=V1)
    second = sealer.seal(ADDRESS, ODCID, 1.0, retry=True, version=V1)
    assert calls == [12, 12]
    assert first != second  # a fresh nonce per token keeps tokens unlinkable
    assert first[:12] == bytes(12)
    _, replay = _counter_randbytes()
    assert replay.seal(ADDRESS, ODCID, 1.0, retry=True, version=V1) == first


def test_wrong_address_is_rejected() -> None:
    sealer = TokenSealer(KEY)
    token = sealer.seal(ADDRESS, ODCID, 0.0, retry=True, version=V1)
    assert sealer.open(token, ADDRESS[:-1] + b"\x5d", 0.0, lifetime=10.0, version=V1) is None
    assert sealer.open(token, b"", 0.0, lifetime=10.0, version=V1) is None


@pytest.mark.parametrize("kind", ["retry", "new_token"])
def test_token_of_another_version_is_rejected(kind: str) -> None:
    # RFC 9369 §5: a token opens only in an Initial of the version it was issued for.
    sealer = TokenSealer(KEY)
    retry = kind == "retry"
    for issued, presented in ((V1, V2), (V2, V1)):
        token = sealer.seal(ADDRESS, ODCID, 0.0, retry=retry, version=issued)
        assert sealer.open(token, ADDRESS, 1.0, lifetime=10.0, version=presented) is None
        opened = sealer.open(token, ADDRESS, 1.0, lifetime=10.0, version=issued)
        assert opened is not None and opened.retry is retry
    # A version that does not fit the 32-bit field is no token either (never an exception).
    assert sealer.open(token, ADDRESS, 1.0, lifetime=10.0, version=1 << 32) is None


@pytest.mark.parametrize(
    ("now", "ok"), [(0.0, True), (9.999, True), (10.0, False), (50.0, False), (-0.5, False)]
)
def test_lifetime_and_future_tokens(now: float, ok: bool) -> None:
    sealer = TokenSealer(KEY)
    token = sealer.seal(ADDRESS, ODCID, 0.0, retry=True, version=V1)
    assert (sealer.open(token, ADDRESS, now, lifetime=10.0, version=V1) is not None) is ok


def test_nan_issue_time_is_rejected() -> None:
    sealer = TokenSealer(KEY)
    token = sealer.seal(ADDRESS, ODCID, math.nan, retry=True, version=V1)
    assert sealer.open(token, ADDRESS, 1.0, lifetime=10.0, version=V1) is None


def test_token_from_another_key_is_rejected() -> None:
    token = TokenSealer(bytes(32)).seal(ADDRESS, ODCID, 0.0, retry=True, version=V1)
    assert TokenSealer(KEY).open(token, ADDRESS, 0.0, lifetime=10.0, version=V1) is None


@given(data=st.data())
def test_tampered_token_is_rejected(data: st.DataObject) -> None:
    sealer = TokenSealer(KEY)
    token = bytearray(sealer.seal(ADDRESS, ODCID, 0.0, retry=True, version=V1))
    token[data.draw(st.integers(0, len(token) - 1))] ^= data.draw(st.integers(1, 255))
    assert sealer.open(bytes(token), ADDRESS, 1.0, lifetime=10.0, version=V1) is None


@given(data=st.data())
def test_truncated_token_is_rejected(data: st.DataObject) -> None:
    sealer = TokenSealer(KEY)
    token = sealer.seal(ADDRESS, ODCID, 0.0, retry=False, version=V1)
    cut = data.draw(st.integers(0, len(token) - 1))
    assert sealer.open(token[:cut], ADDRESS, 1.0, lifetime=10.0, version=V1) is None


@given(token=st.binary(max_size=100), address=st.binary(max_size=20), now=st.floats(allow_nan=True))
def test_random_tokens_never_raise(token: bytes, address: bytes, now: float) -> None:
    assert TokenSealer(KEY).open(token, address, now, lifetime=10.0, version=V1) is None


def test_bad_key_length_is_a_caller_error() -> None:
    with pytest.raises(ValueError):
        TokenSealer(b"short")


def test_seal_new_token_is_seal_of_a_new_token_in_every_version() -> None:
    # The shortcut against the general seal: same randomness, same bytes, for more versions than its
    # context cache holds (the ones past the bound are built each time, never kept).
    versions = [V1, 0x6B3343CF, 0x1A2A3A4A, 0x5A6A7A8A, 0xFF000020, 0x0A0A0A0A, V1]
    for version in versions:
        _, general = _counter_randbytes()
        _, short = _counter_randbytes()
        for address in (ADDRESS[:4], b"", b"2001:db8::1"):
            expected = general.seal(address, b"", 12.5, retry=False, version=version)
            assert short.seal_new_token(address, 12.5, version) == expected
            opened = short.open(expected, address, 13.0, lifetime=60.0, version=version)
            assert opened == AddressToken(retry=False, original_dcid=b"", issued_at=12.5)
    sealer = TokenSealer(KEY)
    for version in versions:
        sealer.seal_new_token(ADDRESS[:4], 1.0, version)
    assert len(sealer._contexts) == 4
